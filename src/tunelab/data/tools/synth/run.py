"""One synthesis run: seeds -> requests; ask, in rounds, every id without an accepted record (a rejected reply is asked
again up to checks.max_attempts), logging each reply as it arrives; then the dataset, its registration, the report."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tunelab.config.errors import ConfigError, Problem
from tunelab.data.tools.synth.build import build
from tunelab.data.tools.synth.config import SynthConfig
from tunelab.data.tools.synth.log import Entry, LogState, LogWriter, read_log
from tunelab.data.tools.synth.replies import Checker, Rejection
from tunelab.data.tools.synth.report import SynthReport
from tunelab.data.tools.synth.seeds import Request, load_seeds, requests_of
from tunelab.remote.batch import BatchSummary, Job, run_jobs
from tunelab.remote.client import Endpoint
from tunelab.remote.endpoint import EndpointSettings, Price, Reply, Usage
from tunelab.remote.errors import RemoteError
from tunelab.runtime.progress import Counter


def price_of(config: SynthConfig) -> Price:
    """The endpoint's price per million tokens."""
    return Price(config.endpoint.price_in, config.endpoint.price_out)


def settings_of(config: SynthConfig, state: LogState, log: Path, source: str) -> EndpointSettings:
    """The endpoint settings, with what earlier runs of this log spent taken off the budget; an already spent budget
    is a ConfigError naming the key and the fix."""
    e, budget, price = config.endpoint, config.budget, price_of(config)
    spent = Usage(prompt_tokens=state.prompt_tokens, completion_tokens=state.completion_tokens)
    tokens_left = None if budget.max_tokens_total is None else budget.max_tokens_total - spent.tokens
    cost_left = None if budget.max_cost is None else budget.max_cost - spent.cost(price)
    problems = []
    if tokens_left is not None and tokens_left <= 0:
        problems.append(Problem("budget.max_tokens_total", f"already spent: the log {log} records {spent.tokens:,} "
                                f"tokens of {budget.max_tokens_total:,}; raise it to ask for the missing ids"))
    if cost_left is not None and cost_left <= 0:
        problems.append(Problem("budget.max_cost", f"already spent: the log {log} records a cost of "
                                f"{spent.cost(price):.4f} of {budget.max_cost}; raise it to ask for the missing ids"))
    if problems:
        raise ConfigError(problems, source)
    return EndpointSettings(base_url=e.base_url, model=e.model, api_key_env=e.api_key_env, where="endpoint",
                            concurrency=e.concurrency, requests_per_minute=e.rpm, tokens_per_minute=e.tpm,
                            timeout=e.timeout, max_retries=e.retries, backoff=e.backoff, price=price,
                            max_tokens_total=tokens_left, max_cost=cost_left)


class ReplyHandler:
    """The reply handler of a run: checks each reply, appends it to the log, counts it in state and report."""

    def __init__(self, config: SynthConfig, requests: list[Request], state: LogState, writer: LogWriter,
                 report: SynthReport) -> None:
        self.by_id = {request.id: request for request in requests}
        self.checker = Checker(config.reply, config.checks, config.normalize)
        self.state, self.writer, self.report = state, writer, report
        self.max_attempts = config.checks.max_attempts

    def pending(self) -> list[Request]:
        """Ids still to ask: no accepted record, asks left, and no request that failed for good in this run."""
        return [request for request in self.by_id.values()
                if request.id not in self.state.accepted and self.state.asks[request.id] < self.max_attempts
                and request.id not in self.report.failed]

    def on_reply(self, job: Job, reply: Reply) -> None:
        """Check the reply and write it to the log before anything else happens."""
        request = self.by_id[job.key]
        entry: Entry = {"id": request.id, "seed_key": request.seed.key, "row": request.seed.row,
                        "index": request.index, "attempt": self.state.asks[request.id] + 1, "reply": reply.text,
                        "finish_reason": reply.finish_reason, "prompt_tokens": reply.prompt_tokens,
                        "completion_tokens": reply.completion_tokens, "source": request.seed.fields}
        try:
            records = self.checker.records(reply.text, reply.finish_reason, request.prompt)
        except Rejection as why:
            entry.update(accepted=False, reason=why.kind, detail=why.detail)
        else:
            entry.update(accepted=True, records=records)  # type: ignore[arg-type]
        self.writer.append(entry)
        self.state.add(entry)


async def ask(config: SynthConfig, settings: EndpointSettings, handler: ReplyHandler,
              usage: list[Usage]) -> BatchSummary:
    """Rounds of requests until every id is accepted, given up, failed, or the budget is spent."""
    last = BatchSummary()
    async with Endpoint(settings) as endpoint:
        usage.append(endpoint.usage)
        price = settings.price
        for number in range(1, config.checks.max_attempts + 1):
            todo = handler.pending()
            if not todo:
                break
            counter = Counter("synth" if number == 1 else f"synth (re-asks, round {number})", "replies")

            def progress(done: int, total: int) -> None:
                u = endpoint.usage
                counter(done, total, f"{u.requests} requests, {u.prompt_tokens:,} in / {u.completion_tokens:,} out "
                                     f"tokens, cost ≈ {u.cost(price):.4f}")

            jobs = [Job(r.id, r.messages, config.generation.max_tokens, config.generation.temperature) for r in todo]
            last = await run_jobs(endpoint, jobs, handler.on_reply, progress)
            handler.report.failed.update(last.failed)
            if last.budget or not last.answered:
                break
    return last


def synthesize(config: SynthConfig, source: str) -> SynthReport:
    """Run the synthesis a config describes; KeyboardInterrupt leaves report.interrupted set (the log is complete)."""
    seeds, where = load_seeds(config.seeds)
    requests = requests_of(seeds, config.prompt, config.generation.n, where)
    log = config.output.path("log")
    state = read_log(log)
    report = SynthReport(ids=len(requests), torn_lines=state.torn)
    pending = [r for r in requests if r.id not in state.accepted]
    report.asked_this_run = len(pending)
    usage: list[Usage] = []
    if pending:
        settings = settings_of(config, state, log, source)
        writer = LogWriter(log)
        handler = ReplyHandler(config, requests, state, writer, report)
        try:
            summary = asyncio.run(ask(config, settings, handler, usage))
            report.unsent, report.budget = summary.unsent, summary.budget
        except KeyboardInterrupt:
            report.interrupted = True
        except RemoteError as exc:  # the key's variable is not set: nothing was sent
            raise ConfigError([Problem("endpoint.api_key_env", str(exc))], source) from None
        finally:
            writer.close()
    fill_totals(report, config, requests, state, usage)
    if not report.interrupted:
        built = build(requests, state.accepted, config.output, config.dedup)
        if built is not None:
            report.dataset, report.written = str(built.path), built.written
            report.duplicates = built.records - built.written
            if built.registration is not None:
                from tunelab.data.tools.register import describe

                report.registered = "; ".join(describe(built.registration))
    write_report(config.output.path("report"), report)
    return report


def fill_totals(report: SynthReport, config: SynthConfig, requests: list[Request], state: LogState,
                usage: list[Usage]) -> None:
    """This run's usage; all runs' tokens, cost, accepted ids and records, rejections, ids given up on."""
    price = price_of(config)
    if usage:
        u = usage[0]
        report.requests, report.retries = u.requests, u.retries
        report.prompt_tokens, report.completion_tokens, report.cost = u.prompt_tokens, u.completion_tokens, \
            round(u.cost(price), 6)
    total = Usage(prompt_tokens=state.prompt_tokens, completion_tokens=state.completion_tokens)
    report.total_prompt_tokens, report.total_completion_tokens = total.prompt_tokens, total.completion_tokens
    report.total_cost = round(total.cost(price), 6)
    accepted = [state.accepted[r.id] for r in requests if r.id in state.accepted]
    report.accepted = len(accepted)
    report.records = sum(len(entry["records"]) for entry in accepted)  # type: ignore[arg-type]
    ids = {r.id for r in requests}
    for entry in state.rejected:
        if entry["id"] in ids:
            report.reject(entry)
    report.gave_up = [r.id for r in requests if r.id not in state.accepted
                      and state.asks[r.id] >= config.checks.max_attempts]


def write_report(path: Path, report: SynthReport) -> None:
    """The report JSON, readable for non-ASCII text."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
