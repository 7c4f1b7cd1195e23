"""Benchmark: the DDMNIST training step as the workflow ran it before the speed-ups against the
steps it runs today (issue 23 item 1), CNN and ours, at 1 and 2 threads, in one run.

Prints figures; it is not a test and asserts nothing about time.

Per thread count and model, five variants of one full training step (prepare uint8 → float,
forward, the method's loss, backward, Adam step), each with its own model and optimizer from the
same initial weights, on the same random batch of 56×56 canvases under D4×D4:
  before          eager, NCHW, deterministic mode filling every new tensor with NaN, glibc's
                  malloc defaults (what a workflow job did before: torch.use_deterministic_algorithms
                  alone)
  channels-last   eager, NHWC weights and batches, the network's DepthwiseAvgPool2d, no NaN fill
                  (compute.channels_last), glibc's malloc defaults
  compiled        the same objective through torch.compile (compute.compile), malloc defaults
  kept            channels-last with malloc keeping freed memory (compute.keep_freed_memory):
                  what the quick run and every short DDMNIST job do today
  compiled+kept   compiled with malloc keeping freed memory: what a paper-scale job does today
Malloc's settings belong to a process, so every variant runs in a process of its own (spawned
with glibc's MALLOC_* variables cleared, so "defaults" are the defaults); the main process hands
out the steps in turn, A B C D E A B C D E ..., so that drifts in machine speed hit all alike.
Reported: median step time, images/s, GFLOP/s (FLOPs of one step from torch.utils.flop_counter
over the median time), the speed-up over `before` as the median of the per-round ratios with their
quartiles in brackets (how far one run can be trusted on a busy machine), and each
process's peak resident memory. For the compiled variants also the compile time and the training
images after which compiling has paid for itself against the same variant eager.

    python benchmarks/throughput.py                       # 1 and 2 threads, CNN and ours
    python benchmarks/throughput.py --threads 1 --no-compile --repeats 5
    python benchmarks/throughput.py --threads 2 --models cnn --variants compiled+kept --repeats 24
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import resource
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import cpu_name  # benchmarks/machine.py (this folder is on sys.path when run as a script)
from torch.utils.flop_counter import FlopCounterMode

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.data import ddmnist
from approxeq.method.loss import LossWeights, method_objective
from approxeq.method.train import COMPILE_OPTIONS
from approxeq.nn.networks import ddmnist_cnn
from approxeq.runtime.allocator import MALLOC_ENVIRONMENT, keep_freed_memory

CANVAS = ddmnist.Canvas()
MODELS = {"cnn": LossWeights(task=1.0, shift=0.0, equivariance=0.0),   # config.yaml's D4 weights
          "ours": LossWeights(task=1.0, shift=0.0, equivariance=1.0)}
VARIANTS = ("before", "channels-last", "compiled", "kept", "compiled+kept")
COMPILED = {"compiled": "channels-last", "compiled+kept": "kept"}  # each against itself eager


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["cnn", "ours"])
    p.add_argument("--group", default="D4")
    p.add_argument("--c", type=int, default=6, help="width of the C.1 CNN (paper: 6)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=8, help="timed interleaved rounds")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps per variant after the first")
    p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS),
                   help="which variants to time (`before`, the reference of every ratio, always runs)")
    p.add_argument("--no-compile", action="store_true", help="skip the compiled variants (minutes)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


class Variant:
    """One way of computing the step: its own model and optimizer, the same initial weights."""

    def __init__(self, name: str, args, weights: LossWeights, task: dict):
        self.name, self.batch = name, task["batch"]
        self.channels_last = name != "before"
        self.fill = name == "before"  # deterministic mode's NaN fill of new tensors, as before
        torch.manual_seed(args.seed)
        self.model = ddmnist_cnn(c=args.c, latent_dim=66, n_classes=100)
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=5e-4)
        self.objective = method_objective(weights, F.cross_entropy, task["input_action"],
                                          task["latent_action"], trivial_action)
        if name in COMPILED:  # as approxeq.method.train does for compute.compile
            self.objective = torch.compile(self.objective, dynamic=False, options=COMPILE_OPTIONS)

    def step(self) -> float:
        x, y, g = self.batch
        torch.utils.deterministic.fill_uninitialized_memory = self.fill
        start = time.perf_counter()
        x = x.float().div_(255.0)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, _ = self.objective(self.model, x, y, g)
        loss.item()  # the trainer reads every step's loss
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return time.perf_counter() - start


def make_task(args) -> dict:
    """The random batch (the same in every process: one seed) and the group's actions."""
    product = ddmnist.product_group(args.group)
    rep = latent_representation(product, 66)
    gen = torch.Generator().manual_seed(args.seed)
    batch = (torch.randint(0, 256, (args.batch_size, 1, CANVAS.size, CANVAS.size), dtype=torch.uint8,
                           generator=gen),
             torch.randint(100, (args.batch_size,), generator=gen),
             torch.randint(product.order, (args.batch_size,), generator=gen))
    return {"batch": batch, "input_action": ddmnist.pair_action(args.group, CANVAS),
            "latent_action": lambda z, g: apply_matrices(rep, g, z)}


def reset_peak_memory() -> None:
    """Start the process's peak resident memory afresh (Linux: "5" to /proc/self/clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass  # elsewhere the peak stays the process's peak so far


def peak_memory_mib() -> float:
    """Peak resident memory since the last reset_peak_memory (VmHWM), else since the start."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(name: str, args, conn) -> None:
    """One variant's process: ("setup", threads, model) builds it and runs its first and warm-up
    steps (answering the first step's time), ("step",) times one step, ("stop",) ends."""
    keep_freed_memory(name in ("kept", "compiled+kept"))
    torch.use_deterministic_algorithms(True, warn_only=True)  # the workflow's default
    task, variant = make_task(args), None
    while True:
        message = conn.recv()
        if message[0] == "stop":
            return
        if message[0] == "setup":
            _, threads, model = message
            torch.set_num_threads(threads)
            torch._dynamo.reset()  # compiled kernels bake in the thread count: compile per setting
            variant = None  # free the previous setting's model before its peak is forgotten
            reset_peak_memory()  # each (threads, model) reports its own peak
            variant = Variant(name, args, MODELS[model], task)
            first = variant.step()  # a compiled variant compiles here
            for _ in range(args.warmup):
                variant.step()
            conn.send(first)
        else:  # the step's time and the peak resident memory of this setting so far, MiB
            conn.send((variant.step(), peak_memory_mib()))


def quartiles(values: list[float]) -> tuple[float, float]:
    """First and third quartile (the median of each half for fewer than four values)."""
    if len(values) < 4:
        return min(values), max(values)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q1, q3


def step_flops(args, weights: LossWeights, task: dict) -> int:
    variant = Variant("channels-last", args, weights, task)
    with FlopCounterMode(display=False) as counter:
        variant.step()
    return counter.get_total_flops()


def measure(args, workers: dict, threads: int, model: str, task: dict) -> dict:
    first = {}
    for name, conn in workers.items():  # one after another: compilations do not overlap timings
        conn.send(("setup", threads, model))
        first[name] = conn.recv()
    times, peak = {name: [] for name in workers}, {}
    for _ in range(args.repeats):
        for name, conn in workers.items():
            conn.send(("step",))
            seconds, peak[name] = conn.recv()
            times[name].append(seconds)
    torch.set_num_threads(threads)
    flops = step_flops(args, MODELS[model], task)
    out = {"threads": threads, "model": model, "gflop_per_step": flops / 1e9}
    for name in workers:
        median = statistics.median(times[name])
        ratios = [b / t for b, t in zip(times["before"], times[name])]
        out[name] = {"median_s": median, "min_s": min(times[name]), "max_s": max(times[name]),
                     "images_per_second": args.batch_size / median, "gflops": flops / median / 1e9,
                     "speedup": statistics.median(ratios), "speedup_quartiles": quartiles(ratios),
                     "first_step_s": first[name], "peak_rss_mib": peak[name], "times_s": times[name]}
    for name, eager_name in COMPILED.items():
        if name in out and eager_name in out:
            compiled, eager = out[name], out[eager_name]
            compiled["compile_s"] = first[name] - compiled["median_s"]
            saved = 1 / eager["images_per_second"] - 1 / compiled["images_per_second"]
            compiled["break_even_images"] = compiled["compile_s"] / saved if saved > 0 else None
    return out


def start_workers(args) -> dict:
    """One spawned process per variant, with malloc's environment variables cleared so that the
    variants meant to run with glibc's defaults get them."""
    cleared = [key for key in MALLOC_ENVIRONMENT if os.environ.pop(key, None) is not None]
    if cleared:
        print(f"note    cleared {', '.join(cleared)} for the variant processes")
    context = multiprocessing.get_context("spawn")
    chosen = {"before", *args.variants}
    names = [n for n in VARIANTS if n in chosen and not (args.no_compile and n in COMPILED)]
    workers = {}
    for name in names:
        ours, theirs = context.Pipe()
        context.Process(target=worker, args=(name, args, theirs), daemon=True).start()
        workers[name] = ours
    return workers


def main(argv=None) -> dict:
    started = time.perf_counter()
    args = parse_args(argv)
    torch._dynamo.config.cache_size_limit = 64
    task = make_task(args)
    info = {"cpu": cpu_name(), "torch": torch.__version__, "python": platform.python_version(),
            "group": f"{args.group}×{args.group}", "batch_size": args.batch_size, "c": args.c,
            "repeats": args.repeats}
    print(f"cpu     {info['cpu']}  torch {info['torch']}  python {info['python']}")
    print(f"setup   DDMNIST C.1 CNN c={args.c}, {info['group']}, batch {args.batch_size}, "
          f"{args.warmup} warm-up + {args.repeats} interleaved rounds, one process per variant; "
          "speed-up = median of per-round ratios to `before`")
    workers = start_workers(args)
    results = []
    try:
        for threads in args.threads:
            for model in args.models:
                r = measure(args, workers, threads, model, task)
                results.append(r)
                print(f"{model:<4} {threads} thr  {r['gflop_per_step']:.2f} GFLOP/step")
                for name in workers:
                    v = r[name]
                    extra = ""
                    if name in COMPILED and "compile_s" in v:
                        paid = v["break_even_images"]
                        extra = (f"  (compile {v['compile_s']:.0f} s, pays off after "
                                 + (f"{paid:,.0f} images)" if paid else "never)"))
                    print(f"   {name:<14} {v['median_s'] * 1e3:7.0f} ms  {v['images_per_second']:6.1f} img/s  "
                          f"{v['gflops']:5.1f} GFLOP/s  ×{v['speedup']:.2f} "
                          f"[{v['speedup_quartiles'][0]:.2f}–{v['speedup_quartiles'][1]:.2f}]  peak RSS "
                          f"{v['peak_rss_mib']:5.0f} MiB{extra}", flush=True)
    finally:
        for conn in workers.values():
            conn.send(("stop",))
    summary = "SUMMARY " + "; ".join(
        f"{r['model']} {r['threads']}thr " + " ".join(
            f"{name} {r[name]['images_per_second']:.0f} img/s ×{r[name]['speedup']:.2f}"
            for name in VARIANTS if name in r)
        for r in results)
    info["benchmark_seconds"] = time.perf_counter() - started
    print(f"(benchmark took {info['benchmark_seconds']:.0f} s)")
    figures = {"info": info, "results": results, "summary": summary}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(summary)
    return figures


if __name__ == "__main__":
    main()
