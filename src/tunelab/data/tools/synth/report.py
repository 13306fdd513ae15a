"""The synthesis report: requests, retries, tokens, cost, accepted, rejected by reason (with examples), duplicates
removed, failed and missing ids; as JSON and as the lines the command prints."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from tunelab.data.tools.synth.log import Entry

EXAMPLES = 3  # rejected replies quoted per reason
SHOWN = 200  # characters of a reply quoted


@dataclass
class Rejected:
    """Rejected replies of one kind: how many, and a few examples (id, detail, start of the reply)."""

    count: int = 0
    examples: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SynthReport:
    """Everything one `tunelab data synth` run did and what the log holds in all."""

    ids: int = 0  # (seed, index) pairs asked for by the config
    asked_this_run: int = 0  # ids with no accepted record when the run started
    requests: int = 0
    retries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    total_prompt_tokens: int = 0  # all runs of this log
    total_completion_tokens: int = 0
    total_cost: float = 0.0
    accepted: int = 0  # ids with an accepted reply (all runs)
    records: int = 0  # records they gave (pairs mode: several per reply)
    rejected: dict[str, Rejected] = field(default_factory=dict)  # rejected replies by kind (all runs)
    gave_up: list[str] = field(default_factory=list)  # ids rejected checks.max_attempts times
    failed: dict[str, str] = field(default_factory=dict)  # ids whose request failed for good this run
    unsent: int = 0
    budget: str | None = None
    duplicates: int = 0
    written: int = 0
    dataset: str | None = None
    registered: str | None = None
    torn_lines: int = 0
    interrupted: bool = False

    @property
    def missing(self) -> int:
        """Ids without an accepted record."""
        return self.ids - self.accepted

    def reject(self, entry: Entry) -> None:
        """Count one rejected reply under its kind, keeping the first few as examples."""
        group = self.rejected.setdefault(str(entry["reason"]), Rejected())
        group.count += 1
        if len(group.examples) < EXAMPLES:
            group.examples.append({"id": str(entry["id"]), "detail": str(entry.get("detail", "")),
                                   "reply": str(entry.get("reply", ""))[:SHOWN]})

    def to_dict(self) -> dict[str, object]:
        """The report JSON."""
        data = asdict(self)
        data["missing"] = self.missing
        return data

    def lines(self) -> list[str]:
        """What the command prints."""
        out = [f"requests {self.requests} ({self.retries} retries), tokens {self.prompt_tokens:,} in / "
               f"{self.completion_tokens:,} out, cost {self.cost:.4f} this run "
               f"(all runs: {self.total_prompt_tokens:,} in / {self.total_completion_tokens:,} out, "
               f"cost {self.total_cost:.4f})",
               f"accepted {self.accepted}/{self.ids} ids ({self.records} records); asked this run: "
               f"{self.asked_this_run}"]
        for kind, group in self.rejected.items():
            example = group.examples[0]
            out.append(f"rejected ({kind}): {group.count}, e.g. {example['id']}: {example['detail']}")
        if self.gave_up:
            out.append(f"gave up after checks.max_attempts rejections: {len(self.gave_up)} ids "
                       f"({', '.join(self.gave_up[:5])}{', ...' if len(self.gave_up) > 5 else ''}); raise "
                       "checks.max_attempts to ask them again")
        for key, why in list(self.failed.items())[:5]:
            out.append(f"failed: {key}: {why}")
        if len(self.failed) > 5:
            out.append(f"... and {len(self.failed) - 5} more failed ids (all in the report JSON)")
        if self.budget:
            out.append(f"stopped: {self.budget}; {self.unsent} requests not sent (rerun to continue)")
        if self.torn_lines:
            out.append("the log's last line was unfinished (the process died while writing it): dropped, asked again")
        if self.dataset:
            out.append(f"wrote {self.written} records to {self.dataset} ({self.duplicates} duplicates removed)")
        if self.registered:
            out.append(self.registered)
        if self.missing:
            out.append(f"incomplete: {self.missing} ids have no accepted record; rerun the same command to ask "
                       "only for them")
        return out
