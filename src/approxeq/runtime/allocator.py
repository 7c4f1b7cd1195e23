"""Keep freed CPU memory inside a training process instead of handing it back to the kernel.

Why: glibc's malloc serves every block above its mmap threshold (at most 32 MB on 64-bit Linux)
with a fresh mmap and returns it with munmap on free, and trims the top of its heap as soon as
128 KB-64 MB lie free there. A DDMNIST step at batch 256 allocates and frees dozens of 18-37 MB
activations and gradients, so every step asked the kernel for the same memory again: a page fault
per 4 KB page and the kernel zeroing each page. Measured on one CPU thread (benchmarks/README.md):
allocating and filling a 37 MB tensor took 16 ms with glibc's defaults and 1.8 ms with the memory
kept, and a whole DDMNIST training step got ×1.1-1.4 faster.

`keep_freed_memory()` turns off malloc's use of mmap (M_MMAP_MAX = 0: every block comes from the
heap) and its trimming (M_TRIM_THRESHOLD: never), so a freed block is reused by the next step.
The price: the process keeps its peak memory until it exits (a training job's peak is its steady
state anyway). It changes where tensors live, never what is computed: the digits are the same
(tests/runtime/test_allocator.py). The same holds for a shell: `MALLOC_MMAP_MAX_=0
MALLOC_TRIM_THRESHOLD_=2147483647 python ...`. Elsewhere than glibc (macOS, musl) it does nothing.
Nothing here imports torch.
"""
from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's <malloc.h>
M_TRIM_THRESHOLD = -1
M_MMAP_MAX = -4
# the largest value mallopt's int takes: 2 GiB of free heap top before a trim, more than a training
# job ever frees at once, so in practice never
NEVER_TRIM = 2**31 - 1
# The environment variables glibc reads at start-up for the same two settings (and its tunables):
# a benchmark clears them so that its "glibc defaults" variant gets the defaults.
MALLOC_ENVIRONMENT = ("MALLOC_MMAP_MAX_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_",
                      "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")


def glibc_mallopt():
    """glibc's mallopt, or None where the C library has none (macOS, musl)."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        gnu_get_libc_version = libc.gnu_get_libc_version  # only glibc defines it
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    gnu_get_libc_version.restype = ctypes.c_char_p
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return mallopt


def keep_freed_memory(enabled: bool = True) -> str:
    """Keep freed memory in this process (see the module doc) when `enabled`; returns one line for
    the job's log saying what was done. Safe to call more than once."""
    if not enabled:
        return "keep_freed_memory False (configured): glibc malloc defaults"
    mallopt = glibc_mallopt()
    if mallopt is None:
        return "keep_freed_memory: not glibc, malloc left as it is"
    if not (mallopt(M_MMAP_MAX, 0) and mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)):
        return "keep_freed_memory: glibc refused mallopt, malloc left as it is"
    return "keep_freed_memory True: glibc malloc keeps freed blocks for reuse (no mmap, no trim)"
