"""The `tunelab` command line: thin wrappers that build a config and call the entry points."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from tunelab.config.errors import ConfigError
from tunelab.interfaces.data_cli import add_data_parsers
from tunelab.interfaces.eval_cli import add_eval_parsers, route
from tunelab.interfaces.sweep_cli import add_sweep_parsers, route_runs
from tunelab.runtime import malloc_preload
from tunelab.runtime.processes import allow_interrupt
from tunelab.runtime.version import __version__

if TYPE_CHECKING:
    from tunelab.config.schema import RunConfig

EXIT_CONFIG = 2
EXIT_ERROR = 1


def user_errors() -> tuple[type[Exception], ...]:
    """Exceptions whose message is the whole story: printed without a traceback."""
    from tunelab.data.errors import DataError
    from tunelab.eval.errors import EvalError
    from tunelab.export.errors import ExportError
    from tunelab.model.adapters import AdapterError
    from tunelab.model.load import ModelError
    from tunelab.model.value_head import ValueHeadError
    from tunelab.train.run import RunError

    return DataError, ModelError, AdapterError, ValueHeadError, RunError, EvalError, ExportError


def cmd_train(args: argparse.Namespace) -> int:
    from tunelab.config.launch_plan import plan_launch
    from tunelab.config.load import load_config
    from tunelab.runtime import env
    from tunelab.runtime.logging import is_main_process, quiet_libraries
    from tunelab.train.launch import launch
    from tunelab.train.outdir import plan_start

    config = load_config(args.config, args.overrides, purpose="train")
    if config.method.do_predict:  # LLaMA-Factory's do_predict: train (if asked), then answer eval_dataset
        from tunelab.eval.lf_predict import clear_outputs, run_predict

        clear_outputs(config)
    if config.method.do_train:
        plan = plan_launch(config.launch, env.variables())
        if plan is not None:  # several processes: run this same command under torchrun, which trains in each
            plan_start(config)  # an output_dir problem is reported once, before any process starts
            return launch(plan, args.config, args.overrides)
        from tunelab.train.run import train

        train(config)
    if config.method.do_predict and is_main_process():  # prediction runs in one process
        quiet_libraries()
        run_predict(config, trained=config.method.do_train)
    return 0


def cmd_config(args: argparse.Namespace) -> int:
    import tunelab.eval  # noqa: F401 - registers the eval task kinds that --purpose eval validates
    from tunelab.config.load import dump_yaml, load_config
    from tunelab.config.schema import SECTIONS

    if args.keys:
        for name, section in SECTIONS.items():
            print(f"### {name}")
            for key, field in section.model_fields.items():
                default = "required" if field.is_required() else f"default {field.default!r}"
                print(f"  {key} ({default}): {field.description}")
        return 0
    if not args.config:
        print("tunelab config: give a YAML file (or --keys to list the keys)", file=sys.stderr)
        return EXIT_CONFIG
    print(dump_yaml(load_config(args.config, args.overrides, purpose=args.purpose)))
    return 0


def cmd_chat(args: argparse.Namespace) -> int:
    from tunelab.config.load import load_config
    from tunelab.infer.chat import ChatEngine
    from tunelab.infer.load import load_for_inference
    from tunelab.interfaces.chat_cli import compare, one_shot, repl
    from tunelab.runtime.logging import quiet_libraries

    quiet_libraries()
    config = load_config(args.config, args.overrides, purpose="infer")
    engine = ChatEngine(load_for_inference(config), config.infer, seed=config.train.seed)
    if args.compare:
        return compare(engine, args.prompt or [], config.data.default_system)
    if args.prompt:
        return one_shot(engine, args.prompt, config.data.default_system)
    return repl(engine, config.data.default_system)


def cmd_predict(args: argparse.Namespace) -> int:
    from tunelab.config.launch_plan import plan_launch
    from tunelab.config.load import load_config
    from tunelab.infer.backends.select import load_decoder
    from tunelab.infer.predict import PREDICTIONS, PredictReport, predict
    from tunelab.infer.shard import predict_parallel
    from tunelab.runtime import env
    from tunelab.runtime.logging import info, quiet_libraries, warn
    from tunelab.runtime.progress import Counter

    quiet_libraries()
    config = load_config(args.config, args.overrides, purpose="predict")
    if config.method.stage == "rm":
        return predict_reward(config)

    out = config.train.output_dir
    plan = plan_launch(config.launch, env.variables())
    if plan is not None:  # several processes, each answering its share; their files merged in row order
        merged = predict_parallel(config, plan.processes)
        note = PredictReport(too_long=merged.too_long).too_long_note(out)
        if note:
            warn(note)
        info(f"{merged.written} rows answered on {plan.processes} processes, {merged.resumed} already there; "
             f"{out}/{PREDICTIONS}")
        return 0
    rows = Counter("predict", "rows", every=0.0)

    def progress(report: PredictReport, total: int) -> None:
        rows(report.written, total, f"{report.generated_tokens / max(report.seconds, 1e-9):,.0f} generated tokens/s")

    report = predict(config, load_decoder(config), progress)
    note = report.too_long_note(out)
    if note:
        warn(note)
    info(f"{report.written} rows answered, {report.resumed} already there; {out}/{PREDICTIONS}")
    return 0


def predict_reward(config: RunConfig) -> int:
    """`tunelab predict` on a stage rm config: both answers of every pair scored by the reward model."""
    from tunelab.eval.lf_predict import pair_progress
    from tunelab.infer.reward import load_scorer
    from tunelab.infer.score_predict import predict_scores
    from tunelab.runtime.logging import info
    from tunelab.runtime.paths import PREDICT_RESULTS, PREDICTIONS

    report = predict_scores(config, load_scorer(config), pair_progress())
    results = report.results or {}
    out = config.train.output_dir
    info(f"{report.written} pairs scored, {report.resumed} already there ({report.truncated} cut to cutoff_len); "
         f"accuracy {results['predict_accuracy']:.4f}, mean margin {results['predict_margin_mean']:.4f} over "
         f"{results['predict_pairs']} pairs; {out}/{PREDICTIONS}, {out}/{PREDICT_RESULTS}")
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from tunelab.config.load import load_config
    from tunelab.interfaces.api.serve import ServeError, address, batch_size, capacity, check_adapters_flag, serve
    from tunelab.model.adapter_set import parse_adapters
    from tunelab.runtime.logging import quiet_libraries

    quiet_libraries()
    config = load_config(args.config, args.overrides, purpose="infer")
    adapters = parse_adapters(args.adapters) if args.adapters is not None else []
    try:
        where = address(args.host, args.port, args.api_key)
        limits = capacity(batch_size(args.max_batch, config), args.max_queue, args.request_timeout)
        check_adapters_flag(config, adapters)
    except ServeError as exc:
        print(f"tunelab: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    serve(config, where, limits, adapters)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from tunelab.config.load import load_config
    from tunelab.export.run import REPORT, export
    from tunelab.runtime.logging import quiet_libraries

    quiet_libraries()
    config = load_config(args.config, args.overrides, purpose="export")
    report = export(config)
    kind = f"{report.export_format} {report.gguf_type}" if report.gguf_type else report.export_format
    print(f"exported {kind} ({report.dtype}) to {report.export_dir} in {report.seconds:.1f} s: "
          f"{len(report.files)} files, {report.total_bytes / 1e6:,.1f} MB")
    for name, size in report.files.items():
        print(f"  {name}  {size / 1e6:,.2f} MB")
    for check in report.checks:
        print(f"  check {check['output']}: greedy answers equal on {check['greedy_equal']}/{check['prompts']} "
              f"prompts, max |logit difference| {check['max_abs_logit_diff']:.3g}, prompts rendered alike: "
              f"{'yes' if check['prompts_equal'] else 'NO'} (details in {report.export_dir}/{REPORT})")
    if report.hub_url:
        print(f"  pushed to {report.hub_url}")
    if report.next_step:
        print(f"next: {report.next_step}")
    return 0


def cmd_webui(args: argparse.Namespace) -> int:
    from tunelab.interfaces.webui.app import serve, settings
    from tunelab.runtime.env import gradio_env

    serve(settings(args.host, args.port, args.auth, args.share, args.lang, gradio_env()))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from tunelab.interfaces.listing import print_models

    print_models(as_json=args.json)
    return 0


def cmd_env(args: argparse.Namespace) -> int:
    from tunelab.runtime.env import describe

    info = describe()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for name, version in value.items():
                print(f"  {name}: {version}")
        else:
            print(f"{key}: {value}")
    return 0


def cmd_templates(args: argparse.Namespace) -> int:
    from tunelab.data.chat_template import template_names

    print("\n".join(template_names()))
    return 0


def add_config_args(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("config", nargs=None if required else "?", help="YAML config (LLaMA-Factory style)")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. learning_rate=5e-5")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tunelab", description="Fine-tune language models: data, train, chat.")
    parser.add_argument("--version", action="version", version=f"tunelab {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser("train", help="train from a YAML config plus key=value overrides")
    add_config_args(train)
    train.set_defaults(func=cmd_train)

    config = commands.add_parser("config", help="print the resolved config (defaults included)")
    add_config_args(config, required=False)
    config.add_argument("--keys", action="store_true", help="list every supported key with its description")
    config.add_argument("--purpose", choices=["train", "infer", "predict", "eval", "export"], default="train",
                        help="validate as a training config (default) or an inference one")
    config.set_defaults(func=cmd_config)

    chat = commands.add_parser("chat", help="talk to the model (base + the run's adapter)")
    add_config_args(chat)
    chat.add_argument("--prompt", action="append", help="answer this prompt and exit (repeatable)")
    chat.add_argument("--compare", action="store_true", help="answer each --prompt with the base model and with "
                      "the fine-tuned one, side by side")
    chat.set_defaults(func=cmd_chat)

    predict = commands.add_parser("predict", help="answer every row of eval_dataset into "
                                  "<output_dir>/generated_predictions.jsonl (resumable)")
    add_config_args(predict)
    predict.set_defaults(func=cmd_predict)

    api = commands.add_parser("api", help="serve the model over an OpenAI-compatible HTTP API")
    add_config_args(api)
    api.add_argument("--host", help="address to listen on (default API_HOST, else 127.0.0.1)")
    api.add_argument("--port", type=int, help="port (default API_PORT, else 8000)")
    api.add_argument("--api-key", help="require 'Authorization: Bearer KEY' (default API_KEY, else no key)")
    api.add_argument("--max-batch", type=int, help="most answers decoded together; a new request joins the running "
                     "batch at the next step (default per_device_eval_batch_size, at least 8)")
    api.add_argument("--max-queue", type=int, help="most requests waiting for a slot; more are answered 429 with "
                     "Retry-After (default 64)")
    api.add_argument("--request-timeout", type=float, help="seconds a request may wait and run before it is "
                     "stopped with a 504 error (default 600; 0: no limit)")
    api.add_argument("--adapters", metavar="NAME=PATH,...",
                     help="serve several LoRA adapters of the base model at once, each as its own model id (the "
                          "base model answers as model_name_or_path); requests pick one with 'model'")
    api.set_defaults(func=cmd_api)

    export = commands.add_parser("export", help="merge the run into a standalone model (hf), a GGUF file or an "
                                 "Ollama model in export_dir, checked against base + adapters")
    add_config_args(export)
    export.set_defaults(func=cmd_export)

    webui = commands.add_parser("webui", help="the workbench in the browser: data, train, evaluate, chat, export, "
                                "runs (see docs/webui.md)")
    webui.add_argument("--host", help="address to listen on (default GRADIO_SERVER_NAME, else 127.0.0.1)")
    webui.add_argument("--port", type=int, help="port (default GRADIO_SERVER_PORT, else 7860)")
    webui.add_argument("--auth", metavar="USER:PASSWORD", help="ask for this user name and password")
    webui.add_argument("--lang", choices=["en", "zh"], default="en", help="language of the UI at start")
    webui.add_argument("--share", action="store_true", help="also serve on a public gradio.live link "
                       "(default GRADIO_SHARE)")
    webui.set_defaults(func=cmd_webui)

    models = commands.add_parser("models", help="list model aliases and whether they are installed and cached")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    env = commands.add_parser("env", help="versions and devices, for bug reports")
    env.add_argument("--json", action="store_true")
    env.set_defaults(func=cmd_env)

    add_eval_parsers(commands, add_config_args)
    add_data_parsers(commands)
    add_sweep_parsers(commands, add_config_args)

    templates = commands.add_parser("templates", help="list the named chat templates (template: NAME)")
    templates.set_defaults(func=cmd_templates)
    return parser


def run(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Call a command, turning user errors into messages and exit codes."""
    try:
        return func(args)
    except ConfigError as exc:
        print(f"tunelab: {exc.render()}", file=sys.stderr)
        return EXIT_CONFIG
    except user_errors() as exc:
        print(f"tunelab: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except OSError as exc:
        from tunelab.runtime.fs_errors import describe, is_user_error

        if not is_user_error(exc):
            raise
        print(f"tunelab: error: {describe(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ntunelab: interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `tunelab` console script (argv None: this process's own arguments)."""
    allow_interrupt()
    if argv is None:  # a process of its own: `tunelab train` may start again with tcmalloc (never in-process calls)
        malloc_preload.restart_with_tcmalloc(sys.argv[1:])
    parser = build_parser()
    args, extra = parser.parse_known_args(route_runs(route(sys.argv[1:] if argv is None else list(argv))))
    # key=value overrides may also follow the flags (`eval cfg.yaml --compare lr=1`); anything else is an error
    if extra and hasattr(args, "overrides") and all("=" in item and not item.startswith("-") for item in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return run(args.func, args)
