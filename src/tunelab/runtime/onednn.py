"""oneDNN's caches of compiled matmuls, bounded for training on the CPU.

torch runs the CPU's bf16 matrix products through oneDNN and its wrapper ideep, and both keep one compiled
primitive per shape in an LRU cache of 1,024 entries by default, each holding memory. A packed training batch
brings shapes no earlier step had (its total token count, each example's attention blocks): about 50 new ones per
step on the benchmark workload, so the caches fill over the run and the process's memory grows with them. A step
uses fewer than 100 shapes, so CAPACITY entries still hold every shape a step uses again, at the same speed
(bench/README.md, "Training memory": SmolLM2-135M LoRA, 30 steps, peak RSS 3,109 MiB with both caches at 256
against 4,322 before; 64 entries are too few: a step then builds most of its primitives again, 2.4x slower).

Each library reads its variable when it first uses its cache, so these are set before the model loads; a
capacity the user set is left as it is.
"""

from __future__ import annotations

from tunelab.runtime import env

CAPACITY = 256
# per cache, the environment variables that set its capacity (the first is the one set here)
CACHES = (("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY"),  # oneDNN's primitive cache
          ("LRU_CACHE_CAPACITY",))  # ideep's, torch's wrapper of oneDNN


def bound_caches() -> list[str]:
    """Set each cache the user left at its default to CAPACITY entries; the variables set here."""
    chosen = []
    for names in CACHES:
        if not any(name in env.variables() for name in names):
            env.set_for_process(names[0], str(CAPACITY))
            chosen.append(names[0])
    return chosen
