"""DDMNIST per-epoch augmentation: its cost beside an epoch of training, measured in one run.

    python benchmarks/augmentation.py [--images 10000] [--group D4] [--threads 1] [--steps 5] [--device cpu]

Times, on the same machine in one run: (a) one epoch's augmentation of `--images` training pairs
(approxeq.data.ddmnist.PairAugmentation: a fresh element of G×G per pair, artefact rotations where the
group has them), for the first view alone (second_view: exact) and with the authors' second view;
(b) the training step of the C.1 CNN at batch 256 (prepare, forward, loss, backward, Adam) for the
CNN (λ = 0) and for ours (λ = 1, two encoder passes), median of `--steps` after one warm-up step.
Prints the epoch time with and without the augmentation, images per second before and after, and the
augmentation's share of an epoch (the goal: under 5 % on the CPU).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.data.ddmnist import (
    Canvas,
    PairAugmentation,
    draw_artefact_angles,
    pair_action,
    product_group,
)
from approxeq.method.loss import LossWeights, method_loss
from approxeq.nn.networks import ddmnist_cnn


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--group", default="D4", choices=["C4", "D1", "D4"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    canvas, product = Canvas(), product_group(args.group)
    generator = torch.Generator().manual_seed(0)
    clean = torch.randint(0, 256, (args.images, 1, 56, 56), dtype=torch.uint8, generator=generator).to(device)
    augment = PairAugmentation(args.group, canvas, artefacts=args.group != "D1", device=device)

    def first_view():
        elements = torch.randint(product.order, (args.images,), generator=generator).to(device)
        angles = draw_artefact_angles((args.images, 2), generator).to(device) if augment.artefacts else None
        return augment(clean, elements, angles)

    def both_views():
        x1 = first_view()
        elements = torch.randint(product.order, (args.images,), generator=generator).to(device)
        angles = draw_artefact_angles((args.images, 2), generator).to(device) if augment.artefacts else None
        return augment(x1, elements, angles)

    augmentation = {"first view": timed(first_view, 3), "first + authors' second view": timed(both_views, 3)}

    rep = latent_representation(product, 66).to(device)
    action = pair_action(args.group, canvas).to(device)
    x = clean[:args.batch_size]
    y = torch.randint(100, (args.batch_size,), generator=generator).to(device)
    g = torch.randint(product.order, (args.batch_size,), generator=generator).to(device)
    steps_per_epoch = args.images // args.batch_size
    print(f"{args.images} training pairs, {args.group}×{args.group}, artefacts {augment.artefacts}, "
          f"{args.threads} thread(s), {device}; epoch = {steps_per_epoch} steps of {args.batch_size}")
    for name, equivariance in (("CNN (λ = 0)", 0.0), ("ours (λ = 1)", 1.0)):
        model = ddmnist_cnn(latent="bn_elu").to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        weights = LossWeights(task=1.0, shift=0.0, equivariance=equivariance)

        def step():
            loss, _ = method_loss(model, x.float().div(255), y, g, weights, F.cross_entropy, action,
                                  lambda z, e: apply_matrices(rep, e, z), trivial_action, penalty="normalised")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step()  # warm-up
        epoch = timed(step, args.steps) * steps_per_epoch
        for view, seconds in augmentation.items():
            if equivariance == 0.0 and view != "first view":
                continue
            share = seconds / (epoch + seconds)
            print(f"  {name:13s} {view:29s} epoch {epoch:7.1f} s, augmentation {seconds:6.2f} s "
                  f"({100 * share:.1f} % of the epoch); {args.images / epoch:6.1f} img/s before, "
                  f"{args.images / (epoch + seconds):6.1f} img/s after")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
