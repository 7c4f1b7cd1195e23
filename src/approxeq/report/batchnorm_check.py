"""A finished run's validation metric with its BatchNorm running statistics as trained and
recalibrated (approxeq.method.batchnorm): how much of the number is the running statistics.

    python -m approxeq.report.batchnorm_check RUN_DIR [RUN_DIR ...]

prints, for the run's best state (model.pt) and its last one (checkpoint.pt), the validation
metric as trained and after recalibration. Reads only; writes nothing. The run is rebuilt from
its train.json with today's code (its data file must be where the run read it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from approxeq.experiments import setup_experiment
from approxeq.method.batchnorm import recalibrate_batchnorm, training_batches
from approxeq.method.train import seed_everything


def check_run(run_dir: Path) -> list[dict]:
    """Validation metric of the best and the last state of a finished run, as trained and with
    recalibrated BatchNorm statistics."""
    run = json.loads((run_dir / "train.json").read_text())["run"]
    seed_everything(run["seed"])
    setup = setup_experiment(run, torch.device("cpu"))
    data, model = setup.data, setup.model
    states = {"best": torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True),
              "last": torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]}
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
