"""Benchmark: DDMNIST D4 training runs per hour on one GPU at 1, 2, 4 and 8 jobs per GPU
(compute.jobs_per_gpu, issue 23 item 2), each job the workflow's own training job.

Prints figures; it is not a test and asserts nothing about time.

For each k, k jobs start at once as separate processes, exactly as Snakemake starts them with
`--resources gpu=k` and `compute.jobs_per_gpu: k`: each runs workflow/scripts/train.py's main
(a slot lock, imports, CUDA context, data load, training, evaluation on the test sets, metrics
written), on a paper-scale DDMNIST D4 file built once from synthetic digits (10,000 / 2,000 /
5,000 canvases; the content does not change the cost), for `--epochs` epochs instead of up to 150.
Per k it prints: the wall time of the k jobs; per job the steady epoch time (median of the epochs
after the first), its images/s on the CUDA path and all k together, the fixed cost per job
(start-up, data, evaluation: the job's time less its epochs), the peak CUDA memory of one job
(torch.cuda.max_memory_allocated, as the job writes it into metrics.json); and runs per hour
extrapolated to `--run-epochs` epochs a run (k × 3600 / (fixed cost + run-epochs × epoch time)).

About 3–4 minutes on one H100 with the defaults (at most 5). Run it on an idle GPU: it takes its
own slot locks in a temporary folder, not the workflow's.

    python benchmarks/gpu_jobs.py                  # GPU 0 (the first visible)
    python benchmarks/gpu_jobs.py --gpu 1 --epochs 2 --json results/gpu_jobs.json
    python benchmarks/gpu_jobs.py --dry-run        # on the CPU at tiny scale: checks the plumbing
"""
from __future__ import annotations

import argparse
import json
import os
import runpy
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TRAIN_SCRIPT = ROOT / "workflow" / "scripts" / "train.py"


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4, 8], help="jobs per GPU to try")
    p.add_argument("--model", default="ours", choices=["cnn", "ours"])
    p.add_argument("--epochs", type=int, default=3, help="epochs each benchmark job trains")
    p.add_argument("--run-epochs", type=int, default=150,
                   help="epochs of the run that runs/hour is extrapolated to (config: up to 150)")
    p.add_argument("--gpu", default=None, help="the GPU id to use (default: the first visible)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per job")
    p.add_argument("--dry-run", action="store_true",
                   help="on the CPU at tiny scale (a simulated GPU): checks that everything runs")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def load_config() -> dict:
    from approxeq.config import validate_config

    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate_config(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def build_data(folder: Path, dry_run: bool) -> Path:
    """A DDMNIST D4 file (with artefacts) at the paper's size, or tiny for a dry run."""
    from approxeq.data.ddmnist import build_ddmnist, save_ddmnist
    from approxeq.data.mnist_synthetic import synthetic_mnist

    mnist = {**synthetic_mnist(600 if dry_run else 6000, 200 if dry_run else 1000, seed=0), "synthetic": True}
    per_class = {"train": 1, "val": 1, "test": 1} if dry_run else {"train": 100, "val": 20, "test": 50}
    canvas = {"size": 56, "top": 14}
    path = folder / "D4.npz"
    save_ddmnist(path, build_ddmnist(mnist, "D4", True, 0, per_class),
                 {"group": "D4", "artefacts": True, "seed": 0, "canvas": canvas,
                  "per_class": per_class, "synthetic": True})
    return path


def job_settings(config: dict, args, data: Path, seed: int) -> dict:
    from approxeq.experiments import run_settings

    run = run_settings(config, "ddmnist", "D4", args.model, seed, str(data))
    run.update(epochs=args.epochs, patience=args.epochs)
    if args.dry_run:
        run.update(batch_size=50, network={**run["network"], "c": 2})
    return run


def worker(spec_path: Path) -> None:
    """One training job: the workflow's train.py main, as Snakemake's `script:` would call it."""
    spec = json.loads(spec_path.read_text())
    script = runpy.run_path(str(TRAIN_SCRIPT))
    script["main"](spec["run"], spec["threads"], spec["lock_dir"], spec["output"], spec["log"],
                   1000.0, None, [spec["run"]["data"]], spec["compute"])


def run_jobs(k: int, args, config: dict, data: Path, folder: Path, env: dict) -> dict:
    """k jobs at once with k slots on the one GPU; their figures."""
    compute = {**{key: config["compute"][key] for key in ("channels_last", "compile", "compile_min_images")},
               "jobs_per_gpu": k}
    procs, outputs = [], []
    for i in range(k):
        run_dir = folder / f"k{k}" / f"seed{i}"
        output = {name: str(run_dir / file) for name, file in
                  (("model", "model.pt"), ("info", "train.json"), ("history", "history.jsonl"),
                   ("metrics", "metrics.json"))}
        spec = {"run": job_settings(config, args, data, i), "threads": args.threads,
                "lock_dir": str(folder / f"locks-k{k}"), "output": output,
                "log": str(folder / f"k{k}-seed{i}.log"), "compute": compute}
        spec_path = folder / f"k{k}-seed{i}.json"
        spec_path.write_text(json.dumps(spec))
        started = time.time()
        procs.append(subprocess.Popen([sys.executable, __file__, "--worker", str(spec_path)], env=env))
        outputs.append((started, output, spec["log"]))
    codes = [p.wait() for p in procs]
    ended = time.time()
    if any(codes):
        failed = [log for code, (_, _, log) in zip(codes, outputs) if code]
        sys.exit(f"{k} jobs per GPU: a job failed; its log: {failed[0]}\n" + Path(failed[0]).read_text()[-3000:])
    jobs = []
    for started, output, _ in outputs:
        info = json.loads(Path(output["info"]).read_text())
        history = [json.loads(line) for line in Path(output["history"]).read_text().splitlines()]
        epoch_s = statistics.median(r["seconds"] for r in history[1:] or history)
        images = history[-1]["images_per_second"] * history[-1]["seconds"]
        fixed_s = (info["evaluated_at"] - started) - sum(r["seconds"] for r in history)
        jobs.append({"epoch_s": epoch_s, "images_per_epoch": images, "fixed_s": fixed_s,
                     "device": info["device"], "memory_mb": info.get("cuda_max_memory_mb")})
    epoch_s = statistics.median(j["epoch_s"] for j in jobs)
    fixed_s = statistics.median(j["fixed_s"] for j in jobs)
    memory = [j["memory_mb"] for j in jobs if j["memory_mb"] is not None]
    return {"jobs_per_gpu": k, "wall_s": ended - min(s for s, _, _ in outputs), "epoch_s": epoch_s,
            "fixed_s": fixed_s, "job_images_per_second": jobs[0]["images_per_epoch"] / epoch_s,
            "all_images_per_second": k * jobs[0]["images_per_epoch"] / epoch_s,
            "memory_mb": max(memory) if memory else None,
            "runs_per_hour": k * 3600 / (fixed_s + args.run_epochs * epoch_s),
            "devices": sorted({j["device"] for j in jobs})}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.worker is not None:
        return worker(args.worker)
    started = time.perf_counter()
    from approxeq.runtime.devices import discover_gpus

    env = {k: v for k, v in os.environ.items() if k not in ("SLURM_JOB_ID", "APPROXEQ_FAKE_GPUS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    if args.dry_run:
        env["APPROXEQ_FAKE_GPUS"] = "0"  # a simulated GPU: slot locks as on a GPU, training on the CPU
        where = "dry run: CPU, tiny scale (c = 2, 100 training images, batch 50), a simulated GPU"
    else:
        gpus = discover_gpus()
        if not gpus:
            sys.exit("no GPU found (nvidia-smi / CUDA_VISIBLE_DEVICES); --dry-run runs on the CPU")
        env["CUDA_VISIBLE_DEVICES"] = args.gpu if args.gpu is not None else gpus[0]
        where = f"GPU {env['CUDA_VISIBLE_DEVICES']}: " + subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total", "--format=csv,noheader", "-i",
             env["CUDA_VISIBLE_DEVICES"]], capture_output=True, text=True).stdout.strip()
    config = load_config()
    print(f"device  {where}")
    print(f"setup   DDMNIST D4 `{args.model}` jobs of {args.epochs} epochs (the workflow's train job, "
          f"{args.threads} threads each); runs/hour extrapolated to {args.run_epochs} epochs a run")
    results = []
    with tempfile.TemporaryDirectory(prefix="approxeq-gpu-jobs-") as tmp:
        folder = Path(tmp)
        data = build_data(folder, args.dry_run)
        print(f"data    {data.name} built in {time.perf_counter() - started:.0f} s")
        print(f"{'jobs/GPU':>8} {'wall s':>7} {'epoch s':>8} {'fixed s':>8} {'img/s job':>10} "
              f"{'img/s all':>10} {'MiB/job':>8} {'runs/hour':>10}")
        for k in args.jobs:
            r = run_jobs(k, args, config, data, folder, env)
            results.append(r)
            memory = "-" if r["memory_mb"] is None else f"{r['memory_mb']:.0f}"
            print(f"{k:>8} {r['wall_s']:>7.1f} {r['epoch_s']:>8.2f} {r['fixed_s']:>8.1f} "
                  f"{r['job_images_per_second']:>10.0f} {r['all_images_per_second']:>10.0f} "
                  f"{memory:>8} {r['runs_per_hour']:>10.1f}", flush=True)
    seconds = time.perf_counter() - started
    summary = "SUMMARY runs/hour " + ", ".join(f"{r['jobs_per_gpu']} jobs/GPU {r['runs_per_hour']:.1f}"
                                               for r in results)
    summary += f"; CUDA path {results[0]['job_images_per_second']:.0f} img/s per job at {results[0]['jobs_per_gpu']}"
    print(f"(benchmark took {seconds:.0f} s; devices: {', '.join(results[-1]['devices'])})")
    figures = {"device": where, "model": args.model, "epochs": args.epochs, "run_epochs": args.run_epochs,
               "dry_run": args.dry_run, "results": results, "seconds": seconds, "summary": summary}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    print(summary)
    return figures


if __name__ == "__main__":
    main()
