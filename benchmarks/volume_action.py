"""Benchmark: the batched octahedral action on 28³ volumes, and a MedMNIST3D training step.

Prints figures; it is not a test and asserts nothing about time.

1. Volume action. `volume_action(O, 28)` (one gather per batch, one element per sample) against a
   per-sample loop of `torch.rot90` compositions (`rot90_words`), at batch 32 and 256, on the same
   batch and elements; both variants interleaved round by round. Volumes per second and the ratio
   loop time ÷ gather time from this run (median of per-round ratios; > 1: the gather is faster).
   The outputs are checked to be equal. On CPU the copy-bound per-sample loop can win (the gather
   materialises a B × 28³ int64 index); on a GPU the gather is one kernel against B small ones.
   Either way the action is a tiny share of a training step (printed last).
2. Training step. The appendix C.2 ResNet (c = 6, 48-dim latent), one full step of
   `method_loss` (forward, backward, Adam) at batch 32: `ours` (w_task = w_shift = 0.5, λ = 1)
   against `cnn_aug` (the same with λ = 0), interleaved; median step times and their ratio.

    python benchmarks/volume_action.py --threads 2
    python benchmarks/volume_action.py --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F
from machine import cpu_name  # benchmarks/machine.py

from approxeq.algebra.actions import (
    rot90_volume,
    rot90_words,
    trivial_action,
    volume_action,
)
from approxeq.algebra.groups import octahedral, octahedral_matrices
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.method.loss import LossWeights, method_loss
from approxeq.nn.networks import medmnist_resnet3d

SIDE = 28


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def action_benchmark(device: torch.device, batch: int, rounds: int) -> dict:
    group = octahedral()
    gather = volume_action(group, SIDE).to(device)
    words = rot90_words(octahedral_matrices())
    x = torch.rand(batch, 1, SIDE, SIDE, SIDE, device=device)
    g = torch.randint(group.order, (batch,), generator=torch.Generator().manual_seed(0)).to(device)
    g_host = g.tolist()

    def loop():
        return torch.stack([rot90_volume(x[b], words[g_host[b]]) for b in range(batch)])

    assert torch.equal(gather(x, g), loop()), "gather and rot90 loop disagree"
    times = {"gather": [], "loop": []}
    for _ in range(rounds):
        times["gather"].append(timed(lambda: gather(x, g), device))
        times["loop"].append(timed(loop, device))
    ratio = statistics.median(lo / ga for lo, ga in zip(times["loop"], times["gather"]))
    return {name: batch / statistics.median(t) for name, t in times.items()} | {"speedup": ratio}


def step_benchmark(device: torch.device, batch: int, rounds: int) -> dict:
    group = octahedral()
    action = volume_action(group, SIDE).to(device)
    rep = latent_representation(group, 48).to(device)
    x = torch.rand(batch, 1, SIDE, SIDE, SIDE, device=device) * 2 - 1
    y = torch.randint(2, (batch,), device=device)
    g = torch.randint(group.order, (batch,), device=device)
    variants = {}
    for name, lam in (("cnn_aug", 0.0), ("ours", 1.0)):
        torch.manual_seed(0)
        model = medmnist_resnet3d(n_classes=2).to(device)
        variants[name] = (model, torch.optim.Adam(model.parameters(), lr=1e-4),
                          LossWeights(task=0.5, shift=0.5, equivariance=lam))

    def step(name):
        model, optimizer, weights = variants[name]
        loss, _ = method_loss(model, x, y, g, weights, F.cross_entropy, action,
                              lambda z, h: apply_matrices(rep, h, z), trivial_action)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for name in variants:  # warm-up
        step(name)
    times = {name: [] for name in variants}
    for _ in range(rounds):
        for name in variants:
            times[name].append(timed(lambda: step(name), device))
    ratio = statistics.median(o / a for o, a in zip(times["ours"], times["cnn_aug"]))
    return {name: statistics.median(t) for name, t in times.items()} | {"ratio": ratio}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=None, help="default 5 on CPU, 30 on CUDA")
    args = p.parse_args(argv)
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device("cuda" if use_cuda else "cpu")
    torch.set_num_threads(args.threads)
    rounds = args.rounds or (30 if use_cuda else 5)
    name = torch.cuda.get_device_name() if use_cuda else f"{cpu_name()}, {args.threads} threads"
    print(f"device: {name}; torch {torch.__version__}; {rounds} rounds")
    actions = {}
    for batch in (32, 256):
        r = actions[batch] = action_benchmark(device, batch, rounds)
        print(f"volume action, batch {batch:3d}: gather {r['gather']:10.0f} volumes/s   "
              f"per-sample rot90 loop {r['loop']:9.0f} volumes/s   loop time ÷ gather time ×{r['speedup']:.2f}")
    r = step_benchmark(device, 32, rounds)
    print(f"training step, batch 32: cnn_aug {1e3 * r['cnn_aug']:.1f} ms   ours {1e3 * r['ours']:.1f} ms"
          f"   ours ÷ cnn_aug ×{r['ratio']:.3f}")
    share = 32 / actions[32]["gather"] / r["ours"]
    print(f"the gather's share of one `ours` step at batch 32: {100 * share:.2f} %")


if __name__ == "__main__":
    main()
