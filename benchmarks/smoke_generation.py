"""Benchmark: SMOKE generation batched (many plumes per PhiFlow batch) against one at a time.

Prints figures; it is not a test and asserts nothing about time.

Both variants call `approxeq.data.smoke_sim.simulate` with the same SmokeConfig and simulations; they
differ only in `batch_size` (all at once, or --batch-size, against 1). Each variant runs in its
own child process, so that its peak resident memory (ru_maxrss of that process) is its own.
Before the timed run, a child makes the same calls for 2 steps, which traces the jit-compiled
step for every batch size used (PhiFlow traces once per batch size; the trace time is reported
separately). Reported per variant: wall time of the timed run, simulation-steps per second
(simulations × steps / time), milliseconds per step of one simulation, peak RSS, and the
trace/warm-up time; then batched ÷ one-at-a-time speed from this run, and whether both variants
produced bit-identical velocity and density (sha256 of the arrays).

    python benchmarks/smoke_generation.py                        # CPU: 8 plumes × 60 steps
    python benchmarks/smoke_generation.py --simulations 36 --steps 310   # the full set
    python benchmarks/smoke_generation.py --device cuda --json results/smoke_bench.json
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import (
    cpu_name,  # benchmarks/machine.py (this folder is on sys.path when run as a script)
)

# CPU defaults finish in about a minute on two cores; on CUDA the full set is cheap.
DEFAULTS = {"cpu": {"simulations": 8, "steps": 60}, "cuda": {"simulations": 36, "steps": 310}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda if available, else cpu")
    p.add_argument("--simulations", type=int, default=None,
                   help="plumes k = 1..N (default 8 on CPU, 36 on CUDA)")
    p.add_argument("--steps", type=int, default=None,
                   help="steps per plume (default 60 on CPU, 310 on CUDA); frames 1..steps-1 kept")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=None,
                   help="simulations per PhiFlow batch in the batched variant (default: all)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch / OpenMP threads per child (default 1: faster than 2 for this "
                        "workload on a small CPU)")
    p.add_argument("--variants", default="batched,single",
                   help="comma-separated subset of batched,single (default both)")
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def cuda_available() -> bool:
    import torch
    return torch.cuda.is_available()


def config_of(args):
    from approxeq.data.smoke_sim import SmokeConfig
    return SmokeConfig(resolution=args.resolution, n_simulations=args.simulations,
                       steps=args.steps, first_frame=1, last_frame=args.steps - 1)


def child(args) -> dict:
    """One variant in this process: warm-up (tracing), then the timed run."""
    import dataclasses
    import warnings

    import torch
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    from phi.torch import TORCH

    from approxeq.data.smoke_sim import simulate
    if args.device == "cuda":
        TORCH.set_default_device("GPU")
    default = TORCH.get_default_device()
    device = default.device_type if default.device_type == "CPU" else f"{default.device_type} {default.name}"
    config = config_of(args)
    ids = config.simulation_ids()
    batch_size = 1 if args.child == "single" else args.batch_size
    start = time.perf_counter()
    simulate(dataclasses.replace(config, steps=2, last_frame=1), ids, batch_size=batch_size)
    warmup_s = time.perf_counter() - start
    lines: list[str] = []
    start = time.perf_counter()
    result = simulate(config, ids, batch_size=batch_size, log=lines.append, log_every=10 ** 9)
    wall_s = time.perf_counter() - start
    digest = hashlib.sha256()
    for k in ids:
        digest.update(result[k]["velocity"].tobytes())
        digest.update(result[k]["density"].tobytes())
    sim_steps = len(ids) * config.steps
    return {"variant": args.child, "batch_size": batch_size or len(ids), "device": device,
            "threads": torch.get_num_threads(), "warmup_trace_s": warmup_s, "wall_s": wall_s,
            "simulation_steps_per_s": sim_steps / wall_s,
            "ms_per_simulation_step": 1000 * wall_s / sim_steps,
            "ms_per_batched_step": 1000 * wall_s / (config.steps * -(-len(ids) // (batch_size or len(ids)))),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "sha256": digest.hexdigest(), "log_tail": lines[-1:]}


def run_child(args, variant: str) -> dict:
    command = [sys.executable, __file__, "--child", variant, "--device", args.device,
               "--simulations", str(args.simulations), "--steps", str(args.steps),
               "--resolution", str(args.resolution), "--threads", str(args.threads)]
    if args.batch_size is not None:
        command += ["--batch-size", str(args.batch_size)]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    proc = subprocess.run(command, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        sys.exit(f"variant {variant} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    sys.exit(f"variant {variant} printed no RESULT line:\n{proc.stdout[-2000:]}")


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child is not None:
        print("RESULT " + json.dumps(child(args)), flush=True)
        return {}
    if args.device == "auto":
        args.device = "cuda" if cuda_available() else "cpu"
    elif args.device == "cuda" and not cuda_available():
        sys.exit("--device cuda: CUDA is not available")
    for key, value in DEFAULTS[args.device].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.steps < 2:
        sys.exit("--steps must be at least 2")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - {"batched", "single"})
    if unknown or not variants:
        sys.exit(f"--variants: unknown or empty {unknown}")

    machine = cpu_name() if args.device == "cpu" else f"{args.device} ({cpu_name()} host)"
    print(f"SMOKE generation: {args.simulations} plumes × {args.steps} steps on "
          f"{args.resolution}×{args.resolution}, device {args.device}, {args.threads} thread(s), "
          f"{os.cpu_count()} CPUs: {machine}")
    results = {}
    for variant in variants:
        r = run_child(args, variant)
        results[variant] = r
        print(f"  {variant:8s} batch {r['batch_size']:3d}: {r['wall_s']:8.2f} s, "
              f"{r['simulation_steps_per_s']:8.1f} simulation-steps/s, "
              f"{r['ms_per_simulation_step']:7.2f} ms per simulation-step, "
              f"{r['ms_per_batched_step']:7.1f} ms per batched step, "
              f"peak RSS {r['peak_rss_mib']:7.0f} MiB, trace/warm-up {r['warmup_trace_s']:.1f} s "
              f"[{r['device']}]")
    summary = {"simulations": args.simulations, "steps": args.steps, "resolution": args.resolution,
               "device": args.device, "threads": args.threads, "machine": machine,
               "variants": results}
    if {"batched", "single"} <= set(results):
        speedup = results["single"]["wall_s"] / results["batched"]["wall_s"]
        identical = results["single"]["sha256"] == results["batched"]["sha256"]
        summary.update(speedup=speedup, identical=identical)
        print(f"  batched ÷ one at a time: {speedup:.2f}× faster; results bit-identical: "
              f"{'yes' if identical else 'NO'}")
        print(f"SUMMARY smoke_generation {args.simulations}x{args.steps}@{args.resolution} "
              f"{args.device}: batched {results['batched']['simulation_steps_per_s']:.1f} sim-steps/s, "
              f"single {results['single']['simulation_steps_per_s']:.1f} sim-steps/s, "
              f"speedup {speedup:.2f}x, identical={identical}")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


if __name__ == "__main__":
    main()
