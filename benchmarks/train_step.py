"""Benchmark: cost of one training step of the method against the augmented CNN on DDMNIST.

Prints figures; it is not a test and asserts nothing about time.

1. Step timing. Same DDMNIST CNN (66-dim latent), same random uint8 batch of 56×56 canvases and
   same group elements for every variant; one full step = prepare (uint8 → float), forward,
   `method_loss`, backward, Adam step. Variants, each with its own model and optimizer (same
   initial weights), run interleaved A B C A B C ... after warm-up steps, so that drifts in
   machine speed hit all of them alike:
     augmented   LossWeights(task=1, shift=0, equivariance=0)
     ours        LossWeights(task=1, shift=0, equivariance=λ)      (two encoder passes)
     ours+shift  LossWeights(task=1, shift=1, equivariance=λ)      (two encoder + head passes)
   Reported: median step time, images/s (batch size / median), and ours/augmented from this run,
   both as ratio of medians and as median of the per-round ratios.
2. Training loop. `approxeq.method.train.train` for one epoch on a synthetic in-memory TaskData
   (random canvases, random labels) in a temporary directory; reports the `images_per_second`
   of the returned history (its epoch time includes the validation pass) and the wall time.

    python benchmarks/train_step.py --threads 2
    python benchmarks/train_step.py --device cuda --json results/bench.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import (
    cpu_name,  # benchmarks/machine.py (this folder is on sys.path when run as a script)
)

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.data import ddmnist
from approxeq.method.evaluate import accuracy
from approxeq.method.loss import LossWeights, method_loss, method_objective
from approxeq.method.train import TaskData, TrainConfig, train
from approxeq.nn.encoder_head import count_parameters
from approxeq.nn.networks import ddmnist_cnn

LATENT_DIM = 66
N_CLASSES = 100
CANVAS = ddmnist.Canvas()  # 56×56, the paper's

# CPU defaults keep a run well under a minute on a couple of cores; CUDA steps are cheap.
DEFAULTS = {"cpu": {"repeats": 10, "warmup": 1, "train_images": 2048},
            "cuda": {"repeats": 50, "warmup": 10, "train_images": 16384}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="auto: cuda if available, else cpu")
    p.add_argument("--group", default="D4", help="factor group; the method uses GROUP×GROUP (default D4)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--repeats", type=int, default=None,
                   help="timed rounds per variant (default 10 on CPU, 50 on CUDA)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed steps per variant first (default 1 on CPU, 10 on CUDA)")
    p.add_argument("--lam", type=float, default=1.0, help="equivariance weight λ of 'ours' (default 1.0)")
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--no-shift", action="store_true", help="skip the ours+shift variant")
    p.add_argument("--train-images", type=int, default=None,
                   help="synthetic training-set size for the 1-epoch train() run "
                        "(default 2048 on CPU, 16384 on CUDA; 0 skips it)")
    p.add_argument("--val-images", type=int, default=512)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--deterministic", action="store_true",
                   help="torch.use_deterministic_algorithms(True), as the workflow's default config")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return p.parse_args(argv)


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        sys.exit("--device cuda: CUDA is not available in this torch build / machine")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return cpu_name()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def prepare(x: torch.Tensor) -> torch.Tensor:
    return x.float().div_(255.0)  # as experiments.ddmnist_setup


class Task:
    """The DDMNIST actions on `device`, exactly as experiments.ddmnist_setup builds them."""

    def __init__(self, group: str, device: torch.device):
        self.product = ddmnist.product_group(group)
        self.input_action = ddmnist.pair_action(group, CANVAS).to(device)
        self.rep = latent_representation(self.product, LATENT_DIM).to(device)

    def latent_action(self, z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        return apply_matrices(self.rep, g, z)


def random_canvases(n: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, CANVAS.size, CANVAS.size), dtype=torch.uint8,
                         generator=generator).to(device)


def make_model(seed: int, device: torch.device):
    torch.manual_seed(seed)  # every variant starts from the same weights
    return ddmnist_cnn(latent_dim=LATENT_DIM, n_classes=N_CLASSES).to(device)


def time_steps(args, device: torch.device, task: Task) -> dict:
    gen = torch.Generator().manual_seed(args.seed)
    x = random_canvases(args.batch_size, gen, device)
    y = torch.randint(N_CLASSES, (args.batch_size,), generator=gen).to(device)
    g = torch.randint(task.product.order, (args.batch_size,), generator=gen).to(device)

    variants = {"augmented": LossWeights(task=1.0, shift=0.0, equivariance=0.0),
                "ours": LossWeights(task=1.0, shift=0.0, equivariance=args.lam)}
    if not args.no_shift:
        variants["ours+shift"] = LossWeights(task=1.0, shift=1.0, equivariance=args.lam)

    state = {}
    for name in variants:
        model = make_model(args.seed, device)
        model.train()
        state[name] = (model, torch.optim.Adam(model.parameters(), lr=args.lr))

    def step(name: str) -> float:
        model, optimizer = state[name]
        sync(device)
        start = time.perf_counter()
        loss, _ = method_loss(model, prepare(x), y, g, variants[name], F.cross_entropy,
                              task.input_action, task.latent_action, trivial_action)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        sync(device)
        return time.perf_counter() - start

    for _ in range(args.warmup):
        for name in variants:
            step(name)
    times = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name in variants:
            times[name].append(step(name))

    out = {}
    for name, weights in variants.items():
        median = statistics.median(times[name])
        out[name] = {"weights": asdict(weights),
                     "median_s": median, "min_s": min(times[name]), "max_s": max(times[name]),
                     "images_per_second": args.batch_size / median, "times_s": times[name]}
    base = out["augmented"]["median_s"]
    for name in variants:
        if name == "augmented":
            continue
        out[name]["ratio_vs_augmented"] = out[name]["median_s"] / base
        out[name]["ratio_vs_augmented_paired"] = statistics.median(
            a / b for a, b in zip(times[name], times["augmented"]))
    return out


def time_train_loop(args, device: torch.device, task: Task, weights: LossWeights) -> dict:
    gen = torch.Generator().manual_seed(args.seed + 1)
    data = TaskData(
        x_train=random_canvases(args.train_images, gen, device),
        y_train=torch.randint(N_CLASSES, (args.train_images,), generator=gen).to(device),
        x_val=random_canvases(args.val_images, gen, device),
        y_val=torch.randint(N_CLASSES, (args.val_images,), generator=gen).to(device),
        group_order=task.product.order,
        objective=method_objective(weights, F.cross_entropy, task.input_action, task.latent_action,
                                   trivial_action),
        val_metric=lambda model, xv, yv: accuracy(model, xv, yv, prepare),
        prepare=prepare, maximize=True)
    cfg = TrainConfig(lr=args.lr, batch_size=args.batch_size, epochs=1, patience=1,
                      seed=args.seed, settings=asdict(weights))
    model = make_model(args.seed, device)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="approxeq-bench-") as run_dir:
        sync(device)
        start = time.perf_counter()
        result = train(model, data, cfg, run_dir, log=lines.append)
        sync(device)
        wall = time.perf_counter() - start
    record = result.history[-1]
    steps = max(1, args.train_images // args.batch_size)
    return {"images": steps * args.batch_size, "steps": steps, "val_images": args.val_images,
            "images_per_second": record["images_per_second"], "epoch_seconds": record["seconds"],
            "wall_seconds": wall}


def main(argv=None) -> dict:
    started = time.perf_counter()
    args = parse_args(argv)
    device = pick_device(args.device)
    for key, value in DEFAULTS[device.type].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.deterministic:
        torch.use_deterministic_algorithms(True)

    task = Task(args.group, device)
    n_params = count_parameters(ddmnist_cnn(latent_dim=LATENT_DIM, n_classes=N_CLASSES))
    info = {"device": str(device), "device_name": device_name(device), "torch": torch.__version__,
            "cuda": torch.version.cuda, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "group": f"{args.group}×{args.group}",
            "group_order": task.product.order, "batch_size": args.batch_size,
            "canvas": CANVAS.size, "latent_dim": LATENT_DIM, "parameters": n_params,
            "repeats": args.repeats, "warmup": args.warmup, "lambda": args.lam,
            "deterministic": args.deterministic}
    print(f"device      {info['device']}  ({info['device_name']})")
    print(f"torch       {info['torch']}  cuda {info['cuda']}  threads {info['threads']}  "
          f"python {info['python']}")
    print(f"setup       DDMNIST CNN ({n_params} params, latent {LATENT_DIM}), group "
          f"{info['group']} (|G|={info['group_order']}), batch {args.batch_size} × 1×"
          f"{CANVAS.size}×{CANVAS.size} uint8, λ={args.lam}")
    print(f"step timing {args.warmup} warm-up + {args.repeats} interleaved rounds per variant "
          "(prepare + forward + method_loss + backward + Adam)")

    steps = time_steps(args, device, task)
    for name, r in steps.items():
        ratio = (f"  ×{r['ratio_vs_augmented']:.2f} vs augmented "
                 f"(paired median ×{r['ratio_vs_augmented_paired']:.2f})"
                 if "ratio_vs_augmented" in r else "")
        print(f"  {name:<11} median {r['median_s'] * 1e3:8.1f} ms  [min {r['min_s'] * 1e3:.1f}, "
              f"max {r['max_s'] * 1e3:.1f}]  {r['images_per_second']:8.0f} img/s{ratio}")

    loops = {}
    if args.train_images > 0:
        print(f"train()     1 epoch, {args.train_images} synthetic images "
              f"({args.train_images // args.batch_size} steps) + {args.val_images} val images")
        for name, weights in (("augmented", LossWeights(task=1.0, shift=0.0, equivariance=0.0)),
                              ("ours", LossWeights(task=1.0, shift=0.0, equivariance=args.lam))):
            loops[name] = r = time_train_loop(args, device, task, weights)
            ratio = ""
            if name != "augmented":
                r["time_ratio_vs_augmented"] = (loops["augmented"]["images_per_second"]
                                                / r["images_per_second"])
                ratio = f"  ×{r['time_ratio_vs_augmented']:.2f} vs augmented"
            print(f"  {name:<11} {r['images_per_second']:8.0f} img/s (history; epoch incl. val "
                  f"{r['epoch_seconds']:.2f} s, wall incl. checkpoint {r['wall_seconds']:.2f} s)"
                  + ratio)

    summary = (f"SUMMARY {info['device_name']} [{device.type}, {info['threads']} thr] "
               f"{info['group']} batch {args.batch_size}: step augmented "
               f"{steps['augmented']['median_s'] * 1e3:.1f} ms, ours "
               f"{steps['ours']['median_s'] * 1e3:.1f} ms "
               f"(×{steps['ours']['ratio_vs_augmented']:.2f}); "
               f"{steps['augmented']['images_per_second']:.0f} vs "
               f"{steps['ours']['images_per_second']:.0f} img/s")
    if loops:
        summary += (f"; train() {loops['augmented']['images_per_second']:.0f} vs "
                    f"{loops['ours']['images_per_second']:.0f} img/s")
    info["benchmark_seconds"] = time.perf_counter() - started
    print(f"(benchmark took {info['benchmark_seconds']:.0f} s)")
    figures = {"info": info, "step": steps, "train_loop": loops, "summary": summary}
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
        print(f"wrote {args.json}")
    print(summary)
    return figures


if __name__ == "__main__":
    main()
