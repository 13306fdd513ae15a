"""infer_backend: vllm needs the vllm package and a CUDA GPU on this machine; the vllm_* keys need vllm chosen.

The machine is probed through runtime/env.py when the config is checked, so a missing piece is reported with the
other config problems, before any model loads.
"""

from __future__ import annotations

from tunelab.config.errors import Problem
from tunelab.config.schema import BackendSection
from tunelab.runtime import env

INSTALL = "pip install 'tunelab[vllm]'"


def backend_check(backend: BackendSection) -> list[Problem]:
    """vllm: the package installed and a CUDA GPU visible; huggingface: no vllm_* key set (it would do nothing)."""
    if backend.infer_backend != "vllm":
        unused = sorted(key for key in backend.model_fields_set if key.startswith("vllm_"))
        return [Problem(key, "only infer_backend: vllm reads it; remove it or set infer_backend: vllm")
                for key in unused]
    problems = []
    if env.package_version("vllm") is None:
        problems.append(Problem("infer_backend", f"vllm is not installed here; install it with {INSTALL} (Linux "
                                                 "with a CUDA GPU), or set infer_backend: huggingface"))
    if not env.cuda_available():
        problems.append(Problem("infer_backend", "vllm needs a CUDA GPU and none is visible on this machine; run "
                                                 "on a GPU machine or set infer_backend: huggingface"))
    return problems
