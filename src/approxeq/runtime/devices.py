"""Pick the GPU a training job runs on, or the CPU when there is none.

Why this exists: the workflow gives each training rule ``resources: gpu=1``, so
``snakemake --resources gpu=2`` runs two of them at once -- but Snakemake only counts,
it never sets ``CUDA_VISIBLE_DEVICES``, so both jobs would land on ``cuda:0``. Each job
therefore claims a GPU itself: it takes a non-blocking ``flock`` on
``<lock_dir>/gpu-<id>.lock`` for the first free id and then sets
``CUDA_VISIBLE_DEVICES=<id>``, so the process sees exactly that GPU as ``cuda:0``.
The kernel drops the lock when the file is closed or the process dies (even by
SIGKILL), so a crashed job never leaves a GPU claimed. The lock directory must be
on a local file system; by default it is shared by all workflows of one user.

Under SLURM the scheduler has already set ``CUDA_VISIBLE_DEVICES`` for the job and
that assignment is used as is. Without GPUs the job runs on the CPU.

Call :func:`acquire_device` once per process, before anything initialises CUDA
(``CUDA_VISIBLE_DEVICES`` is read only then). Nothing here imports torch except
:func:`torch_device`. Tests simulate GPUs with ``APPROXEQ_FAKE_GPUS=0,1``.
"""
from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping

if TYPE_CHECKING:
    import torch

FAKE_GPUS_VAR = "APPROXEQ_FAKE_GPUS"
LOCK_DIR_VAR = "APPROXEQ_GPU_LOCK_DIR"
NVIDIA_SMI_TIMEOUT_S = 10.0


def default_lock_dir() -> Path:
    """``$APPROXEQ_GPU_LOCK_DIR``, else one directory per user in /tmp, so that every
    workflow this user runs on the machine claims GPUs from the same set of locks."""
    return Path(os.environ.get(LOCK_DIR_VAR) or f"/tmp/approxeq-gpu-locks-{os.getuid()}")


def _split_ids(value: str) -> list[str]:
    """Comma-separated ids; like CUDA, stop at the first negative entry ("-1" hides all)."""
    ids = []
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        if entry.startswith("-"):
            break
        ids.append(entry)
    return ids


def _nvidia_smi_indices() -> list[str]:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        done = subprocess.run(
            [exe, "--query-gpu=index", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=NVIDIA_SMI_TIMEOUT_S, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if done.returncode != 0:
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip().isdigit()]


def _discover(env: Mapping[str, str]) -> tuple[list[str], str]:
    """The usable GPU ids and where they came from: "fake", "env", "nvidia-smi" or "none"."""
    if FAKE_GPUS_VAR in env:  # set but empty simulates a machine without GPUs
        return _split_ids(env[FAKE_GPUS_VAR]), "fake"
    if "CUDA_VISIBLE_DEVICES" in env:
        # "" or "-1" means GPUs were hidden on purpose: respect that, do not ask nvidia-smi.
        return _split_ids(env["CUDA_VISIBLE_DEVICES"]), "env"
    ids = _nvidia_smi_indices()
    return ids, ("nvidia-smi" if ids else "none")


def discover_gpus(env: Mapping[str, str] = os.environ) -> list[str]:
    """The GPU ids this process may use, found without initialising CUDA here.

    ``$APPROXEQ_FAKE_GPUS`` (simulated ids) wins; else ``$CUDA_VISIBLE_DEVICES`` when set
    (indices or UUIDs; empty or "-1" means no GPU); else the indices ``nvidia-smi`` lists.
    [] when there are none.
    """
    return _discover(env)[0]


@dataclass
class DeviceLease:
    """The device a job was given. ``device`` is the torch device type to use once
    ``CUDA_VISIBLE_DEVICES`` is set ("cuda" = cuda:0 of the visible set, or "cpu");
    ``gpu_id`` the physical id (or ids under SLURM); ``how`` is "lock", "slurm" or "cpu".
    A "lock" lease holds its GPU until :meth:`release`, or until the process ends."""

    device: str
    gpu_id: str | None
    how: str
    lock_path: Path | None = None
    _fd: int | None = field(default=None, repr=False, compare=False)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the only descriptor drops the flock

    def describe(self) -> str:
        """Short form for logs and metrics: "cuda:GPU3 (lock)", "cuda:GPU0,1 (slurm)", "cpu"."""
        if self.device == "cpu":
            return "cpu"
        return f"cuda:GPU{self.gpu_id} ({self.how})"

    def __enter__(self) -> "DeviceLease":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _lock_name(gpu_id: str) -> str:
    return "gpu-" + re.sub(r"[^A-Za-z0-9._-]", "_", gpu_id) + ".lock"


def _try_lock(path: Path) -> int | None:
    """An open descriptor holding an exclusive flock on `path`, or None if it is taken."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by exec'd children
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())  # who holds it, for a human looking
    return fd


def lock_holders(lock_dir: Path, ids: list[str]) -> str:
    """"GPU 0: PID 123, GPU 1: PID 456": who holds each GPU's lock, as its holder wrote it."""
    holders = []
    for gpu_id in ids:
        try:
            pid = (lock_dir / _lock_name(gpu_id)).read_text().strip()
        except OSError:
            pid = ""
        holders.append(f"GPU {gpu_id}: PID {pid or '?'}")
    return ", ".join(holders)


def acquire_device(
    lock_dir: str | os.PathLike | None = None,
    env: Mapping[str, str] = os.environ,
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = None,
    log: Callable[[str], object] = print,
    log_every_seconds: float = 60.0,
) -> DeviceLease:
    """Claim a device for this process; see the module docstring.

    With GPUs and no SLURM assignment, waits (polling every `poll_seconds`) until one of
    them is free; raises TimeoutError after `timeout_seconds` (None: wait for ever). While it
    waits it logs, every `log_every_seconds`, how long it has waited and which PIDs hold the
    locks, so a job stuck behind another is visible in its log.
    On success sets ``os.environ["CUDA_VISIBLE_DEVICES"]`` to the claimed id.
    """
    if env.get("SLURM_JOB_ID") and _split_ids(env.get("CUDA_VISIBLE_DEVICES", "")):
        return DeviceLease("cuda", env["CUDA_VISIBLE_DEVICES"], "slurm")
    ids, source = _discover(env)
    if not ids:
        return DeviceLease("cpu", None, "cpu")

    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waited = False
    next_log = start
    while True:
        for gpu_id in ids:
            path = lock_dir / _lock_name(gpu_id)
            fd = _try_lock(path)
            if fd is None:
                continue
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_initialized():
                log(f"warning: CUDA is already initialised; CUDA_VISIBLE_DEVICES={gpu_id} "
                    "has no effect in this process")
            if source == "nvidia-smi":  # nvidia-smi numbers GPUs in PCI bus order
                os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
            os.environ["CUDA_VISIBLE_DEVICES"] = gpu_id
            if waited:
                log(f"got GPU {gpu_id} after {time.monotonic() - start:.1f} s")
            return DeviceLease("cuda", gpu_id, "lock", path, fd)
        now = time.monotonic()
        elapsed = now - start
        if timeout_seconds is not None and elapsed >= timeout_seconds:
            raise TimeoutError(
                f"no free GPU among {', '.join(ids)} after {elapsed:.1f} s "
                f"(compute.gpu_wait_seconds = {timeout_seconds:g}): all locks in {lock_dir} are "
                f"held ({lock_holders(lock_dir, ids)})")
        if now >= next_log:
            limit = "no limit" if timeout_seconds is None else f"limit {timeout_seconds:g} s"
            log(f"waiting for a GPU ({elapsed:.0f} s so far, {limit}): all of {', '.join(ids)} "
                f"are in use ({lock_holders(lock_dir, ids)}; locks in {lock_dir}); "
                f"retrying every {poll_seconds:g} s")
            waited = True
            next_log = now + log_every_seconds
        time.sleep(poll_seconds if timeout_seconds is None
                   else max(0.0, min(poll_seconds, timeout_seconds - elapsed)))


def torch_device(lease: DeviceLease, log: Callable[[str], object] = print) -> "torch.device":
    """The torch device for `lease`; CPU (with a warning) if CUDA is not actually
    available, as with simulated GPUs."""
    import torch

    if lease.device == "cuda":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        log(f"warning: lease {lease.describe()} but CUDA is not available; using the CPU")
    return torch.device("cpu")
