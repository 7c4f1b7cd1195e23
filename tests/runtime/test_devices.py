"""GPU selection for concurrent jobs (approxeq.runtime.devices), with simulated GPUs: no GPU needed."""
from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from approxeq.runtime import devices
from approxeq.runtime.devices import (
    DeviceLease,
    acquire_device,
    discover_gpus,
    torch_device,
)

NO_SMI = None  # what the patched shutil.which returns for nvidia-smi


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    """No real nvidia-smi, and os.environ's CUDA variables restored after each test."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: NO_SMI)
    for var in ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER"):
        monkeypatch.setenv(var, "placeholder")  # records the original state for undo
        monkeypatch.delenv(var)


def _fake_smi(tmp_path: Path, body: str) -> str:
    exe = tmp_path / "nvidia-smi"
    exe.write_text("#!/bin/sh\n" + body + "\n")
    exe.chmod(0o755)
    return str(exe)


# --- discovery -------------------------------------------------------------------------

@pytest.mark.parametrize("env, expected", [
    ({"APPROXEQ_FAKE_GPUS": "0,1"}, ["0", "1"]),
    ({"APPROXEQ_FAKE_GPUS": "0,1", "CUDA_VISIBLE_DEVICES": "5"}, ["0", "1"]),  # fake wins
    ({"APPROXEQ_FAKE_GPUS": ""}, []),
    ({"CUDA_VISIBLE_DEVICES": "2,3"}, ["2", "3"]),
    ({"CUDA_VISIBLE_DEVICES": " 1 , 0 "}, ["1", "0"]),
    ({"CUDA_VISIBLE_DEVICES": "GPU-8a2c-11,GPU-77ff-02"}, ["GPU-8a2c-11", "GPU-77ff-02"]),
    ({"CUDA_VISIBLE_DEVICES": "-1"}, []),
    ({"CUDA_VISIBLE_DEVICES": ""}, []),
    ({"CUDA_VISIBLE_DEVICES": "0,-1,2"}, ["0"]),  # CUDA stops at the first invalid entry
    ({}, []),  # no nvidia-smi
])
def test_discover_order(env, expected):
    assert discover_gpus(env) == expected


def test_discover_asks_nvidia_smi_only_without_cuda_visible_devices(tmp_path, monkeypatch):
    exe = _fake_smi(tmp_path, 'echo 0; echo 1')
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: exe)
    assert discover_gpus({}) == ["0", "1"]
    assert discover_gpus({"CUDA_VISIBLE_DEVICES": "-1"}) == []  # hidden on purpose


def test_discover_nvidia_smi_failure_means_no_gpus(tmp_path, monkeypatch):
    exe = _fake_smi(tmp_path, 'echo "NVIDIA-SMI has failed" ; exit 9')
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: exe)
    assert discover_gpus({}) == []


def test_module_import_does_not_import_torch():
    code = "import sys, approxeq.runtime.devices; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


# --- leases in one process -------------------------------------------------------------

def test_cpu_lease_without_gpus(tmp_path):
    lock_dir = tmp_path / "locks"
    with acquire_device(lock_dir, env={}) as lease:
        assert (lease.device, lease.gpu_id, lease.how) == ("cpu", None, "cpu")
        assert lease.describe() == "cpu"
    assert not lock_dir.exists()
    assert "CUDA_VISIBLE_DEVICES" not in os.environ


def test_slurm_uses_assigned_devices_without_locks(tmp_path):
    lock_dir = tmp_path / "locks"
    env = {"SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": "3", "APPROXEQ_FAKE_GPUS": "0,1"}
    lease = acquire_device(lock_dir, env=env)
    assert (lease.device, lease.gpu_id, lease.how) == ("cuda", "3", "slurm")
    assert lease.describe() == "cuda:GPU3 (slurm)"
    assert not lock_dir.exists()
    # a SLURM job that was given no GPU runs on the CPU
    lease = acquire_device(lock_dir, env={"SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": ""})
    assert lease.how == "cpu"


def test_leases_in_one_process_never_share_a_gpu(tmp_path):
    lock_dir = tmp_path / "locks"
    env = {"APPROXEQ_FAKE_GPUS": "0,1"}
    first = acquire_device(lock_dir, env=env, timeout_seconds=0)
    assert (first.gpu_id, os.environ["CUDA_VISIBLE_DEVICES"]) == ("0", "0")
    assert first.describe() == "cuda:GPU0 (lock)"
    second = acquire_device(lock_dir, env=env, timeout_seconds=0)
    assert (second.gpu_id, os.environ["CUDA_VISIBLE_DEVICES"]) == ("1", "1")
    messages = []
    started = time.monotonic()
    with pytest.raises(TimeoutError) as raised:
        acquire_device(lock_dir, env=env, poll_seconds=0.02, timeout_seconds=0.2,
                       log=messages.append)
    assert 0.2 <= time.monotonic() - started < 2
    assert str(lock_dir) in str(raised.value) and "0, 1" in str(raised.value)
    assert messages and str(lock_dir) in messages[0]
    first.release()
    first.release()  # idempotent
    with acquire_device(lock_dir, env=env, timeout_seconds=0) as third:
        assert third.gpu_id == "0" and third.held
    assert not third.held
    second.release()


def test_lock_file_names_are_sanitised(tmp_path):
    lock_dir = tmp_path / "locks"
    with acquire_device(lock_dir, env={"APPROXEQ_FAKE_GPUS": "MIG-GPU-ab/1/0"}) as lease:
        assert lease.gpu_id == "MIG-GPU-ab/1/0"
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "MIG-GPU-ab/1/0"
        assert [p.name for p in lock_dir.iterdir()] == ["gpu-MIG-GPU-ab_1_0.lock"]


def test_nvidia_smi_indices_are_pinned_to_pci_order(tmp_path, monkeypatch):
    exe = _fake_smi(tmp_path, 'echo 0')
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: exe)
    with acquire_device(tmp_path / "locks", env={}) as lease:
        assert lease.gpu_id == "0"
        assert os.environ["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID"


def test_default_lock_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("APPROXEQ_GPU_LOCK_DIR", raising=False)
    assert devices.default_lock_dir() == Path(f"/tmp/approxeq-gpu-locks-{os.getuid()}")
    monkeypatch.setenv("APPROXEQ_GPU_LOCK_DIR", str(tmp_path))
    assert devices.default_lock_dir() == tmp_path


def test_torch_device_falls_back_to_cpu_when_cuda_is_missing():
    torch = pytest.importorskip("torch")
    messages = []
    assert torch_device(DeviceLease("cpu", None, "cpu"), log=messages.append).type == "cpu"
    assert messages == []
    device = torch_device(DeviceLease("cuda", "0", "lock"), log=messages.append)
    if torch.cuda.is_available():
        assert device == torch.device("cuda", 0)
    else:
        assert device.type == "cpu" and "warning" in messages[0]


# --- several processes -----------------------------------------------------------------

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    from approxeq.runtime.devices import acquire_device

    lock_dir, out, hold = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
    slots = int(sys.argv[4])
    out.with_suffix(".ready").touch()
    while not (out.parent / "go").exists():
        time.sleep(0.005)
    with acquire_device(lock_dir, poll_seconds=0.05, timeout_seconds=30, log=lambda m: None,
                        jobs_per_gpu=slots) as lease:
        start = time.time()
        if hold > 0:
            time.sleep(hold)
        else:
            out.with_suffix(".held").touch()
            time.sleep(60)  # until killed
        end = time.time()
    out.write_text(json.dumps({"gpu_id": lease.gpu_id, "visible": os.environ["CUDA_VISIBLE_DEVICES"],
                               "slot": lease.slot, "start": start, "end": end}))
""")


def _start_workers(tmp_path: Path, n: int, hold: float, gpus: str,
                   jobs_per_gpu: int = 1) -> list[subprocess.Popen]:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {k: v for k, v in os.environ.items()
           if k not in ("CUDA_VISIBLE_DEVICES", "SLURM_JOB_ID")}
    env["APPROXEQ_FAKE_GPUS"] = gpus
    procs = [subprocess.Popen([sys.executable, str(script), str(tmp_path / "locks"),
                               str(tmp_path / f"w{i}.json"), str(hold), str(jobs_per_gpu)], env=env)
             for i in range(n)]
    deadline = time.monotonic() + 30
    while not all((tmp_path / f"w{i}.ready").exists() for i in range(n)):
        assert time.monotonic() < deadline, "workers did not start"
        time.sleep(0.01)
    (tmp_path / "go").touch()  # all contend for the GPUs at the same moment
    return procs


def test_concurrent_processes_share_two_gpus(tmp_path):
    hold = 0.5
    procs = _start_workers(tmp_path, 4, hold, "0,1")
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    records = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(4)]
    for r in records:
        assert r["visible"] == r["gpu_id"]
    assert {r["gpu_id"] for r in records} == {"0", "1"}
    for gpu in ("0", "1"):
        spans = sorted((r["start"], r["end"]) for r in records if r["gpu_id"] == gpu)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            assert start >= end, f"two jobs held GPU {gpu} at once: {spans}"
    # only two can run at a time, so the last two waited for a release
    assert max(r["end"] for r in records) - min(r["start"] for r in records) >= 2 * hold


def test_lock_is_released_when_the_holder_dies(tmp_path):
    (proc,) = _start_workers(tmp_path, 1, 0, "7")
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "w0.held").exists():
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        env = {"APPROXEQ_FAKE_GPUS": "7"}
        with pytest.raises(TimeoutError):
            acquire_device(tmp_path / "locks", env=env, timeout_seconds=0, log=lambda m: None)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    with acquire_device(tmp_path / "locks", env=env, timeout_seconds=5) as lease:
        assert lease.gpu_id == "7"


# --- waiting for a GPU: logged periodically with the holders, limited by a config key -----

def test_waiting_is_logged_periodically_naming_the_pids_holding_the_locks(tmp_path):
    lock_dir = tmp_path / "locks"
    env = {"APPROXEQ_FAKE_GPUS": "0,1"}
    held = [acquire_device(lock_dir, env=env, timeout_seconds=0) for _ in range(2)]
    messages = []
    with pytest.raises(TimeoutError) as raised:
        acquire_device(lock_dir, env=env, poll_seconds=0.01, timeout_seconds=0.5,
                       log_every_seconds=0.1, log=messages.append)
    pids = f"GPU 0: PID {os.getpid()}, GPU 1: PID {os.getpid()}"
    assert 3 <= len(messages) <= 7, messages  # once per 0.1 s, not once and not every poll
    assert all("waiting for a GPU" in m and pids in m and "limit 0.5 s" in m for m in messages)
    assert pids in str(raised.value) and "compute.gpu_wait_seconds = 0.5" in str(raised.value)
    for lease in held:
        lease.release()


def test_train_job_gives_up_after_the_configured_gpu_wait(tmp_path, monkeypatch):
    """workflow/scripts/train.py passes compute.gpu_wait_seconds on; the wait comes before any
    data is read, so a bare run dict is enough here."""
    script = runpy.run_path(str(Path(__file__).resolve().parents[2] / "workflow/scripts/train.py"))
    monkeypatch.setenv("APPROXEQ_FAKE_GPUS", "0")
    lock_dir = tmp_path / "locks"
    with acquire_device(lock_dir, timeout_seconds=0):
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=rf"GPU 0: PID {os.getpid()}"):
            script["main"]({"seed": 0}, 1, str(lock_dir), {"model": str(tmp_path / "run/model.pt")},
                           str(tmp_path / "train.log"), 1000.0, 0.3)
        assert time.monotonic() - started < 10
    log = (tmp_path / "train.log").read_text()
    assert "waiting for a GPU" in log and "TimeoutError: no free GPU among 0 after" in log


# --- several jobs per GPU (compute.jobs_per_gpu): slot locks ---------------------------------

def test_slots_spread_over_gpus_before_doubling_up(tmp_path):
    lock_dir = tmp_path / "locks"
    env = {"APPROXEQ_FAKE_GPUS": "0,1"}
    leases = [acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=2) for _ in range(4)]
    assert [(lease.gpu_id, lease.slot) for lease in leases] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    assert leases[2].describe() == "cuda:GPU0 (lock, slot 2 of 2)"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "1"
    assert (lock_dir / "gpu-0-slot1.lock").read_text().strip() == str(os.getpid())
    with pytest.raises(TimeoutError, match=r"GPU slot \(2 jobs per GPU\).*GPU 0: PIDs \d+ \d+"):
        acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=2)
    leases[0].release()
    with acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=2) as again:
        assert (again.gpu_id, again.slot) == ("0", 0)
    for lease in leases:
        lease.release()
    assert not any(lease.held for lease in leases)


def test_an_exclusive_job_and_slot_holders_never_share_a_gpu(tmp_path):
    """A job configured for a whole GPU (jobs_per_gpu 1) waits while slot holders run on it, and
    slot holders wait while it holds the GPU, whatever each workflow's setting."""
    lock_dir = tmp_path / "locks"
    env = {"APPROXEQ_FAKE_GPUS": "0"}
    sharer = acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=4)
    assert sharer.slot == 0
    with pytest.raises(TimeoutError):
        acquire_device(lock_dir, env=env, timeout_seconds=0, log=lambda m: None)
    with acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=4) as second:
        assert second.slot == 1  # sharers share
    sharer.release()
    with acquire_device(lock_dir, env=env, timeout_seconds=0) as exclusive:
        assert exclusive.slot is None and exclusive.describe() == "cuda:GPU0 (lock)"
        with pytest.raises(TimeoutError):
            acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=4, log=lambda m: None)
    with acquire_device(lock_dir, env=env, timeout_seconds=0, jobs_per_gpu=4) as after:
        assert after.slot == 0  # the slot refused above was let go


def test_slots_do_not_apply_under_slurm_or_on_the_cpu(tmp_path):
    lock_dir = tmp_path / "locks"
    env = {"SLURM_JOB_ID": "4242", "CUDA_VISIBLE_DEVICES": "3"}
    assert acquire_device(lock_dir, env=env, jobs_per_gpu=4).describe() == "cuda:GPU3 (slurm)"
    assert acquire_device(lock_dir, env={}, jobs_per_gpu=4).describe() == "cpu"
    assert not lock_dir.exists()
    with pytest.raises(ValueError, match="at least 1"):
        acquire_device(lock_dir, env={"APPROXEQ_FAKE_GPUS": "0"}, jobs_per_gpu=0)


def test_concurrent_processes_share_one_gpu_by_slots(tmp_path):
    """Four processes on one simulated GPU with 2 slots: never more than two at once on it."""
    hold = 0.5
    procs = _start_workers(tmp_path, 4, hold, "0", jobs_per_gpu=2)
    assert [p.wait(timeout=60) for p in procs] == [0] * 4
    records = [json.loads((tmp_path / f"w{i}.json").read_text()) for i in range(4)]
    assert {r["gpu_id"] for r in records} == {"0"} and {r["slot"] for r in records} == {0, 1}
    events = sorted([(r["start"], 1) for r in records] + [(r["end"], -1) for r in records])
    running, most = 0, 0
    for _, change in events:
        running += change
        most = max(most, running)
    assert most == 2
    assert max(r["end"] for r in records) - min(r["start"] for r in records) >= 2 * hold


def test_train_job_claims_a_slot_with_the_configured_jobs_per_gpu(tmp_path, monkeypatch):
    """workflow/scripts/train.py passes compute.jobs_per_gpu on: with both slots of the one GPU
    taken, the job waits for a slot (and gives up after the configured wait)."""
    script = runpy.run_path(str(Path(__file__).resolve().parents[2] / "workflow/scripts/train.py"))
    monkeypatch.setenv("APPROXEQ_FAKE_GPUS", "0")
    lock_dir = tmp_path / "locks"
    held = [acquire_device(lock_dir, timeout_seconds=0, jobs_per_gpu=2) for _ in range(2)]
    with pytest.raises(TimeoutError, match=r"no free GPU slot \(2 jobs per GPU\).*2 slots"):
        script["main"]({"seed": 0}, 1, str(lock_dir), {"model": str(tmp_path / "run/model.pt")},
                       str(tmp_path / "train.log"), 1000.0, 0.2, compute={"jobs_per_gpu": 2})
    for lease in held:
        lease.release()
