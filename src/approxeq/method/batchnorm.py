"""How much of a run's validation accuracy is its BatchNorm running statistics.

Why: at paper scale the DDMNIST validation accuracy swings by up to 0.4 from one epoch to the next
(docs/ddmnist-protocol.md), and early stopping with patience 20 reads that curve. A network's
BatchNorm layers evaluate with running statistics, an exponential average (momentum 0.1) of the
last few training batches' statistics, taken while Adam moved the weights under them.
Recalibrating them, one pass over the training data with the weights fixed and every batch
weighted alike, measures the weights alone. The gap between the two is the share of the running
statistics, luck included, in a validation number.

    python -m approxeq.method.batchnorm RUN_DIR [RUN_DIR ...]

prints, for the run's best state (model.pt) and its last one (checkpoint.pt), the validation
metric as trained and after recalibration. Reads only; writes nothing.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches) -> nn.Module:
    """Replace every BatchNorm layer's running mean and variance by the plain average of its batch
    statistics over `batches` (iterable of inputs; the weights are not changed). The model is
    left in eval mode with the layers' momenta as they were."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average: every batch weighs the same
    model.train()
    for x in batches:
        model(x)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return model.eval()


def training_batches(data, seed: int, batch_size: int):
    """One pass over the training data as an epoch draws it (a fresh pose per pair where the
    experiment augments per epoch), full batches only, prepared as training prepares them."""
    n = len(data.x_train)
    generator = torch.Generator().manual_seed(seed)
    elements = torch.randint(data.group_order, (n,), generator=generator)
    x = data.epoch_views(generator, elements).x if data.epoch_views is not None else data.x_train
    for start in range(0, n - batch_size + 1, batch_size):
        yield data.prepare(x[start:start + batch_size])


def check_run(run_dir: Path) -> list[dict]:
    """Validation metric of the best and the last state of a finished run, as trained and with
    recalibrated BatchNorm statistics."""
    from approxeq.experiments import setup_experiment
    from approxeq.method.train import seed_everything

    run = json.loads((run_dir / "train.json").read_text())["run"]
    seed_everything(run["seed"])
    setup = setup_experiment(run, torch.device("cpu"))
    data, model = setup.data, setup.model
    states = {"best": torch.load(run_dir / "model.pt", map_location="cpu", weights_only=False),
              "last": torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=False)["model"]}
    rows = []
    for name, state in states.items():
        model.load_state_dict(state)
        model.eval()
        as_trained = data.val_metric(model, data.x_val, data.y_val)
        recalibrate_batchnorm(model, training_batches(data, run["seed"], run["batch_size"]))
        rows.append({"run": str(run_dir), "state": name, "val_as_trained": as_trained,
                     "val_recalibrated": data.val_metric(model, data.x_val, data.y_val)})
    return rows


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args(argv)
    rows = [row for run_dir in args.runs for row in check_run(run_dir)]
    for row in rows:
        print(f"{row['run']}  {row['state']:<4}  val {row['val_as_trained']:.4f} as trained, "
              f"{row['val_recalibrated']:.4f} with recalibrated BatchNorm "
              f"({row['val_recalibrated'] - row['val_as_trained']:+.4f})")
    return rows


if __name__ == "__main__":
    main()
