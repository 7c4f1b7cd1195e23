"""Benchmark: training-step time and parameter count of each equivariant baseline against the method.

Prints figures; it is not a test and asserts nothing about time. Needs the optional escnn extra.

DDMNIST (per group G): the method (C.1 CNN, 66-dim latent, λ > 0: two encoder passes and the
latent term, as trained) against the SCNN, the RPP (its prior included), the Restriction and the
PSCNN (its KL and alignment prior included; Veefkind & Cesa's gated fields of G, λ = 0).
MedMNIST3D (`--medmnist`, 28³ volumes, 2 classes): the method (C.2 ResNet, 48-dim latent, λ = 1
with the shifted term, as trained) against the SCNN, RPP and PSCNN (its KL and alignment prior
included) for SO(3) and O(3) (λ = 0). SMOKE: the method (C.3 ConvNet, shift term and latent term as configured)
against the E2CNN, the RPP (its prior included), and Wang et al.'s MLP, Lift, RGroup and RSteer
(RSteer's prior included) at config.yaml's sizes.
One step = forward, loss, backward, Adam step on the same random batch, built exactly as the experiments build them
(experiments.method_objective / smoke_task.smoke_objective); the variants of one comparison run
interleaved A B A B ... after warm-up, so a drift in machine speed hits both. Reported: median
step time of each, and baseline ÷ method as the median of the per-round ratios, all from one run;
parameter counts beside the paper's Par (M).

    python benchmarks/baselines.py --threads 2
    python benchmarks/baselines.py --threads 1 --groups      # SMOKE only
    python benchmarks/baselines.py --threads 2 --no-smoke --medmnist   # DDMNIST and MedMNIST3D
    python benchmarks/baselines.py --device cuda --json results/bench_baselines.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from machine import cpu_name  # benchmarks/machine.py (on sys.path when run as a script)

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.data import ddmnist
from approxeq.experiments.smoke import smoke_objective
from approxeq.method.loss import LossWeights, method_objective
from approxeq.nn.baselines import INSTALL_HINT, escnn_available
from approxeq.nn.encoder_head import count_parameters
from approxeq.nn.registry import build_model

PAPER_PARAMS_M = {("ddmnist", "C4"): {"CNN": 0.03, "SCNN": 0.12, "RPP": 0.79, "Restriction": 0.12, "PSCNN": 0.51,
                                     "Ours": 0.03},
                  ("ddmnist", "D1"): {"CNN": 0.03, "SCNN": 0.03, "RPP": 0.08, "Restriction": 0.33, "PSCNN": 0.04,
                                     "Ours": 0.03},
                  ("ddmnist", "D4"): {"CNN": 0.03, "SCNN": 0.15, "RPP": 1.73, "Restriction": 0.17, "PSCNN": 1.23,
                                     "Ours": 0.03},
                  ("medmnist", "O"): {"SCNN SO3": 0.13, "SCNN O3": 0.19, "RPP SO3": 18.30, "RPP O3": 29.30,
                                      "PSCNN SO3": 4.17, "PSCNN O3": 3.51},
                  ("smoke", "C4"): {"Ours": 0.25, "E2CNN": 0.62, "RPP": 4.36, "MLP": 8.33, "Lift": 3.32,
                                    "RGroup": 1.88, "RSteer": 5.60}}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--groups", nargs="*", default=["C4", "D1", "D4"],
                   help="DDMNIST groups (none: SMOKE only)")
    p.add_argument("--batch-size", type=int, default=64, help="DDMNIST batch (equal for both; paper 256)")
    p.add_argument("--smoke-batch-size", type=int, default=16, help="SMOKE batch (the paper's 16)")
    p.add_argument("--smoke-resolution", type=int, default=64)
    p.add_argument("--medmnist", action="store_true", help="also MedMNIST3D (SCNN / RPP / PSCNN, SO(3) and O(3))")
    p.add_argument("--medmnist-batch-size", type=int, default=8, help="MedMNIST3D batch (paper 32)")
    p.add_argument("--no-smoke", action="store_true", help="leave SMOKE out")
    p.add_argument("--repeats", type=int, default=None, help="timed rounds (default 5 on CPU, 30 on CUDA)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps each (default 1 CPU, 5 CUDA)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed_rounds(variants: dict, device, repeats: int, warmup: int) -> dict[str, list[float]]:
    """variants: name → step(); interleaved rounds, seconds per step."""
    for step in variants.values():
        for _ in range(warmup):
            step()
    sync(device)
    times = {name: [] for name in variants}
    for _ in range(repeats):
        for name, step in variants.items():
            start = time.perf_counter()
            step()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def make_step(model, objective, x, y, g):
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)

    def step():
        optimiser.zero_grad(set_to_none=True)
        loss, _ = objective(model, x, y, g)
        loss.backward()
        optimiser.step()
    return step


def ddmnist_comparison(group: str, batch: int, device, repeats: int, warmup: int) -> dict:
    product = ddmnist.product_group(group)
    input_action = ddmnist.pair_action(group).to(device)
    rep = latent_representation(product, 66).to(device)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 56, 56, generator=generator).to(device)
    y = torch.randint(100, (batch,), generator=generator).to(device)
    g = torch.randint(product.order, (batch,), generator=generator).to(device)
    ours = build_model("ddmnist_cnn", latent="bn_elu").to(device)
    baselines = {label: build_model(name, group=group, latent="bn_elu").to(device)
                 for label, name in (("SCNN", "ddmnist_scnn"), ("RPP", "ddmnist_rpp"),
                                     ("Restriction", "ddmnist_restriction"), ("PSCNN", "ddmnist_pscnn"))}
    objective = {lam: method_objective(LossWeights(1.0, 0.0, lam), F.cross_entropy, input_action,
                                       latent_action, trivial_action, penalty="normalised")
                 for lam in (0.0, 1.0)}
    steps = {"Ours": make_step(ours, objective[1.0], x, y, g)}
    steps.update({label: make_step(model, objective[0.0], x, y, g) for label, model in baselines.items()})
    times = timed_rounds(steps, device, repeats, warmup)
    return summarise(("ddmnist", group), times, {"Ours": ours, **baselines}, batch)


def medmnist_comparison(batch: int, device, repeats: int, warmup: int) -> dict:
    """The C.2 ResNet with ours' Nodule3D weights (task 0.5, shift 0.5, λ 1, mse) against Table 5's
    escnn models (SCNN, RPP, PSCNN) at config.yaml's sizes (c = 6, 48 latent fields, 2 classes), λ = 0."""
    from approxeq.algebra.actions import volume_action
    from approxeq.algebra.groups import octahedral

    group = octahedral()
    input_action = volume_action(group, 28).to(device)
    rep = latent_representation(group, 48).to(device)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    generator = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 1, 28, 28, 28, generator=generator).to(device)
    y = torch.randint(2, (batch,), generator=generator).to(device)
    g = torch.randint(group.order, (batch,), generator=generator).to(device)
    ours = build_model("medmnist_resnet3d", c=6, upsample=29, latent_dim=48, n_classes=2).to(device)
    baselines = {f"{kind} {grp}": build_model(f"medmnist_{kind.lower()}", group=grp, n_classes=2).to(device)
                 for kind in ("SCNN", "RPP", "PSCNN") for grp in ("SO3", "O3")}
    objective = {lam: method_objective(LossWeights(1.0 - shift, shift, lam), F.cross_entropy, input_action,
                                       latent_action, trivial_action)
                 for lam, shift in ((0.0, 0.0), (1.0, 0.5))}
    steps = {"Ours": make_step(ours, objective[1.0], x, y, g)}
    steps.update({label: make_step(model, objective[0.0], x, y, g) for label, model in baselines.items()})
    times = timed_rounds(steps, device, repeats, warmup)
    return summarise(("medmnist", "O"), times, {"Ours": ours, **baselines}, batch)


def smoke_comparison(batch: int, resolution: int, device, repeats: int, warmup: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    frames = torch.randn(batch, 32, 2, resolution, resolution, generator=generator).to(device)
    horizon = 6

    def targets_of(windows, h):
        return frames[windows, 10:10 + h].flatten(1, 2)

    x = frames[:, :10].flatten(1, 2)
    windows = torch.arange(batch, device=device)
    g = torch.randint(4, (batch,), generator=generator).to(device)
    ours = build_model("smoke_convnet", hidden=92).to(device)
    e2cnn = build_model("smoke_e2cnn", hidden=92).to(device)
    rpp = build_model("smoke_rpp", hidden=92).to(device)
    relaxed = {"MLP": build_model("smoke_mlp", hidden=92, grid=resolution),
               "Lift": build_model("smoke_lift", hidden=92, encoder_hidden=32, grid=resolution),
               "RGroup": build_model("smoke_rgroup", hidden=92, banks=2),
               "RSteer": build_model("smoke_rsteer", hidden=92, alpha=1e-5)}
    relaxed = {name: model.to(device) for name, model in relaxed.items()}
    ours_objective = smoke_objective(LossWeights(1.0, 0.5, 0.005), targets_of, horizon)
    plain = smoke_objective(LossWeights(1.0, 0.0, 0.0), targets_of, horizon)
    times = timed_rounds({"Ours": make_step(ours, ours_objective, x, windows, g),
                          "E2CNN": make_step(e2cnn, plain, x, windows, g),
                          "RPP": make_step(rpp, plain, x, windows, g),
                          **{name: make_step(model, plain, x, windows, g) for name, model in relaxed.items()}},
                         device, repeats, warmup)
    return summarise(("smoke", "C4"), times, {"Ours": ours, "E2CNN": e2cnn, "RPP": rpp, **relaxed}, batch)


def summarise(key, times: dict, models: dict, batch: int) -> dict:
    experiment, group = key
    paper = PAPER_PARAMS_M[key]
    result = {"experiment": experiment, "group": group, "batch": batch, "models": {}}
    method = times["Ours"]
    for name, seconds in times.items():
        ratios = [a / b for a, b in zip(seconds, method)]
        result["models"][name] = {
            "median_step_s": statistics.median(seconds), "ratio_to_ours": statistics.median(ratios),
            "parameters": count_parameters(models[name]), "paper_params_m": paper.get(name),
            "step_s": seconds}
    return result


def main(argv=None) -> None:
    args = parse_args(argv)
    if not escnn_available():
        sys.exit(INSTALL_HINT)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    repeats = args.repeats or (30 if device.type == "cuda" else 5)
    warmup = args.warmup or (5 if device.type == "cuda" else 1)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"device {device} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{repeats} rounds after {warmup} warm-up steps")
    results = [ddmnist_comparison(group, args.batch_size, device, repeats, warmup) for group in args.groups]
    if args.medmnist:
        results.append(medmnist_comparison(args.medmnist_batch_size, device, repeats, warmup))
    if not args.no_smoke:
        results.append(smoke_comparison(args.smoke_batch_size, args.smoke_resolution, device, repeats, warmup))
    print(f"{'experiment':<10} {'group':<5} {'model':<11} {'batch':>5} {'step (ms)':>10} "
          f"{'÷ ours':>7} {'params':>9} {'paper Par (M)':>13}")
    for r in results:
        for model, m in r["models"].items():
            paper = "–" if m["paper_params_m"] is None else f"{m['paper_params_m']:.2f}"
            print(f"{r['experiment']:<10} {r['group']:<5} {model:<11} {r['batch']:>5} "
                  f"{1000 * m['median_step_s']:>10.1f} {m['ratio_to_ours']:>7.2f} "
                  f"{m['parameters']:>9,} {paper:>13}")
    summary = ", ".join(f"{r['experiment']}/{r['group']} {model} ÷ ours {m['ratio_to_ours']:.2f}"
                        for r in results for model, m in r["models"].items() if model != "Ours")
    print(f"SUMMARY step time (median of per-round ratios, one run): {summary}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": str(device), "device_name": name,
                                         "platform": platform.platform(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
