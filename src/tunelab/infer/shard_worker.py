"""A prediction worker under torchrun (`python -m tunelab.infer.shard_worker CONFIG`): the config and the model
loaded, this rank's share of the rows answered into its shard file (infer/shard.py merges them)."""

from __future__ import annotations

import argparse
import sys

from tunelab.infer import shard
from tunelab.runtime import env


def main(argv: list[str] | None = None) -> int:
    """A shard worker under torchrun: load the config and the model, answer this rank's rows."""
    from tunelab.config.load import load_config
    from tunelab.infer.load import load_for_inference
    from tunelab.infer.predict import PredictReport, predict
    from tunelab.runtime.logging import quiet_libraries
    from tunelab.runtime.progress import Counter

    parser = argparse.ArgumentParser(prog="python -m tunelab.infer.shard_worker")
    parser.add_argument("config")
    parser.add_argument("--prompts-only", action="store_true")
    args = parser.parse_args(argv)
    quiet_libraries()
    config = load_config(args.config, purpose="predict")
    rows = Counter(f"predict (process 1 of {env.world_size()})", "rows", every=0.0)

    def progress(report: PredictReport, total: int) -> None:
        rows(report.written, total, f"{report.generated_tokens / max(report.seconds, 1e-9):,.0f} generated tokens/s")

    # every worker answers a similar share: the first one's progress stands for all of them
    bundle = load_for_inference(config, device=shard.worker_device(config.train.use_cpu))
    predict(config, bundle, progress if env.process_rank() == 0 else None, prompts_only=args.prompts_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
