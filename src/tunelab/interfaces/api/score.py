"""POST /v1/score/evaluation (LLaMA-Factory's score route) on a reward model, and the 405 answers of a server
asked for the other kind of model (app.py builds the reward model's app from these).

The scoring itself is infer/score.py's RewardScorer, run in a worker thread, one request at a time.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field

from fastapi.responses import JSONResponse, Response

from tunelab.infer.score import RewardScorer
from tunelab.interfaces.api.errors import APIError
from tunelab.interfaces.api.protocol import ScoreRequest
from tunelab.interfaces.api.run import new_id

SCORE_ROUTE = "/v1/score/evaluation"
GENERATION_ROUTES = ("/v1/chat/completions", "/v1/completions")


@dataclass
class ScoreServer:
    """A served reward model: its scorer, id, batch size and key."""

    scorer: RewardScorer
    model_id: str
    max_batch: int = 8
    api_key: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def score(self, texts: list[str], max_length: int | None) -> list[float]:
        """Scores of the texts, one request at a time (the model is shared)."""
        with self.lock:
            return self.scorer.score_texts(texts, max_length, batch_size=self.max_batch)


def checked_texts(body: ScoreRequest) -> list[str]:
    """The texts to score: at least one, none empty (400 naming the message otherwise)."""
    if not body.messages:
        raise APIError(400, "'messages': give at least one text to score (each a conversation already rendered "
                            "with the model's chat template)", param="messages", code="invalid_value")
    empty = next((index for index, text in enumerate(body.messages) if not text), None)
    if empty is not None:
        raise APIError(400, f"'messages[{empty}]': an empty text has nothing to score", param=f"messages[{empty}]",
                       code="invalid_value")
    return body.messages


async def score_evaluation(server: ScoreServer, body: ScoreRequest) -> Response:
    """LLaMA-Factory's ScoreEvaluationResponse: id, object 'score.evaluation', model, one score per text."""
    texts = checked_texts(body)
    scores = await asyncio.to_thread(server.score, texts, body.max_length)
    return JSONResponse({"id": new_id("scoreval"), "object": "score.evaluation", "model": body.model or server.model_id,
                         "scores": scores})


def not_a_reward_model(model_id: str) -> APIError:
    """The score route on a chat server."""
    return APIError(405, f"POST {SCORE_ROUTE}: '{model_id}' is a chat model and has no value head to score with; "
                         "serve a reward model (the output of a stage: rm run) to score texts",
                    code="not_a_reward_model")


def not_a_chat_model(model_id: str, route: str) -> APIError:
    """A generation route on a reward-model server."""
    return APIError(405, f"POST {route}: '{model_id}' is a reward model: it scores texts and does not generate; "
                         f"POST {SCORE_ROUTE} with {{\"messages\": [\"...\"]}}, or serve a chat model",
                    code="not_a_chat_model")
