"""The synthesis config: a closed, typed YAML model; every problem (unknown keys, an API key written into the file,
a template or regex that does not compile) reported together, each with its fix."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import (BaseModel, ConfigDict, Field, JsonValue, NonNegativeFloat, NonNegativeInt, PositiveFloat,
                      PositiveInt, ValidationError, model_validator)

from tunelab.config.errors import ConfigError, Problem, location, pydantic_problems
from tunelab.runtime.strict_yaml import load_unique
from tunelab.runtime.suggest import suggest

# what a key written into the YAML looks like: OpenAI/DeepSeek/Anthropic-style prefixes, bearer tokens
KEY_VALUE = re.compile(r"^(Bearer\s+\S+|(sk|pk|rk|sess)-[A-Za-z0-9_\-]{12,}|[A-Za-z0-9]{32,})$")
KEY_NAMES = re.compile(r"(^|_)(api_?key|secret|token|authorization|password)$", re.IGNORECASE)
VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class Section(BaseModel):
    """Closed and frozen: an unknown key is an error."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class EndpointSection(Section):
    base_url: str = Field(description="The OpenAI-compatible server, usually ending in /v1.")
    model: str = Field(description="The model name the server knows.")
    api_key_env: str | None = Field(None, description="The NAME of the environment variable holding the API key "
                                                      "(never the key itself); leave out for local servers.")
    concurrency: PositiveInt = Field(8, description="Requests in flight at once.")
    rpm: PositiveFloat | None = Field(None, description="Requests per minute at most.")
    tpm: PositiveFloat | None = Field(None, description="Tokens per minute at most (estimated before, settled after).")
    timeout: PositiveFloat = Field(60.0, description="Seconds to wait for one answer before retrying.")
    retries: NonNegativeInt = Field(5, description="Retries on 429/5xx/timeouts/dropped connections/malformed "
                                                   "replies, with backoff (Retry-After honoured).")
    backoff: NonNegativeFloat = Field(1.0, description="First retry delay in seconds; doubles each retry.")
    price_in: NonNegativeFloat = Field(0.0, description="Price per million prompt tokens (for the cost figures).")
    price_out: NonNegativeFloat = Field(0.0, description="Price per million completion tokens.")


class BudgetSection(Section):
    max_tokens_total: PositiveInt | None = Field(None, description="Stop sending once this many tokens are used "
                                                                   "(counted over every run of this log).")
    max_cost: PositiveFloat | None = Field(None, description="Stop sending once this cost is reached (all runs).")


class SeedsSection(Section):
    file: str | None = Field(None, description="Seed rows: any file `tunelab data convert` reads.")
    sheet: str | None = Field(None, description="xlsx: the sheet name or 1-based number.")
    columns: list[str] | None = Field(None, description="Only these seed fields (the prompt and the kept seed).")
    limit: PositiveInt | None = Field(None, description="Only the first N seeds.")
    topics: list[str] | None = Field(None, description="Instead of a file: a list of topics ({{ topic }}).")

    @model_validator(mode="after")
    def one_source(self) -> SeedsSection:
        """Exactly one of file and topics."""
        if (self.file is None) == (self.topics is None):
            raise ValueError("give either file (seed rows) or topics (a list), not both or neither")
        if self.topics is not None and not self.topics:
            raise ValueError("topics is empty; list at least one topic")
        return self


class PromptSection(Section):
    template: str = Field(description="Jinja template of the request over the seed's fields ({{ field }}); "
                                      "`index` is the output number 0..n-1, `seed` the whole row.")
    system: str | None = Field(None, description="System prompt (a Jinja template too).")


class GenerationSection(Section):
    n: PositiveInt = Field(1, description="Outputs per seed.")
    temperature: float = Field(0.8, ge=0, le=2, description="Sampling temperature.")
    max_tokens: PositiveInt = Field(512, description="Most tokens per reply.")


class ReplySection(Section):
    mode: Literal["text", "json", "pairs"] = Field("text", description="text: the reply is the output and the "
                                                   "prompt the instruction; json: one JSON object per reply; pairs: "
                                                   "a JSON list of objects, each a record.")
    fields: dict[Literal["instruction", "input", "output"], str] = Field(
        default_factory=lambda: {"instruction": "instruction", "input": "input", "output": "output"},
        description="json/pairs: which JSON key fills each record field (input optional).")


class ChecksSection(Section):
    json_schema: dict[str, JsonValue] | str | None = Field(None, description="A JSON schema (or a .json file) the "
                                                           "reply must satisfy (needs jsonschema).")
    regex: str | None = Field(None, description="A regex every record's output must contain a match of.")
    max_attempts: PositiveInt = Field(3, description="Asks per id in all, re-asks of rejected replies included.")
    reject_truncated: bool = Field(True, description="Reject replies cut off by max_tokens.")


class NormalizeSection(Section):
    strip: bool = Field(True, description="Strip leading and trailing whitespace of every field.")
    punctuation: Literal["keep", "halfwidth", "fullwidth"] = Field(
        "keep", description="halfwidth: full-width ASCII forms (，！？（） ...) and 。 to ASCII; fullwidth: ASCII "
                            ", ? ! : ; ( ) next to Chinese characters to full width.")


class OutputSection(Section):
    file: str = Field(description="The dataset file written at the end (.json).")
    format: Literal["alpaca", "sharegpt"] = Field("alpaca", description="Record format.")
    name: str | None = Field(None, description="Dataset name in dataset_info.json (default: the file's stem).")
    dataset_dir: str | None = Field(None, description="Folder of dataset_info.json (default: the file's folder).")
    register_dataset: bool = Field(True, description="Register the dataset in dataset_info.json (with its sha1).")
    seed_field: str | None = Field("seed", description="Field keeping the source seed in each record (null: none).")
    log: str | None = Field(None, description="The JSONL of replies (default: FILE with .synth.jsonl).")
    report: str | None = Field(None, description="The report JSON (default: FILE with .report.json).")

    def path(self, which: Literal["file", "log", "report"]) -> Path:
        """The dataset, log or report path."""
        file = Path(self.file)
        given = {"file": self.file, "log": self.log, "report": self.report}[which]
        if given is not None:
            return Path(given)
        return file.with_suffix(".synth.jsonl" if which == "log" else ".report.json")


class SynthConfig(Section):
    endpoint: EndpointSection
    budget: BudgetSection = Field(default_factory=BudgetSection)
    seeds: SeedsSection
    prompt: PromptSection
    generation: GenerationSection = Field(default_factory=GenerationSection)
    reply: ReplySection = Field(default_factory=ReplySection)
    checks: ChecksSection = Field(default_factory=ChecksSection)
    normalize: NormalizeSection = Field(default_factory=NormalizeSection)
    dedup: Literal["off", "exact", "whitespace", "punct"] = Field(
        "punct", description="exact: identical records; whitespace/punct: also near duplicates (NFKC, case, "
                             "whitespace; punct also ignores punctuation), as `tunelab data dedup`.")
    output: OutputSection


def leaked_keys(value: object, path: tuple[int | str, ...] = ()) -> list[Problem]:
    """Problems for API keys written into the YAML: a key-like name, or a key-like value anywhere."""
    fix = "remove it; export the key in an environment variable and give its NAME as endpoint.api_key_env"
    problems = []
    if isinstance(value, dict):
        for name, item in value.items():
            where = (*path, str(name))
            if KEY_NAMES.search(str(name)) and str(name) != "api_key_env":
                problems.append(Problem(location(where), f"an API key must not be written into the YAML; {fix}"))
            else:
                problems += leaked_keys(item, where)
    elif isinstance(value, list):
        for number, item in enumerate(value):
            problems += leaked_keys(item, (*path, number))
    elif isinstance(value, str) and KEY_VALUE.match(value.strip()):
        problems.append(Problem(location(path), f"this looks like an API key written into the YAML; {fix}"))
    return problems


def unknown_key(err: dict[str, object], model: type[BaseModel]) -> str:
    """'unknown key; did you mean X?' with the section's known keys."""
    section: type[BaseModel] = model
    for part in err["loc"][:-1]:  # type: ignore[index]
        field = section.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            section = annotation
    name = str(err["loc"][-1])  # type: ignore[index]
    known = list(section.model_fields)
    return f"unknown key{suggest(name, known) or '; the keys here are: ' + ', '.join(known)}"


def schema_problems(exc: ValidationError) -> list[Problem]:
    """pydantic's errors as Problems, with did-you-mean for unknown keys."""
    problems = []
    for err, problem in zip(exc.errors(), pydantic_problems(exc)):
        if err["type"] == "extra_forbidden":
            problem = Problem(problem.key, unknown_key(dict(err), SynthConfig))
        problems.append(problem)
    return problems


def compile_problems(config: SynthConfig) -> list[Problem]:
    """Templates, the regex and the schema compile; api_key_env is a variable name, not a key."""
    from jinja2 import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    problems = []
    env = SandboxedEnvironment()
    for key, text in (("prompt.template", config.prompt.template), ("prompt.system", config.prompt.system)):
        if text is not None:
            try:
                env.parse(text)
            except TemplateSyntaxError as exc:
                problems.append(Problem(key, f"not a valid Jinja template: {exc.message} (line {exc.lineno})"))
    if config.checks.regex is not None:
        try:
            re.compile(config.checks.regex)
        except re.error as exc:
            problems.append(Problem("checks.regex", f"does not compile: {exc}; fix the pattern"))
    if config.checks.json_schema is not None:
        from tunelab.text.layout import LayoutError, schema_layout

        try:
            schema_layout(config.checks.json_schema)
        except LayoutError as exc:
            problems.append(Problem("checks.json_schema", str(exc)))
    name = config.endpoint.api_key_env
    if name is not None and not VARIABLE_NAME.match(name):
        problems.append(Problem("endpoint.api_key_env", "takes the NAME of an environment variable (e.g. "
                                "DEEPSEEK_API_KEY), not the key; export the key in that variable"))
    if config.reply.mode != "text" and not {"instruction", "output"} <= set(config.reply.fields):
        problems.append(Problem("reply.fields", "json and pairs replies need instruction and output mapped, e.g. "
                                "{instruction: question, output: answer}"))
    if Path(config.output.file).suffix.lower() != ".json":
        problems.append(Problem("output.file", "name a .json file (the dataset is written as a JSON array)"))
    return problems


def load_synth_config(path: Path) -> SynthConfig:
    """Read and check a synthesis YAML; ConfigError listing every problem."""
    if not path.is_file():
        raise ConfigError([Problem(str(path), "no such file; give the path of a synthesis YAML "
                                              "(see examples/synth.yaml)")])
    try:
        data = load_unique(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:  # a key set twice (DuplicateYamlKey) names both lines
        raise ConfigError([Problem(str(path), f"not valid YAML ({exc})")]) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem(str(path), "the file must be a mapping of sections (endpoint, seeds, prompt, "
                                              "output, ...)")])
    leaks = leaked_keys(data)
    try:
        config = SynthConfig.model_validate(data)
    except ValidationError as exc:
        leaked = {problem.key for problem in leaks}
        rest = [p for p in schema_problems(exc) if p.key not in leaked]
        raise ConfigError(leaks + rest, str(path)) from None
    problems = leaks + compile_problems(config)
    if problems:
        raise ConfigError(problems, str(path))
    return config
