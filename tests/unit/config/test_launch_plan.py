"""The torchrun plan from config keys, LLaMA-Factory's environment variables and defaults; bad values are config
problems; inside a worker nothing is launched."""

from __future__ import annotations

from typing import Any

import pytest

from tunelab.config.errors import ConfigError
from tunelab.config.launch_plan import Plan, in_distributed_worker, plan_launch
from tunelab.config.schema import LaunchSection


def plan(environ: dict[str, str] | None = None, **keys: Any) -> Plan | None:
    return plan_launch(LaunchSection(**keys), environ or {}, pick_port=lambda: 41234)


def test_one_process_without_force_trains_here() -> None:
    assert plan() is None
    assert plan(nproc_per_node=1) is None
    assert plan({"NPROC_PER_NODE": "1", "FORCE_TORCHRUN": "0"}) is None
    assert plan({"FORCE_TORCHRUN": "false"}) is None


def test_plan_from_config_keys() -> None:
    assert plan(nproc_per_node=2) == Plan(
        processes=2, nnodes=1, node_rank=0, master_addr="127.0.0.1", master_port=41234,
        sources={"processes": "nproc_per_node", "nnodes": "default", "node_rank": "default", "master_addr": "default",
                 "master_port": "free port"})


def test_plan_from_llamafactory_environment_variables() -> None:
    found = plan({"NPROC_PER_NODE": "4", "NNODES": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.0.0.1",
                  "MASTER_PORT": "29600"})
    assert found is not None
    assert (found.processes, found.nnodes, found.node_rank, found.master_addr, found.master_port) == (
        4, 2, 1, "10.0.0.1", 29600)
    assert found.world_size == 8
    assert dict(found.sources) == {"processes": "NPROC_PER_NODE", "nnodes": "NNODES", "node_rank": "NODE_RANK",
                                   "master_addr": "MASTER_ADDR", "master_port": "MASTER_PORT"}


def test_a_config_key_wins_over_its_environment_variable() -> None:
    found = plan({"NPROC_PER_NODE": "8", "MASTER_PORT": "29600"}, nproc_per_node=2, master_port=29700)
    assert found is not None and (found.processes, found.master_port) == (2, 29700)
    assert found.sources["processes"] == "nproc_per_node" and found.sources["master_port"] == "master_port"


def test_force_torchrun_launches_one_process() -> None:
    for value in ("1", "true", "True", "yes"):
        found = plan({"FORCE_TORCHRUN": value})
        assert found is not None and found.processes == 1 and found.forced


def test_several_nodes_use_torchruns_default_port_and_need_the_address() -> None:
    found = plan(nnodes=2, master_addr="10.0.0.1")
    assert found is not None and found.master_port == 29500 and found.sources["master_port"] == "default"
    with pytest.raises(ConfigError) as excinfo:
        plan(nnodes=2)
    assert [str(p) for p in excinfo.value.problems] == [
        "master_addr: nnodes is 2, so the other machines need the address of node 0: set master_addr (or "
        "MASTER_ADDR) to it on every node"]


def test_bad_environment_values_and_node_rank_are_config_errors() -> None:
    with pytest.raises(ConfigError) as excinfo:
        plan({"NPROC_PER_NODE": "two", "MASTER_PORT": "70000", "NODE_RANK": "2"}, master_addr="h")
    assert [str(p) for p in excinfo.value.problems] == [
        "NPROC_PER_NODE: the environment variable is 'two', not a whole number of at least 1; fix or unset it, or set "
        "nproc_per_node in the config (a config key wins over the variable)",
        "MASTER_PORT: the environment variable is '70000', not a port from 1 to 65535; fix or unset it, or set "
        "master_port in the config (a config key wins over the variable)",
        "NODE_RANK: 2 is not below nnodes (1, from default); nodes are numbered 0 to 0: give each machine its own "
        "node_rank"]


def test_inside_a_torchrun_worker_training_starts_directly() -> None:
    assert in_distributed_worker({"LOCAL_RANK": "0"}) and in_distributed_worker({"WORLD_SIZE": "2"})
    assert not in_distributed_worker({}) and not in_distributed_worker({"LOCAL_RANK": ""})
    assert plan({"LOCAL_RANK": "1", "WORLD_SIZE": "2", "FORCE_TORCHRUN": "1"}, nproc_per_node=2) is None
