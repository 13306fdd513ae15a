"""The score-route client against a loopback server: the body and key sent, retries, refusals, bad replies."""

from __future__ import annotations

import pytest
from fault_server import fault_server

from tunelab.remote.endpoint import EndpointSettings
from tunelab.remote.errors import RemoteError
from tunelab.remote.score import ScoreClient, score_url
from tunelab.runtime import env


def client(url: str, **extra: object) -> ScoreClient:
    values: dict[str, object] = {"base_url": url, "model": "model", "timeout": 1.0, "backoff": 0.01,
                                 "max_retries": 3, "where": "reward_model"}
    values.update(extra)
    return ScoreClient(EndpointSettings(**values))  # type: ignore[arg-type]


def test_score_url_finds_the_route() -> None:
    assert score_url("http://h:8000") == "http://h:8000/v1/score/evaluation"
    assert score_url("http://h:8000/v1/") == "http://h:8000/v1/score/evaluation"
    assert score_url("http://h/v1/score/evaluation") == "http://h/v1/score/evaluation"


def test_texts_go_out_as_llamafactory_sends_them_with_the_key() -> None:
    with fault_server() as server, env.variable_set("TEST_REWARD_KEY", "sekret"):
        scores = client(server.base_url, api_key_env="TEST_REWARD_KEY").score(["ab", "abcd"])
    assert scores == [2.0, 4.0]
    assert server.received == [{"model": "model", "messages": ["ab", "abcd"]}]
    assert server.authorizations == ["Bearer sekret"]


@pytest.mark.parametrize("fault", ["429", "500", "malformed", "drop", "hang"])
def test_faults_are_retried(fault: str) -> None:
    with fault_server([fault, fault], hang=2.0) as server:
        scorer = client(server.base_url)
        assert scorer.score(["abc"]) == [3.0]
    assert scorer.usage.retries == 2 and server.faults == [fault, fault, "ok"]


def test_a_refusal_is_not_retried_and_names_the_fix() -> None:
    with fault_server(["401"]) as server:
        with pytest.raises(RemoteError, match="reward_model: .* HTTP 401.*reward_api_key_env"):
            client(server.base_url).score(["abc"])
    assert server.faults == ["401"]


def test_retries_run_out() -> None:
    with fault_server(["500"] * 10) as server:
        with pytest.raises(RemoteError, match="failed 4 times; last: HTTP 500"):
            client(server.base_url).score(["abc"])


def test_a_missing_key_variable_is_named() -> None:
    with pytest.raises(RemoteError, match="NO_SUCH_REWARD_KEY"):
        client("http://127.0.0.1:9", api_key_env="NO_SUCH_REWARD_KEY")


def test_a_reply_with_the_wrong_number_of_scores_fails() -> None:
    scorer = client("http://127.0.0.1:9")
    with pytest.raises(RemoteError, match="returned 1 scores for 2 texts"):
        scorer.read(b'{"scores": [1.0]}', 2)
