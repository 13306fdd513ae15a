"""The torchrun launch a config asks for: processes, nodes, rank, address and port, and where each came from.

The launch keys of the config (nproc_per_node, nnodes, node_rank, master_addr, master_port) win; where one is
not set, LLaMA-Factory's environment variable (NPROC_PER_NODE, NNODES, NODE_RANK, MASTER_ADDR, MASTER_PORT)
is used, else a default. FORCE_TORCHRUN=1 launches through torchrun even for one process. Planning is pure: it
reads the launch section and an `environ` mapping (tests pass dicts), so the launch checks and train/launch.py
share it; starting the processes is train/launch.py's.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tunelab.config.errors import ConfigError, Problem
from tunelab.config.schema import LaunchSection

TRUE_WORDS = ("1", "true", "yes", "y", "on")
WORKER_VARIABLES = ("LOCAL_RANK", "WORLD_SIZE")  # set by torchrun (and accelerate/deepspeed launchers) in workers
TORCHRUN_DEFAULT_PORT = 29500  # every node must use the same port, so a multi-node run cannot pick a free one

# plan field, config key, environment variable, default (None: decided at launch), smallest valid number
SETTINGS: tuple[tuple[str, str, str, int | str | None, int], ...] = (
    ("processes", "nproc_per_node", "NPROC_PER_NODE", 1, 1),
    ("nnodes", "nnodes", "NNODES", 1, 1),
    ("node_rank", "node_rank", "NODE_RANK", 0, 0),
    ("master_addr", "master_addr", "MASTER_ADDR", "127.0.0.1", 0),
    ("master_port", "master_port", "MASTER_PORT", None, 1),
)


@dataclass(frozen=True)
class Setting:
    """One launch value and where it came from: the config key, the environment variable, or 'default'."""

    value: int | str | None
    source: str


@dataclass(frozen=True)
class Plan:
    """How `tunelab train` is launched through torchrun; `sources` says where each value came from."""

    processes: int
    nnodes: int
    node_rank: int
    master_addr: str
    master_port: int
    sources: Mapping[str, str] = field(default_factory=dict)
    forced: bool = False

    @property
    def world_size(self) -> int:
        """Processes over all nodes."""
        return self.processes * self.nnodes


def in_distributed_worker(environ: Mapping[str, str]) -> bool:
    """True inside a process started by torchrun (or another launcher): it trains, it does not launch."""
    return any(environ.get(name, "").strip() for name in WORKER_VARIABLES)


def force_torchrun(environ: Mapping[str, str]) -> bool:
    """LLaMA-Factory's FORCE_TORCHRUN: launch through torchrun even with one process."""
    return environ.get("FORCE_TORCHRUN", "").strip().lower() in TRUE_WORDS


def env_number(environ: Mapping[str, str], name: str, key: str, minimum: int) -> tuple[int | None, list[Problem]]:
    """A whole number from an environment variable, or a problem naming the variable and the config key."""
    raw = environ[name].strip()
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum or (name == "MASTER_PORT" and value > 65535):
        limit = "a port from 1 to 65535" if name == "MASTER_PORT" else f"a whole number of at least {minimum}"
        return None, [Problem(name, f"the environment variable is {raw!r}, not {limit}; fix or unset it, or set "
                                    f"{key} in the config (a config key wins over the variable)")]
    return value, []


def read_settings(launch: LaunchSection, environ: Mapping[str, str]) -> tuple[dict[str, Setting], list[Problem]]:
    """Each launch value from its config key, else its environment variable, else the default."""
    settings: dict[str, Setting] = {}
    problems: list[Problem] = []
    for name, key, variable, default, minimum in SETTINGS:
        value = getattr(launch, key)
        if value is not None:
            settings[name] = Setting(value, key)
        elif environ.get(variable, "").strip():
            if name == "master_addr":
                settings[name] = Setting(environ[variable].strip(), variable)
                continue
            number, found = env_number(environ, variable, key, minimum)
            problems += found
            settings[name] = Setting(number if number is not None else default, variable)
        else:
            settings[name] = Setting(default, "default")
    return settings, problems


def plan_problems(settings: Mapping[str, Setting]) -> list[Problem]:
    """Launch values that cannot work together: a node rank past the nodes, several nodes meeting at localhost."""
    problems = []
    nnodes, rank, addr = settings["nnodes"], settings["node_rank"], settings["master_addr"]
    if rank.value is not None and nnodes.value is not None and rank.value >= nnodes.value:
        problems.append(Problem(rank.source if rank.source != "default" else "node_rank",
                                f"{rank.value} is not below nnodes ({nnodes.value}, from {nnodes.source}); nodes are "
                                f"numbered 0 to {nnodes.value - 1}: give each machine its own node_rank"))
    if (nnodes.value or 1) > 1 and addr.source == "default":
        problems.append(Problem("master_addr", f"nnodes is {nnodes.value}, so the other machines need the address of "
                                               "node 0: set master_addr (or MASTER_ADDR) to it on every node"))
    return problems


def wants_launch(settings: Mapping[str, Setting], environ: Mapping[str, str]) -> bool:
    """More than one process, more than one node, or FORCE_TORCHRUN."""
    return settings["processes"].value > 1 or settings["nnodes"].value > 1 or force_torchrun(environ)


def multi_process(launch: LaunchSection, environ: Mapping[str, str]) -> bool:
    """True when training runs (or will be launched) as a torchrun job: inside a worker, or a launch is asked for."""
    if in_distributed_worker(environ):
        return True
    return wants_launch(read_settings(launch, environ)[0], environ)


def planned_processes(launch: LaunchSection, environ: Mapping[str, str]) -> tuple[int, str]:
    """How many training processes the run has over all nodes, and the setting that decides it: WORLD_SIZE inside a
    worker, else nproc_per_node x nnodes (the key or variable each came from; 'nproc_per_node' by default)."""
    if in_distributed_worker(environ):
        raw = environ.get("WORLD_SIZE", "").strip()
        return (int(raw) if raw.isdigit() else 1), "WORLD_SIZE"
    settings = read_settings(launch, environ)[0]
    processes, nnodes = settings["processes"], settings["nnodes"]
    source = nnodes.source if (nnodes.value or 1) > 1 else processes.source
    return (processes.value or 1) * (nnodes.value or 1), source if source != "default" else "nproc_per_node"


def free_port() -> int:
    """A TCP port nobody listens on right now (the operating system's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def plan_launch(launch: LaunchSection, environ: Mapping[str, str],
                pick_port: Callable[[], int] = free_port) -> Plan | None:
    """The torchrun launch the launch section (config.launch) and the environment ask for, or None to train here."""
    if in_distributed_worker(environ):
        return None
    settings, problems = read_settings(launch, environ)
    problems += plan_problems(settings)
    if problems:
        raise ConfigError(problems)
    if not wants_launch(settings, environ):
        return None
    sources = {name: setting.source for name, setting in settings.items()}
    port = settings["master_port"].value
    if port is None and settings["nnodes"].value > 1:
        port = TORCHRUN_DEFAULT_PORT
    elif port is None:
        port, sources["master_port"] = pick_port(), "free port"
    return Plan(processes=settings["processes"].value, nnodes=settings["nnodes"].value,
                node_rank=settings["node_rank"].value, master_addr=settings["master_addr"].value, master_port=port,
                sources=sources, forced=force_torchrun(environ))
