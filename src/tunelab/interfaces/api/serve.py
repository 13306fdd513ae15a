"""`tunelab api`: load the model once and serve it with uvicorn."""

from __future__ import annotations

from dataclasses import dataclass

from tunelab.config.schema import RunConfig
from tunelab.runtime.env import api_env

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_MAX_BATCH = 8


class ServeError(Exception):
    """A server setting that cannot work (the message says which and how to fix it)."""


@dataclass(frozen=True)
class Address:
    """Where to listen and the key clients must send."""

    host: str
    port: int
    api_key: str | None


def address(host: str | None, port: int | None, api_key: str | None) -> Address:
    """Flags first, then LLaMA-Factory's API_HOST / API_PORT / API_KEY, then 127.0.0.1:8000 without a key."""
    env = api_env()
    raw_port = port if port is not None else env.get("port", DEFAULT_PORT)
    try:
        number = int(raw_port)
    except ValueError:
        raise ServeError(f"API_PORT={raw_port!r} is not a port number; set it to e.g. 8000 or pass --port") from None
    if not 0 < number < 65536:
        raise ServeError(f"port {number} is out of range; use 1-65535 (--port or API_PORT)")
    return Address(host=host or env.get("host") or DEFAULT_HOST, port=number,
                   api_key=api_key or env.get("key") or None)


def batch_size(flag: int | None, config: RunConfig) -> int:
    """--max-batch, else the config's per_device_eval_batch_size, at least 8 (a server has many clients)."""
    if flag is not None:
        if flag < 1:
            raise ServeError(f"--max-batch {flag}: use 1 or more")
        return flag
    return max(DEFAULT_MAX_BATCH, config.eval.per_device_eval_batch_size)


def serve(config: RunConfig, where: Address, max_batch: int) -> None:
    """Load the model (with the run's adapter when there is one) and serve until interrupted."""
    import uvicorn

    from tunelab.infer.load import load_for_inference
    from tunelab.interfaces.api.app import create_app
    from tunelab.interfaces.api.state import build_server
    from tunelab.runtime.logging import info

    bundle = load_for_inference(config)
    model_id = config.model.model_name_or_path
    server = build_server(bundle.tokenizer, bundle.model, config.infer, model_id, config.data.cutoff_len,
                          max_batch, where.api_key)
    key = ", API key required" if where.api_key else ""
    info(f"serving {model_id} at http://{where.host}:{where.port}/v1 (batches of up to {max_batch}{key})")
    uvicorn.run(create_app(server), host=where.host, port=where.port, log_level="info")
