"""compute.keep_freed_memory (approxeq.runtime.allocator): freed blocks stay in the process's heap
instead of going back to the kernel, and the digits of training do not change.

Each check runs in a fresh interpreter: malloc's settings are per process and cannot be undone."""
import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from approxeq.runtime.allocator import MALLOC_ENVIRONMENT, glibc_mallopt, keep_freed_memory

SRC = Path(__file__).resolve().parents[2] / "src"
BLOCK = 64 * 2**20  # above glibc's largest mmap threshold (32 MB): by default always an mmap

# Allocates and frees a 64 MB tensor, reading glibc's mallinfo2 around it, then trains a small
# DDMNIST CNN for three Adam steps and prints its losses exactly (float.hex).
PROBE = """
import ctypes, json, sys
from approxeq.runtime.allocator import keep_freed_memory
line = keep_freed_memory(sys.argv[1] == "on")

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]
libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2

import torch
from approxeq.nn.networks import ddmnist_cnn
torch.set_num_threads(1)
before = libc.mallinfo2()
block = torch.empty(BLOCK // 4).fill_(1.0)
during = libc.mallinfo2()
del block
after = libc.mallinfo2()

torch.manual_seed(0)
model = ddmnist_cnn(c=2).to(memory_format=torch.channels_last)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
x = torch.rand(32, 1, 56, 56).contiguous(memory_format=torch.channels_last)
y = torch.randint(100, (32,))
losses = []
for _ in range(3):
    loss = torch.nn.functional.cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    losses.append(loss.item().hex())
print(json.dumps({"line": line, "mmapped_by_block": during.hblkhd - before.hblkhd,
                  "heap_free_after": after.fordblks, "losses": losses}))
""".replace("BLOCK", str(BLOCK))

needs_glibc = pytest.mark.skipif(glibc_mallopt() is None or not hasattr(ctypes.CDLL(None), "mallinfo2"),
                                 reason="glibc (with mallinfo2, 2.33+) only")


def probe(mode: str) -> dict:
    env = {key: value for key, value in os.environ.items() if key not in MALLOC_ENVIRONMENT}
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", PROBE, mode], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@needs_glibc
def test_freed_memory_stays_in_the_heap_and_the_digits_do_not_change():
    default, kept = probe("off"), probe("on")
    assert "configured" in default["line"] and "True" in kept["line"]
    # glibc's default: the 64 MB block is an mmap of its own, given back on free
    assert default["mmapped_by_block"] >= BLOCK
    # kept: the block comes from the heap, and once freed it stays there for the next step
    assert kept["mmapped_by_block"] == 0
    assert kept["heap_free_after"] >= BLOCK
    # where a tensor lives does not change what is computed
    assert kept["losses"] == default["losses"]


def test_disabled_leaves_malloc_alone():
    assert keep_freed_memory(False).startswith("keep_freed_memory False")


def test_non_glibc_is_left_as_it_is(monkeypatch):
    import approxeq.runtime.allocator as allocator

    monkeypatch.setattr(allocator, "glibc_mallopt", lambda: None)
    assert "not glibc" in allocator.keep_freed_memory(True)
