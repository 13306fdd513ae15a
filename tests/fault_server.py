"""A scripted OpenAI-compatible chat server (and score route, /v1/score/evaluation) for tests of remote calls: each request takes the next fault of the
script (429 with Retry-After, 500, a hang past the client's timeout, malformed JSON, a dropped connection), then
answers normally with what `answer` returns for the messages. Runs in a thread on a loopback port."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Answer = Callable[[list[dict[str, str]]], str]


def echo(messages: list[dict[str, str]]) -> str:
    """The default answer: the last message's content, prefixed."""
    return "echo: " + messages[-1]["content"]


class FaultServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, script: list[str], answer: Answer, hang: float) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.script = list(script)
        self.answer = answer
        self.hang = hang
        self.lock = threading.Lock()
        self.received: list[dict[str, object]] = []  # every request body, in arrival order
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.faults: list[str] = []  # what each request got

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def next_fault(self) -> str:
        with self.lock:
            fault = self.script.pop(0) if self.script else "ok"
            self.faults.append(fault)
            return fault


class Handler(BaseHTTPRequestHandler):
    server: FaultServer

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
        with self.server.lock:
            self.server.received.append(body)
            self.server.authorizations.append(self.headers.get("authorization"))
        fault = self.server.next_fault()
        if fault == "429":
            return self.send("429", {"error": {"message": "rate limited"}}, {"Retry-After": "0.2"})
        if fault == "500":
            return self.send("500", {"error": {"message": "boom"}})
        if fault == "401":
            return self.send("401", {"error": {"message": "bad key"}})
        if fault == "hang":
            time.sleep(self.server.hang)
            return None
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if fault == "malformed":
            return self.send_raw("200", b'{"id": "x", "choices": [{"message": {"content": "half')
        if self.path.endswith("/score/evaluation"):  # LLaMA-Factory's score route: each text's length as its score
            return self.send("200", {"id": "scoreval-1", "object": "score.evaluation", "model": body.get("model"),
                                     "scores": [float(len(text)) for text in body.get("messages", [])]})
        text = self.server.answer(body.get("messages", []))
        usage = {"prompt_tokens": 10, "completion_tokens": len(text), "total_tokens": 10 + len(text)}
        return self.send("200", {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                                 "model": body.get("model", "m"),
                                 "choices": [{"index": 0, "finish_reason": "stop",
                                              "message": {"role": "assistant", "content": text}}],
                                 "usage": usage})

    def send(self, status: str, payload: dict[str, object], headers: dict[str, str] | None = None) -> None:
        self.send_raw(status, json.dumps(payload).encode(), headers)

    def send_raw(self, status: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(int(status))
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def fault_server(script: list[str] | None = None, answer: Answer = echo, hang: float = 3.0) -> Iterator[FaultServer]:
    """Start a server that plays `script` (one fault per request, then normal answers); stop it afterwards."""
    server = FaultServer(script or [], answer, hang)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
