"""oneDNN's primitive cache, bounded for training on the CPU.

torch runs the CPU's bf16 matrix products through oneDNN, which keeps one compiled primitive per shape in an LRU
cache of 1,024 entries by default, each holding memory. A packed training batch brings shapes no earlier step had
(its total token count, each example's attention blocks): about 50 new ones per step on the benchmark workload, so
the cache fills over the run and the process's memory grows with it. A step uses fewer than 100 shapes, so
CAPACITY entries still hold every shape a step uses again, at the same speed (bench/README.md, "Training memory":
SmolLM2-135M LoRA, 30 steps: peak RSS 3,387 MiB against 3,812 at the default). A cache of 64 entries is too small:
a step then builds most of its primitives again (2.4x slower).

oneDNN reads ONEDNN_PRIMITIVE_CACHE_CAPACITY when it first uses the cache, so this is set before the model loads;
a capacity the user set (ONEDNN_ or DNNL_PRIMITIVE_CACHE_CAPACITY) is left as it is.
"""

from __future__ import annotations

import os

CAPACITY = 256
VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "DNNL_PRIMITIVE_CACHE_CAPACITY")


def bound_primitive_cache() -> bool:
    """Set oneDNN's primitive cache to CAPACITY entries unless the user chose a capacity; True when set here."""
    if any(name in os.environ for name in VARIABLES):
        return False
    os.environ[VARIABLES[0]] = str(CAPACITY)
    return True
