"""POST /v1/score/evaluation on a reward model: LLaMA-Factory's body and answer, the key, bad bodies, and each
kind of server refusing the other kind's routes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tunelab.infer.score import load_reward_scorer
from tunelab.interfaces.api.app import create_score_app
from tunelab.interfaces.api.score import ScoreServer

from tests.unit.interfaces.api.conftest import MODEL_ID, chat_body

RM_ID = "tiny-rm"
TEXTS = ["<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nI am tunelab.<|im_end|>\n",
         "<|im_start|>user\nWho are you?<|im_end|>\n<|im_start|>assistant\nHello there.<|im_end|>\n"]


@pytest.fixture
def make_rm_client(full_rm_dir: tuple[Path, Any]) -> Iterator[Callable[..., TestClient]]:
    """make_rm_client(api_key=None): a started TestClient over the tiny full reward model."""
    scorer = load_reward_scorer(str(full_rm_dir[0]), None, None)
    clients: list[TestClient] = []

    def make(api_key: str | None = None) -> TestClient:
        client = TestClient(create_score_app(ScoreServer(scorer, RM_ID, 2, api_key)))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]


def test_scores_answer_as_llamafactory_does(make_rm_client: Callable[..., TestClient],
                                            full_rm_dir: tuple[Path, Any]) -> None:
    response = make_rm_client().post("/v1/score/evaluation", json={"model": "model", "messages": TEXTS})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"id", "object", "model", "scores"} and body["id"].startswith("scoreval-")
    assert body["object"] == "score.evaluation" and body["model"] == "model"  # echoed, as LLaMA-Factory does
    expected = load_reward_scorer(str(full_rm_dir[0]), None, None).score_texts(TEXTS)
    assert body["scores"] == pytest.approx(expected, abs=1e-5)
    cut = make_rm_client().post("/v1/score/evaluation", json={"messages": TEXTS[:1], "max_length": 3}).json()
    assert cut["model"] == RM_ID and cut["scores"] != pytest.approx(expected[:1], abs=1e-6)


def test_the_key_is_required_when_set(make_rm_client: Callable[..., TestClient]) -> None:
    client = make_rm_client(api_key="secret")
    error = error_of(client.post("/v1/score/evaluation", json={"messages": TEXTS}), 401)
    assert error["code"] == "invalid_api_key"
    ok = client.post("/v1/score/evaluation", json={"messages": TEXTS}, headers={"Authorization": "Bearer secret"})
    assert ok.status_code == 200 and len(ok.json()["scores"]) == 2
    assert client.get("/health").json() == {"status": "ok", "model": RM_ID, "kind": "reward"}


@pytest.mark.parametrize(("body", "param", "words"), [
    ({"messages": []}, "messages", "give at least one text to score"),
    ({"messages": ["text", ""]}, "messages[1]", "an empty text has nothing to score"),
    ({"messages": "one text"}, "messages", "valid list"),
    ({}, "messages", "Field required"),
    ({"messages": TEXTS, "max_length": 0}, "max_length", "greater than or equal to 1"),
])
def test_bad_bodies_name_the_field(make_rm_client: Callable[..., TestClient], body: dict[str, Any], param: str,
                                   words: str) -> None:
    error = error_of(make_rm_client().post("/v1/score/evaluation", json=body), 400)
    assert error["param"] == param and words in error["message"]


def test_malformed_json_is_a_400(make_rm_client: Callable[..., TestClient]) -> None:
    error = error_of(make_rm_client().post("/v1/score/evaluation", content=b"{not json"), 400)
    assert error["code"] == "invalid_json"


@pytest.mark.parametrize("route", ["/v1/chat/completions", "/v1/completions"])
def test_a_reward_model_does_not_generate(make_rm_client: Callable[..., TestClient], route: str) -> None:
    error = error_of(make_rm_client().post(route, json=chat_body()), 405)
    assert error["code"] == "not_a_chat_model"
    assert f"POST {route}: '{RM_ID}' is a reward model: it scores texts and does not generate" in error["message"]


def test_a_chat_model_does_not_score(client: TestClient) -> None:
    error = error_of(client.post("/v1/score/evaluation", json={"messages": TEXTS}), 405)
    assert error["code"] == "not_a_reward_model" and f"'{MODEL_ID}' is a chat model" in error["message"]


def test_the_reward_model_is_listed(make_rm_client: Callable[..., TestClient]) -> None:
    client = make_rm_client()
    assert [card["id"] for card in client.get("/v1/models").json()["data"]] == [RM_ID]
    assert client.get(f"/v1/models/{RM_ID}").json()["id"] == RM_ID
    assert error_of(client.get("/v1/models/other"), 404)["code"] == "model_not_found"
