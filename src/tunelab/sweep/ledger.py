"""The sweep's ledger: one row per trial name, in the study's own database, taken by one worker at a time.

Optuna's samplers may hand the same values to two workers (its GridSampler says so), so a worker runs a trial only
after inserting its name here: the primary key makes the first insert win on SQLite, PostgreSQL or MySQL alike.
A row whose worker died (same host, process gone; or no heartbeat for GRACE_S) is taken over with one
compare-and-set update, so a killed trial is resumed by exactly one worker, and a finished one never runs again."""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass

import psutil
import sqlalchemy as sa

from tunelab.sweep.params import Scalar

GRACE_S = 180.0  # a worker beats every few seconds while its trial runs; silent this long, its trial is taken over
FINISHED = ("complete", "pruned", "failed")
METADATA = sa.MetaData()
TRIALS = sa.Table(
    "tunelab_sweep_trials", METADATA,
    sa.Column("study", sa.String(200), primary_key=True),
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("state", sa.String(16), nullable=False),  # running, interrupted, complete, pruned, failed
    sa.Column("values_json", sa.Text, nullable=False),
    sa.Column("number", sa.Integer),  # the Optuna trial of the latest attempt
    sa.Column("host", sa.String(200)), sa.Column("pid", sa.Integer), sa.Column("token", sa.String(64)),
    sa.Column("child", sa.Integer),  # the process of the trial's current command (train or eval)
    sa.Column("beat", sa.Float), sa.Column("attempts", sa.Integer, nullable=False, default=1),
    sa.Column("value", sa.Float), sa.Column("error", sa.Text), sa.Column("seconds", sa.Float),
    sa.Column("started", sa.Float), sa.Column("finished", sa.Float))


@dataclass(frozen=True)
class Entry:
    """One ledger row as read."""

    name: str
    state: str
    values: dict[str, Scalar]
    number: int | None
    attempts: int
    value: float | None
    error: str | None
    seconds: float | None
    started: float | None
    finished: float | None
    host: str | None
    pid: int | None
    token: str | None
    beat: float | None
    child: int | None = None


def engine_for(url: str) -> sa.Engine:
    """An engine on the study's database; SQLite waits for a lock instead of failing at once."""
    kwargs = {"connect_args": {"timeout": 120}} if url.startswith("sqlite") else {}
    return sa.create_engine(url, **kwargs)


def worker_token() -> str:
    """This process and thread, as written into the rows it holds."""
    import threading

    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}"


class Ledger:
    """The trial names of one study and who holds each."""

    def __init__(self, url: str, study: str) -> None:
        self.engine = engine_for(url)
        self.study = study
        METADATA.create_all(self.engine, checkfirst=True)

    def entries(self) -> list[Entry]:
        """Every row of the study, in the order the trials were first taken."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(TRIALS).where(TRIALS.c.study == self.study)
                                .order_by(TRIALS.c.started)).mappings().all()
        return [entry(row) for row in rows]

    def get(self, name: str) -> Entry | None:
        """One row, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(TRIALS).where(self.key(name))).mappings().first()
        return entry(row) if row else None

    def key(self, name: str) -> sa.ColumnElement[bool]:
        """The WHERE clause of one row of this study."""
        return sa.and_(TRIALS.c.study == self.study, TRIALS.c.name == name)

    def take(self, name: str, values: dict[str, Scalar]) -> Entry | None:
        """Hold the trial for this worker: a new name, or one whose worker is gone; None when it is finished or
        another live worker holds it."""
        now = time.time()
        mine = {"state": "running", "host": socket.gethostname(), "pid": os.getpid(), "token": worker_token(),
                "beat": now}
        try:
            with self.engine.begin() as conn:
                conn.execute(TRIALS.insert().values(study=self.study, name=name, values_json=json.dumps(values),
                                                    attempts=1, started=now, **mine))
            return self.get(name)
        except sa.exc.IntegrityError:
            pass
        old = self.get(name)
        if old is None or old.state in FINISHED or (old.state == "running" and not stale(old, now)):
            return None
        with self.engine.begin() as conn:  # compare-and-set: only the first of several takers matches the old row
            done = conn.execute(TRIALS.update().where(self.key(name), TRIALS.c.state == old.state,
                                                      TRIALS.c.token == old.token, TRIALS.c.beat == old.beat)
                                .values(attempts=old.attempts + 1, error=None, **mine))
        return self.get(name) if done.rowcount == 1 else None

    def update(self, name: str, **values: object) -> None:
        """Change columns of a row this worker holds."""
        with self.engine.begin() as conn:
            conn.execute(TRIALS.update().where(self.key(name), TRIALS.c.token == worker_token()).values(**values))

    def beat(self, name: str) -> None:
        """Say this worker is still on the trial."""
        self.update(name, beat=time.time())

    def finish(self, name: str, state: str, value: float | None = None, error: str | None = None,
               seconds: float | None = None) -> None:
        """Record how the trial ended (interrupted: to be resumed by the next worker that comes by)."""
        self.update(name, state=state, value=value, error=error, seconds=seconds, finished=time.time())

    def stale_names(self) -> list[str]:
        """Trials to resume: interrupted, or held by a worker that is gone."""
        now = time.time()
        return [e.name for e in self.entries() if e.state == "interrupted" or (e.state == "running" and stale(e, now))]

    def dispose(self) -> None:
        """Close the database connections."""
        self.engine.dispose()


def stale(row: Entry, now: float) -> bool:
    """Whether the worker holding a running row is gone: its process ended (same host), or it went silent (another
    host, or a process id taken again by another program)."""
    silent = row.beat is None or now - row.beat > GRACE_S
    if row.host == socket.gethostname() and row.pid is not None:
        return silent or not alive(row.pid)
    return silent


def end_orphan(row: Entry) -> bool:
    """Stop the trial process a killed sweep left running on this host (it would train into the folder the resumed
    trial trains into); True when there was one."""
    if row.child is None or row.host != socket.gethostname() or not alive(row.child):
        return False
    try:
        process = psutil.Process(row.child)
        if "tunelab" not in " ".join(process.cmdline()):  # the id was taken again by another program
            return False
        process.terminate()
        process.wait(timeout=30)
    except psutil.TimeoutExpired:
        process.kill()
    except psutil.Error:
        return False
    return True


def alive(pid: int) -> bool:
    """Whether a process of this id runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def entry(row: sa.RowMapping) -> Entry:
    """A database row as an Entry."""
    return Entry(name=row["name"], state=row["state"], values=json.loads(row["values_json"]), number=row["number"],
                 attempts=row["attempts"], value=row["value"], error=row["error"], seconds=row["seconds"],
                 started=row["started"], finished=row["finished"], host=row["host"], pid=row["pid"],
                 token=row["token"], beat=row["beat"], child=row["child"])
