"""glibc malloc settings for training on the CPU.

By default glibc serves every allocation above a threshold (at most 32 MiB) with its own mmap and gives it back
to the kernel when freed, so each training step faults in its large tensors (activations, gradients, the
embedding-sized ones) page by page again: in full fine-tuning on a 2-core CPU the kernel took about a quarter of
the process's CPU time (bench/README.md). Serving them from malloc's heap and keeping freed memory for reuse removes
those faults; the peak memory stays the same because a step allocates the same sizes every time.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_TRIM_THRESHOLD = -1  # free memory at the top of the heap kept before it is returned to the kernel
M_TOP_PAD = -2  # extra memory taken from the kernel each time the heap grows
M_MMAP_MAX = -4  # allocations served by their own mmap (0: none, every one from the heap)
SETTINGS = ((M_MMAP_MAX, 0), (M_TRIM_THRESHOLD, 1 << 30), (M_TOP_PAD, 64 << 20))


def keep_freed_memory() -> bool:
    """Apply SETTINGS through glibc's mallopt; False where the C library has none (macOS, Windows) or refuses."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return all(mallopt(option, value) == 1 for option, value in SETTINGS)
