"""A finished run's validation metric with its BatchNorm running statistics as trained and
recalibrated (approxeq.method.batchnorm): how much of the number is the running statistics.

    python -m approxeq.report.batchnorm_check RUN_DIR [RUN_DIR ...] [--csv OUT.csv]

prints, for the run's best state (model.pt) and its last one (checkpoint.pt), the validation
metric and the test metric (the first test set: what Table 4 reports for the best state) as
trained and after recalibration. Reads the runs only; --csv also writes the rows to a file. The
run is rebuilt from its train.json with today's code (its data file must be where the run read it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
import torch

from approxeq.experiments import setup_experiment
from approxeq.method.batchnorm import recalibrate_batchnorm, training_batches
from approxeq.method.train import seed_everything
from approxeq.runtime.io import write_text_atomic


def check_run(run_dir: Path) -> list[dict]:
    """Validation and test metric of the best and the last state of a finished run, as trained
    and with recalibrated BatchNorm statistics."""
    run = json.loads((run_dir / "train.json").read_text())["run"]
    seed_everything(run["seed"])
    setup = setup_experiment(run, torch.device("cpu"))
    data, model = setup.data, setup.model
    test_name, (x_test, y_test) = next(iter(setup.test_sets.items()))
    states = {"best": torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True),
              "last": torch.load(run_dir / "checkpoint.pt", map_location="cpu", weights_only=True)["model"]}
    # one pass drawn once for both states (the same seeded poses and order either way)
    batches = list(training_batches(data, run["seed"], run["batch_size"]))
    rows = []
    for name, state in states.items():
        model.load_state_dict(state)
        model.eval()
        row = {"run": str(run_dir), "state": name, "test_set": test_name,
               "val_as_trained": data.val_metric(model, data.x_val, data.y_val),
               "test_as_trained": setup.test_metric(model, x_test, y_test)}
        recalibrate_batchnorm(model, batches)
        row.update(val_recalibrated=data.val_metric(model, data.x_val, data.y_val),
                   test_recalibrated=setup.test_metric(model, x_test, y_test))
        rows.append(row)
    return rows


def main(argv=None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--csv", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    rows = [row for run_dir in args.runs for row in check_run(run_dir)]
    if args.csv is not None:
        write_text_atomic(args.csv, pd.DataFrame(rows).to_csv(index=False))
    for row in rows:
        for split, key in (("val", "val"), (row["test_set"], "test")):
            before, after = row[f"{key}_as_trained"], row[f"{key}_recalibrated"]
            print(f"{row['run']}  {row['state']:<4}  {split:<5} {before:.4f} as trained, "
                  f"{after:.4f} with recalibrated BatchNorm ({after - before:+.4f})")
    return rows


if __name__ == "__main__":
    main()
