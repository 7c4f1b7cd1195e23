"""The throughput benchmarks of issue 23 run (their figures are not checked: no timed tests)."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(script: str, *args: str, tmp_path: Path) -> dict:
    out = tmp_path / "figures.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *args, "--json", str(out)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "SUMMARY" in done.stdout
    return json.loads(out.read_text())


def test_the_gpu_jobs_benchmark_runs_dry_on_the_cpu_with_shared_slots(tmp_path):
    """--dry-run: two workflow training jobs at once on one simulated GPU, one slot each."""
    figures = _run("gpu_jobs.py", "--dry-run", "--jobs", "2", "--epochs", "1", tmp_path=tmp_path)
    (result,) = figures["results"]
    assert figures["dry_run"] and result["jobs_per_gpu"] == 2
    assert result["devices"] == ["cuda:GPU0 (lock, slot 1 of 2)", "cuda:GPU0 (lock, slot 2 of 2)"]
    assert result["runs_per_hour"] > 0 and result["memory_mb"] is None  # no CUDA memory on the CPU


def test_the_cpu_throughput_benchmark_runs(tmp_path):
    """--variants picks what runs; `before`, the reference of every ratio, runs always."""
    figures = _run("throughput.py", "--threads", "1", "--models", "ours", "--variants", "channels-last", "kept",
                   "--c", "1", "--batch-size", "8", "--repeats", "4", "--warmup", "0", tmp_path=tmp_path)
    (result,) = figures["results"]
    assert {name for name in result if isinstance(result[name], dict)} == {"before", "channels-last", "kept"}
    assert result["gflop_per_step"] > 0
    for name in ("before", "channels-last", "kept"):
        low, high = result[name]["speedup_quartiles"]
        assert low <= result[name]["speedup"] <= high
