"""Run a sweep: an Optuna study (grid, random or TPE; median pruning) in SQLite or any storage URL, trials run by
`parallel` workers, each trial held in the ledger so no two workers (threads, processes or machines) run it twice.
A killed sweep started again resumes the trials it left; finished trials never run again."""

from __future__ import annotations

import signal
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import optuna
import sqlalchemy
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import Trial, TrialState

from tunelab.config.errors import ConfigError, Problem
from tunelab.runtime import env
from tunelab.runtime.logging import info, warn
from tunelab.sweep.ledger import Entry, Ledger, end_orphan
from tunelab.sweep.naming import trial_name
from tunelab.sweep.params import Scalar
from tunelab.sweep.results import write_results
from tunelab.sweep.spec import SweepPlan
from tunelab.sweep.trial import Interrupted, Outcome, Reporter, TrialRun, headline

T = TypeVar("T")
MAX_REPEATS = 20  # a search that draws only trials already run this many times in a row has nothing new to try
STATES = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED, "failed": TrialState.FAIL}


def distributions(plan: SweepPlan) -> dict[str, BaseDistribution]:
    """Optuna's distribution of each varied key."""
    found: dict[str, BaseDistribution] = {key: CategoricalDistribution(values) for key, values in plan.grid.items()}
    for key, spec in plan.params.items():
        if spec.kind == "cat":
            found[key] = CategoricalDistribution(spec.choices)
        elif spec.kind == "int":
            found[key] = IntDistribution(int(spec.low), int(spec.high))
        else:
            found[key] = FloatDistribution(spec.low, spec.high, log=spec.kind == "log")
    return found


def storage_for(url: str) -> optuna.storages.RDBStorage:
    """The study's storage; SQLite waits for a lock instead of failing when several workers write."""
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs)


def first_start(make: Callable[[], T], attempts: int = 5) -> T:
    """Open a database that another worker may be creating at this moment: the loser of the race to create its
    tables (a duplicate-key or a table-exists error) tries again, and then finds them made."""
    for attempt in range(1, attempts + 1):
        try:
            return make()
        except sqlalchemy.exc.SQLAlchemyError:
            if attempt == attempts:
                raise
            time.sleep(0.5 * attempt)
    raise AssertionError("unreachable")


def trial_devices(parallel: int) -> list[str | None]:
    """The device of each worker: one GPU each where there are several, else whatever the trial finds."""
    devices = env.cuda_devices() if parallel > 1 else []
    if len(devices) < 2:
        return [None] * parallel
    if parallel > len(devices):
        warn(f"parallel {parallel} on {len(devices)} GPUs: some trials share a GPU")
    return [devices[slot % len(devices)] for slot in range(parallel)]


@dataclass
class Job:
    """A trial this worker holds: its name, values and the Optuna trial of this attempt."""

    name: str
    values: dict[str, Scalar]
    trial: Trial
    attempt: int


class Sweep:
    """One sweep process: its study, ledger and workers."""

    def __init__(self, plan: SweepPlan) -> None:
        self.plan = plan
        plan.folder.mkdir(parents=True, exist_ok=True)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        # PartialFixedSampler (fixing a trial's values) is marked experimental; its warning says nothing to users
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        self.storage = first_start(lambda: storage_for(plan.storage_url()))
        check_study(first_start(lambda: optuna.create_study(
            study_name=plan.study_name, storage=self.storage, direction=plan.direction, load_if_exists=True)), plan)
        self.ledger = first_start(lambda: Ledger(plan.storage_url(), plan.study_name))
        self.distributions = distributions(plan)
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def study(self, fixed: dict[str, Scalar] | None = None) -> optuna.Study:
        """The study with this plan's sampler (fixed values: exactly those) and pruner."""
        count = len(self.storage.get_all_trials(self.storage.get_study_id_from_name(self.plan.study_name),
                                                deepcopy=False))
        seed = self.plan.seed + count  # a fresh stream per draw, reproducible from the study's history
        sampler: optuna.samplers.BaseSampler = (optuna.samplers.TPESampler(seed=seed) if self.plan.sampler == "tpe"
                                                else optuna.samplers.RandomSampler(seed=seed))
        if fixed is not None:
            sampler = optuna.samplers.PartialFixedSampler(fixed, sampler)
        pruner = (optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=0) if self.plan.pruner == "median"
                  else optuna.pruners.NopPruner())
        return optuna.load_study(study_name=self.plan.study_name, storage=self.storage, sampler=sampler,
                                 pruner=pruner)

    def start(self, name: str, values: dict[str, Scalar], attempt: int) -> Job:
        """The Optuna trial of an attempt at a held name, its values fixed."""
        trial = self.study(values).ask(self.distributions)
        trial.set_user_attr("name", name)
        self.ledger.update(name, number=trial.number)
        return Job(name, values, trial, attempt)

    def resumable(self) -> Job | None:
        """A trial left by a killed or interrupted worker, now held by this one."""
        for name in self.ledger.stale_names():
            old = self.ledger.get(name)
            taken = self.ledger.take(name, old.values) if old else None
            if taken is not None:
                if old is not None and end_orphan(old):
                    info(f"trial {name}: stopped its training process, left running by the sweep that was killed")
                if old is not None and old.number is not None:
                    self.fail_left(old.number)
                info(f"trial {name}: resuming (attempt {taken.attempts})")
                return self.start(name, taken.values, taken.attempts)
        return None

    def fail_left(self, number: int) -> None:
        """End the Optuna trial of a killed attempt as FAIL: left RUNNING, Optuna's tools would show it running
        for ever next to the attempt that resumes it."""
        study_id = self.storage.get_study_id_from_name(self.plan.study_name)
        trial_id = self.storage.get_trial_id_from_study_id_trial_number(study_id, number)
        if self.storage.get_trial(trial_id).state == TrialState.RUNNING:
            self.storage.set_trial_user_attr(trial_id, "error", "its sweep was killed; the trial resumed as a new "
                                                                "Optuna trial")
            self.storage.set_trial_state_values(trial_id, TrialState.FAIL)

    def next_grid(self) -> Job | None:
        """The next combination nobody has taken."""
        for values in self.plan.combinations():
            name = trial_name(values)
            if self.ledger.get(name) is None:
                taken = self.ledger.take(name, values)
                if taken is not None:
                    return self.start(name, values, taken.attempts)
        return None

    def next_search(self) -> Job | None:
        """A new draw of the sampler; a draw equal to a trial already run is told that trial's result."""
        for _ in range(MAX_REPEATS):
            if len(self.ledger.entries()) >= (self.plan.trials or 0):
                return None
            study = self.study()
            trial = study.ask(self.distributions)
            values = {key: trial.params[key] for key in self.plan.varied}
            name = trial_name(values)
            taken = self.ledger.take(name, values)
            if taken is not None:
                trial.set_user_attr("name", name)
                self.ledger.update(name, number=trial.number)
                return Job(name, values, trial, taken.attempts)
            self.tell_repeat(study, trial, self.ledger.get(name))
        info(f"the sampler drew only trials already run {MAX_REPEATS} times in a row: the search space is used up")
        return None

    def tell_repeat(self, study: optuna.Study, trial: Trial, earlier: Entry | None) -> None:
        """A draw of values already run: tell the sampler that trial's result instead of training again."""
        trial.set_user_attr("repeat_of", earlier.name if earlier else None)
        if earlier is not None and earlier.state == "complete" and earlier.value is not None:
            study.tell(trial, earlier.value)
        else:
            study.tell(trial, state=STATES.get(earlier.state if earlier else "", TrialState.FAIL))

    def next_job(self) -> Job | None:
        """The trial this worker runs next: a resumable one first, else a new one; None when all are done."""
        with self.lock:
            job = self.resumable()
            if job is None:
                job = self.next_grid() if self.plan.sampler == "grid" else self.next_search()
            return job

    def run_job(self, job: Job, device: str | None) -> None:
        """Train and evaluate one trial; record its end in the study and the ledger."""
        study = self.study()
        folder = self.plan.folder / job.name
        info(f"trial {job.name}: started" + (f" on GPU {device}" if device is not None else ""))
        previous = self.ledger.get(job.name)
        earlier_s = previous.seconds or 0.0 if previous else 0.0
        run = TrialRun(folder, self.plan.trial_flat(job.values, folder), self.plan.metric, device, self.stop,
                       reporter=self.reporter(job.trial) if self.plan.pruner == "median" else None,
                       heartbeat=lambda: self.ledger.beat(job.name),
                       started=lambda pid: self.ledger.update(job.name, child=pid))
        started = time.time()
        try:
            outcome = run.run()
        except Interrupted:  # Ctrl-C, SIGTERM (of the sweep or of the trial's process): the whole sweep stops
            self.stop.set()
            study.tell(job.trial, state=TrialState.FAIL)
            self.ledger.finish(job.name, "interrupted", error="interrupted; resumed when the sweep starts again",
                               seconds=earlier_s + time.time() - started)
            info(f"trial {job.name}: interrupted (its checkpoints stay; the next start resumes it)")
            return
        except Exception as exc:  # noqa: BLE001 - a trial's own failure is recorded and the sweep goes on
            outcome = Outcome("failed", error=f"{type(exc).__name__}: {exc}")
        if outcome.error:
            job.trial.set_user_attr("error", outcome.error[:1000])
        study.tell(job.trial, outcome.value if outcome.state == "complete" else None, state=STATES[outcome.state])
        self.ledger.finish(job.name, outcome.state, outcome.value, outcome.error, earlier_s + outcome.seconds)
        info(f"trial {job.name}: {outcome.state}" + (f", {self.plan.metric} {outcome.value:.4g}"
                                                     if outcome.value is not None else "")
             + (f" ({headline(outcome.error)})" if outcome.error else "") + f" in {outcome.seconds:.0f} s")
        self.write(figures=False)  # the table after every trial; the figures when the sweep stops

    def reporter(self, trial: Trial) -> Reporter:
        """Report each eval loss to the pruner; True when the trial should stop."""
        def report(step: int, loss: float) -> bool:
            trial.report(loss, step)
            return trial.should_prune()

        return report

    def work(self, device: str | None) -> None:
        """One worker: take trials until there are none left or the sweep stops."""
        try:
            while not self.stop.is_set():
                job = self.next_job()
                if job is None:
                    return
                self.run_job(job, device)
        except Exception as exc:  # noqa: BLE001 - a storage failure ends this worker with a message, not silence
            warn(f"sweep worker stopped: {type(exc).__name__}: {exc}")

    def write(self, figures: bool = True) -> dict[str, object]:
        """The results tables (and figures), from the ledger as it is now."""
        with self.lock:
            return write_results(self.plan, self.ledger.entries(), figures)

    def run(self) -> dict[str, object]:
        """Run workers until every trial is done (or Ctrl-C / SIGTERM: trials are left to resume)."""
        workers = [threading.Thread(target=self.work, args=(device,), name=f"sweep-{slot}", daemon=True)
                   for slot, device in enumerate(trial_devices(self.plan.parallel))]
        with terminate_as_interrupt():
            try:
                for worker in workers:
                    worker.start()
                while any(worker.is_alive() for worker in workers):
                    time.sleep(0.5)
            except KeyboardInterrupt:
                self.stop.set()
                for worker in workers:
                    worker.join()
                self.write()
                raise
        return self.write()


def check_study(study: optuna.Study, plan: SweepPlan) -> None:
    """A study started with another objective cannot go on with this one: its trials' values would not compare."""
    made = study.user_attrs.get("metric")
    if made is None:
        study.set_user_attr("metric", plan.metric)
        made = plan.metric
    problems = []
    if made != plan.metric:
        problems.append(Problem("sweep.metric", f"the study {plan.study_name!r} in {plan.storage_url()} was started "
                                                f"with metric {made}"))
    if study.direction.name.lower() != plan.direction:
        problems.append(Problem("sweep.direction", f"the study {plan.study_name!r} in {plan.storage_url()} was "
                                                   f"started to {study.direction.name.lower()}"))
    if problems:
        fix = "; give a new study_name (or --study-name) for the new objective, or set the old one back"
        raise ConfigError([Problem(p.key, p.message + fix) for p in problems])


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM stops the sweep as Ctrl-C does: trials are ended and left to resume."""
    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_sweep(plan: SweepPlan) -> dict[str, object]:
    """Run (or resume) the sweep; returns what sweep_results.json holds."""
    sweep = Sweep(plan)
    try:
        return sweep.run()
    finally:
        sweep.ledger.dispose()
