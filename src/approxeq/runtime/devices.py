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

Several jobs per GPU (``compute.jobs_per_gpu`` = n > 1): one DDMNIST run leaves most of a
large GPU idle, so n jobs may share one. A job then claims a *slot*: an exclusive flock on
``gpu-<id>-slot<k>.lock`` (k < n) plus a shared flock on ``gpu-<id>.lock``. An exclusive job
(n = 1) takes ``gpu-<id>.lock`` exclusively, so it never shares a GPU with slot holders, even
those of a workflow configured otherwise. Slots are handed out slot-major (slot 0 of every GPU,
then slot 1, ...), so jobs spread over the GPUs before they double up.

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
    A "lock" lease holds its GPU (or its slot ``slot`` of ``slots`` on it) until
    :meth:`release`, or until the process ends."""

    device: str
    gpu_id: str | None
    how: str
    lock_path: Path | None = None
    _fd: int | None = field(default=None, repr=False, compare=False)
    slot: int | None = None  # the slot held when several jobs share the GPU (slots > 1)
    slots: int = 1
    _shared_fd: int | None = field(default=None, repr=False, compare=False)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        for name in ("_fd", "_shared_fd"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)  # closing the only descriptor drops the flock

    def describe(self) -> str:
        """Short form for logs and metrics: "cuda:GPU3 (lock)", "cuda:GPU3 (lock, slot 2 of 4)",
        "cuda:GPU0,1 (slurm)", "cpu"."""
        if self.device == "cpu":
            return "cpu"
        if self.slot is not None:
            return f"cuda:GPU{self.gpu_id} ({self.how}, slot {self.slot + 1} of {self.slots})"
        return f"cuda:GPU{self.gpu_id} ({self.how})"

    def __enter__(self) -> "DeviceLease":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _lock_name(gpu_id: str, slot: int | None = None) -> str:
    """gpu-<id>.lock (the whole GPU), or gpu-<id>-slot<k>.lock (one of several jobs on it)."""
    stem = "gpu-" + re.sub(r"[^A-Za-z0-9._-]", "_", gpu_id)
    return f"{stem}.lock" if slot is None else f"{stem}-slot{slot}.lock"


def _try_lock(path: Path, shared: bool = False) -> int | None:
    """An open descriptor holding a flock on `path` (exclusive, or shared), or None if it is
    taken. An exclusive holder writes its PID into the file for a human looking; a shared one
    leaves the file alone (its slot file names it)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by exec'd children
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    if not shared:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _read_pid(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def lock_holders(lock_dir: Path, ids: list[str], slots: int = 1) -> str:
    """"GPU 0: PID 123, GPU 1: PID 456": who holds each GPU's lock, as its holder wrote it;
    with slots, "GPU 0: PIDs 123 456 (2 of 2 slots)"."""
    holders = []
    for gpu_id in ids:
        if slots == 1:
            holders.append(f"GPU {gpu_id}: PID {_read_pid(lock_dir / _lock_name(gpu_id)) or '?'}")
            continue
        pids = [_read_pid(lock_dir / _lock_name(gpu_id, k)) or "?" for k in range(slots)]
        holders.append(f"GPU {gpu_id}: PIDs {' '.join(pids)} ({slots} slots)")
    return ", ".join(holders)


def _claim(lock_dir: Path, ids: list[str], slots: int) -> DeviceLease | None:
    """A lease on a free GPU (slots = 1) or a free slot (slots > 1), or None when all are taken.
    Slot-major order: slot 0 of every GPU before slot 1 of any, so jobs spread over the GPUs."""
    if slots == 1:
        for gpu_id in ids:
            path = lock_dir / _lock_name(gpu_id)
            fd = _try_lock(path)
            if fd is not None:
                return DeviceLease("cuda", gpu_id, "lock", path, fd)
        return None
    for slot in range(slots):
        for gpu_id in ids:
            path = lock_dir / _lock_name(gpu_id, slot)
            fd = _try_lock(path)
            if fd is None:
                continue
            # shared with the GPU's other slot holders, refused while an exclusive job holds it
            shared = _try_lock(lock_dir / _lock_name(gpu_id), shared=True)
            if shared is None:
                os.close(fd)
                continue
            return DeviceLease("cuda", gpu_id, "lock", path, fd, slot=slot, slots=slots,
                               _shared_fd=shared)
    return None


def acquire_device(
    lock_dir: str | os.PathLike | None = None,
    env: Mapping[str, str] = os.environ,
    poll_seconds: float = 5.0,
    timeout_seconds: float | None = None,
    log: Callable[[str], object] = print,
    log_every_seconds: float = 60.0,
    jobs_per_gpu: int = 1,
) -> DeviceLease:
    """Claim a device for this process; see the module docstring.

    `jobs_per_gpu` (compute.jobs_per_gpu): how many jobs may share one GPU; each claims one of
    its slots. It does not apply under SLURM (the scheduler assigns GPUs) nor on the CPU.

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

    if jobs_per_gpu < 1:
        raise ValueError(f"jobs_per_gpu must be at least 1, not {jobs_per_gpu}")
    lock_dir = Path(lock_dir) if lock_dir is not None else default_lock_dir()
    lock_dir.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    waited = False
    next_log = start
    while True:
        lease = _claim(lock_dir, ids, jobs_per_gpu)
        if lease is not None:
            torch = sys.modules.get("torch")
            if torch is not None and torch.cuda.is_initialized():
                log(f"warning: CUDA is already initialised; CUDA_VISIBLE_DEVICES={lease.gpu_id} "
                    "has no effect in this process")
            if source == "nvidia-smi":  # nvidia-smi numbers GPUs in PCI bus order
                os.environ["CUDA_DEVICE_ORDER"] = "PCI_BUS_ID"
            os.environ["CUDA_VISIBLE_DEVICES"] = lease.gpu_id
            if waited:
                log(f"got {lease.describe()} after {time.monotonic() - start:.1f} s")
            return lease
        now = time.monotonic()
        elapsed = now - start
        what = "GPU" if jobs_per_gpu == 1 else f"GPU slot ({jobs_per_gpu} jobs per GPU)"
        if timeout_seconds is not None and elapsed >= timeout_seconds:
            raise TimeoutError(
                f"no free {what} among {', '.join(ids)} after {elapsed:.1f} s "
                f"(compute.gpu_wait_seconds = {timeout_seconds:g}): all locks in {lock_dir} are "
                f"held ({lock_holders(lock_dir, ids, jobs_per_gpu)})")
        if now >= next_log:
            limit = "no limit" if timeout_seconds is None else f"limit {timeout_seconds:g} s"
            log(f"waiting for a {what} ({elapsed:.0f} s so far, {limit}): all of {', '.join(ids)} "
                f"are in use ({lock_holders(lock_dir, ids, jobs_per_gpu)}; locks in {lock_dir}); "
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
