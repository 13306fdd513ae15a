"""Asking the judge: each question once (the cache answers what was asked before), each reply read at once and
appended to the cache, an unreadable reply asked again (the judge sees its reply and is asked for the verdict
line only) up to `reask` times. The questions go to an OpenAI-compatible endpoint through tunelab.remote, or to
a local model through tunelab's own batch generation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tunelab.config.schema import RunConfig
from tunelab.eval.judge.cache import JudgeCache, Verdict
from tunelab.eval.judge.task import JudgeTask
from tunelab.remote.batch import Job, run_jobs
from tunelab.remote.client import Endpoint
from tunelab.remote.endpoint import EndpointSettings, Price, Reply, Usage

Reader = Callable[[str], "float | str | None"]  # a reply -> the score or verdict read from it, None: unreadable
Progress = Callable[[int, int], None]  # questions settled, questions in all
FOLLOW_UP = {
    "single": {"en": "Your reply does not end with the score in the required form. Reply with only the score, "
                     "in the form [[score]].",
               "zh": "你的回复没有按要求的格式给出分数。请只回复分数，格式为 [[分数]]。"},
    "pairwise": {"en": "Your reply does not end with the verdict in the required form. Reply with only the "
                       "verdict: [[A]], [[B]] or [[C]].",
                 "zh": "你的回复没有按要求的格式给出结论。请只回复结论：[[A]]、[[B]] 或 [[C]]。"},
}


@dataclass(frozen=True)
class Question:
    """One prompt for the judge and the cache key of what it asks."""

    key: str
    prompt: str


@dataclass
class Session:
    """The questions of one task: what still needs asking, the replies as they arrive, the re-asks they need."""

    cache: JudgeCache
    read: Reader
    reask: int
    follow_up: str
    progress: Progress | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    waiting: list[Job] = field(default_factory=list)
    settled: int = 0

    def first_round(self, questions: Sequence[Question]) -> list[Job]:
        """Jobs for the questions the cache cannot answer (an unreadable cached reply with re-asks left resumes)."""
        jobs = []
        for question in questions:
            if question.key in self.prompts:
                continue  # two models gave the same answer: one question
            self.prompts[question.key] = question.prompt
            cached = self.cache.get(question.key)
            if cached is None:
                jobs.append(Job(question.key, [{"role": "user", "content": question.prompt}]))
            elif cached.value is None and cached.attempt <= self.reask:
                jobs.append(self.again(cached))
            else:
                self.settled += 1
        return jobs

    def again(self, verdict: Verdict) -> Job:
        """The follow-up to an unreadable reply: the conversation so far and a request for the verdict line."""
        messages = [{"role": "user", "content": self.prompts[verdict.key]},
                    {"role": "assistant", "content": verdict.text}, {"role": "user", "content": self.follow_up}]
        return Job(verdict.key, messages)

    def receive(self, job: Job, reply: Reply) -> None:
        """Read a reply, append it to the cache now, and queue a re-ask when it is unreadable and asks are left."""
        previous = self.cache.get(job.key)
        attempt = previous.attempt + 1 if previous is not None and len(job.messages) > 1 else 1
        verdict = Verdict(job.key, reply.text, self.read(reply.text), attempt)
        self.cache.add(verdict)
        if verdict.value is None and attempt <= self.reask:
            self.waiting.append(self.again(verdict))
            return
        self.settled += 1
        if self.progress is not None:
            self.progress(self.settled, len(self.prompts))

    def next_round(self) -> list[Job]:
        """The re-asks queued by the last round."""
        jobs, self.waiting = self.waiting, []
        return jobs


@dataclass
class Outcome:
    """What asking cost, and the questions whose requests failed for good (key -> why)."""

    usage: Usage
    price: Price
    failed: dict[str, str] = field(default_factory=dict)
    stopped: str | None = None  # the budget message when a budget stopped the asking


def endpoint_settings(task: JudgeTask, where: str) -> EndpointSettings:
    """The task's judge endpoint and limits."""
    assert task.judge_base_url and task.judge_model  # judge_needs checked it
    return EndpointSettings(base_url=task.judge_base_url, model=task.judge_model, api_key_env=task.judge_api_key_env,
                            where=where, concurrency=task.judge_concurrency,
                            requests_per_minute=task.judge_requests_per_minute,
                            tokens_per_minute=task.judge_tokens_per_minute, timeout=task.judge_timeout,
                            max_retries=task.judge_max_retries, price=price(task), max_cost=task.judge_max_cost,
                            max_tokens_total=task.judge_max_tokens_total)


def price(task: JudgeTask) -> Price:
    """The task's price per million tokens."""
    return Price(task.judge_price_input, task.judge_price_output)


def ask_endpoint(task: JudgeTask, where: str, session: Session, jobs: list[Job]) -> Outcome:
    """Every job (and the re-asks they need) through the endpoint, concurrently within its limits."""
    settings = endpoint_settings(task, where)
    outcome = Outcome(Usage(), settings.price)

    async def rounds() -> None:
        async with Endpoint(settings) as endpoint:
            outcome.usage = endpoint.usage
            batch = [Job(j.key, j.messages, task.judge_max_tokens, task.judge_temperature) for j in jobs]
            while batch:
                summary = await run_jobs(endpoint, batch, session.receive)
                outcome.failed.update(summary.failed)
                outcome.stopped = outcome.stopped or summary.budget
                batch = [Job(j.key, j.messages, task.judge_max_tokens, task.judge_temperature)
                         for j in session.next_round()]

    asyncio.run(rounds())
    return outcome


def ask_local(config: RunConfig, task: JudgeTask, session: Session, jobs: list[Job]) -> Outcome:
    """Every job (and the re-asks they need) through a local model: judge_concurrency rows decode together, longest
    prompts first, and a finished row's slot goes to the next job at once."""
    from tunelab.data.render import generation_prompt
    from tunelab.infer.batch_generate import GenRequest, generate_each, stop_token_ids
    from tunelab.infer.load import load_for_inference
    from tunelab.infer.partial_char import whole_text

    assert task.judge_model_path  # judge_needs checked it
    model = config.model.model_copy(update={"model_name_or_path": task.judge_model_path,
                                            "adapter_name_or_path": None})
    data = config.data.model_copy(update={"template": None})  # the judge's own chat template, not the candidates'
    bundle = load_for_inference(config.model_copy(update={"model": model, "data": data}), from_output_dir=False)
    tokenizer = bundle.tokenizer
    stop = stop_token_ids(tokenizer, bundle.model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    sampling = {"do_sample": True, "temperature": task.judge_temperature} if task.judge_temperature > 0 else {}
    outcome = Outcome(Usage(), price(task))
    while jobs:
        prompts = [generation_prompt(tokenizer, job.messages)[1] for job in jobs]
        order = sorted(range(len(jobs)), key=lambda i: len(prompts[i]), reverse=True)
        requests = [GenRequest(input_ids=prompts[i], max_new_tokens=task.judge_max_tokens, stop_token_ids=stop,
                               **sampling) for i in order]
        for index, result in generate_each(bundle.model, requests, pad if pad is not None else 0,
                                           max_batch=task.judge_concurrency):
            job, ids = jobs[order[index]], prompts[order[index]]
            outcome.usage.requests += 1
            outcome.usage.prompt_tokens += len(ids)
            outcome.usage.completion_tokens += len(result.token_ids)
            session.receive(job, Reply(whole_text(tokenizer, result.token_ids).strip(), result.finish_reason,
                                       len(ids), len(result.token_ids), 1))
        jobs = session.next_round()
    return outcome


def ask_all(config: RunConfig, task: JudgeTask, where: str, session: Session,
            questions: Sequence[Question]) -> Outcome:
    """Ask the judge every question the cache cannot answer; replies land in the session's cache."""
    jobs = session.first_round(questions)
    if not jobs:
        return Outcome(Usage(), price(task))
    if task.judge_model_path:
        return ask_local(config, task, session, jobs)
    return ask_endpoint(task, where, session, jobs)


def cache_path(out: Path, task: str) -> Path:
    """Where a task's judge replies are kept: <eval output_dir>/judge_cache/<task>.jsonl."""
    return out / "judge_cache" / f"{task}.jsonl"


def follow_up(rubric_source: str, mode: str) -> str:
    """The re-ask request in the rubric's language (Chinese when the rubric is written in Chinese)."""
    chinese = sum("\u4e00" <= char <= "\u9fff" for char in rubric_source) > len(rubric_source) // 10
    return FOLLOW_UP[mode]["zh" if chinese else "en"]


def outcome_details(task: JudgeTask, outcome: Outcome) -> dict[str, object]:
    """The judge, what this run's calls used and cost (cached replies cost nothing), and any stop."""
    details: dict[str, object] = {"judge": task.judge_name(), "rubric": task.rubric, "mode": task.mode,
                                  "judge_usage": outcome.usage.to_dict(outcome.price)}
    if outcome.failed:
        details["judge_failed_requests"] = len(outcome.failed)
    if outcome.stopped:
        details["judge_stopped"] = outcome.stopped
    return details


def unparsed_hint(unparsed: int, rows: int, outcome: Outcome) -> str:
    """The console note for rows left without a verdict: why, and where to look."""
    why = outcome.stopped or ("requests failed" if outcome.failed else "no readable verdict after the re-asks")
    return (f"{unparsed} of {rows} rows have no verdict ({why}); they are listed in score.json (unextracted_ids) "
            "and rows.jsonl, left out of the figures, and asked again on a rerun only if failed or not yet asked")
