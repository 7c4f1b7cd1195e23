"""MedMNIST3D (Section 6.2, Table 5): O ≅ S4 rotating 28³ volumes by exact voxel permutations;
Table 5, its details and its scorecard rows."""
from __future__ import annotations

import pandas as pd
import torch

from approxeq.algebra.symmetry import symmetry
from approxeq.data.medmnist3d import SIDE, load_medmnist
from approxeq.experiments.base import ExperimentSetup, model_network
from approxeq.experiments.classification import SPLIT_SEEDS, grid_setup
from approxeq.method.comparison import at_chance_count, comparison_row, not_run_note, params_m, stats
from approxeq.method.summary import CHANCE_MARK, mean_std, require_finite


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    folder = config["medmnist"]["dir"]
    return [f"{folder}/{experiment}.json"], folder  # the flag's record names the folder


def network_key(config: dict, model: str) -> tuple[str, str]:
    """(config key, network name) of a model: what the workflow checks is buildable before a job
    (the escnn baselines of Table 5)."""
    medmnist = config["medmnist"]
    return f"medmnist.models.{model}", model_network(medmnist, medmnist["models"][model])["name"]


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: experiment (the medmnist flag), data (folder of {flag}.npz), group (O), network,
    weights, eval_batch_size, rotated_test_seed, subset (None, or at most this many volumes per
    split, a seeded sample by data_seed).

    Test sets: the unrotated test split (the paper's number) and the same volumes each rotated by a
    seeded random element of O (identical for every model and seed). Extra metrics: AUC and
    accuracy by medmnist's Evaluator functions on both."""

    flag = run["experiment"]
    data = load_medmnist(run["data"], flag)
    info = data["info"]
    network = dict(run["network"], n_classes=info["n_classes"], n_channels=info["n_channels"])
    splits = {split: (data[split][0][:, None], data[split][1]) for split in SPLIT_SEEDS}  # (N, 1, 28³)

    def extra_metrics(x_test, x_rotated, y_test, prepare, eval_batch):
        def metrics_of(trained) -> dict:
            # medmnist's own metric functions (those its Evaluator calls), on our labels: a subset
            # of the test split has fewer labels than the Evaluator would read from the file
            from medmnist.evaluator import getACC, getAUC

            metrics = {}
            labels = y_test.cpu().numpy()
            for name, x in (("test", x_test), ("test_rotated", x_rotated)):
                was_training = trained.training
                trained.eval()
                with torch.no_grad():
                    scores = torch.cat([torch.softmax(trained(prepare(x[i:i + eval_batch])), 1)
                                        for i in range(0, len(x), eval_batch)]).cpu().double().numpy()
                trained.train(was_training)
                metrics[f"{name}_auc"] = float(getAUC(labels, scores, info["task"]))
                metrics[f"{name}_evaluator_accuracy"] = float(getACC(labels, scores, info["task"]))
            return metrics
        return metrics_of

    # O for Table 5; any subgroup of O by name
    return grid_setup(run, device, splits, symmetry(run["group"], "volume"), SIDE, network,
                      ("test_rotated", run["rotated_test_seed"]), data["synthetic"], info["n_classes"],
                      extra_metrics=extra_metrics)


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything a MedMNIST3D training job needs; the experiment is the medmnist flag."""
    medmnist = config["medmnist"]
    settings, training = medmnist["models"][model], medmnist["training"]
    return {
        "experiment": experiment,
        "group": medmnist["group"],
        "model": model,
        "seed": seed,
        "data": data,
        # a model's own `network` keys over the block's (Table 5's escnn baselines name theirs)
        "network": model_network(medmnist, settings),
        "lr": settings["lr"][experiment],
        "weights": {
            "task": settings["weights"]["task"],
            "shift": settings["weights"]["shift"],
            "equivariance": settings["weights"]["equivariance"][experiment],
        },
        "batch_size": training["batch_size"],
        "eval_batch_size": training["eval_batch_size"],
        "epochs": settings.get("epochs", training["epochs"]),
        "patience": training["patience"],
        "weight_decay": training["weight_decay"],
        "lr_decay": training["lr_decay"],
        "rotated_test_seed": medmnist["rotated_test_seed"],
        "subset": medmnist["subset"],
        "data_seed": medmnist["data_seed"],
        # the non-augmented CNN (aug "No") trains on the volumes as they are
        "augmentation": {"per_epoch": medmnist["augmentation"]["per_epoch"] and settings["aug"] == "Yes"},
        "deterministic": config["compute"]["deterministic"],
    }


# --- Table 5, its details and its scorecard rows ------------------------------------------------

def paper_table(runs: pd.DataFrame, paper: pd.DataFrame, flags: dict[str, str],
                   labels: dict[str, str]) -> pd.DataFrame:
    """Table 5: test accuracy (unrotated test set) per data set, mean (std) over seeds, for every
    model trained here beside the paper's row of the same model; the paper's other rows follow,
    labelled as imported. `flags` maps medmnist flag → column label (Nodule3D, ...)."""
    rows = []
    trained = set(runs["model"])
    for _, p in paper.iterrows():
        if p["model"] in trained:
            ours = runs[runs["model"] == p["model"]]
            row = {"Group": "O ≅ S4" if p["model"] == "ours" else p["group"],
                   "Model": labels.get(p["model"], p["label"]), "Aug": p["aug"], "Source": "this run",
                   "seeds": int(ours.groupby("experiment")["seed"].count().min())}
            for flag, column in flags.items():
                chosen = ours["experiment"] == flag
                values = ours.loc[chosen, "test_accuracy"]
                row[column] = mean_std(values.mean(), values.std(ddof=1), n=len(values))
                if "at_chance" in ours and ours.loc[chosen, "at_chance"].any():
                    row[column] += f" {CHANCE_MARK}"
            row["Par (M)"] = f"{ours['parameters'].max() / 1e6:.2f}"
            rows.append(row)
        row = {"Group": p["group"], "Model": p["label"], "Aug": p["aug"],
               "Source": "paper" if p["model"] in trained else "paper (imported)", "seeds": 5}
        for flag, column in flags.items():
            row[column] = mean_std(p[f"{flag}_mean"], p[f"{flag}_std"])
        row["Par (M)"] = f"{p['params_m']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def details_table(runs: pd.DataFrame, flags: dict[str, str], labels: dict[str, str],
                     augs: dict[str, str]) -> pd.DataFrame:
    """Per data set and model trained here: accuracy on the unrotated and the rotated test set,
    AUC (medmnist's Evaluator) on both, the latent's relative equivariance error and epochs,
    mean over seeds."""
    columns = {"test_accuracy": "acc", "test_rotated_accuracy": "acc (rotated)", "test_auc": "AUC",
               "test_rotated_auc": "AUC (rotated)",
               "latent_equivariance_relative": "latent equivariance (rel.)",
               "best_epoch": "best epoch", "epochs_run": "epochs run"}
    grouped = runs.groupby(["experiment", "model"], sort=False)[list(columns)].mean().reset_index()
    grouped["Data set"] = grouped["experiment"].map(flags)
    grouped["Model"] = grouped["model"].map(labels).fillna(grouped["model"])
    grouped["Aug"] = grouped["model"].map(augs).fillna("–")
    grouped["seeds"] = runs.groupby(["experiment", "model"], sort=False)["seed"].count().values
    order = {f: i for i, f in enumerate(flags)}
    grouped = grouped.sort_values(["experiment", "model"], key=lambda s: s.map(order) if s.name == "experiment"
                                  else s.map({m: i for i, m in enumerate(labels)}), ignore_index=True)
    table = grouped.rename(columns=columns)[["Data set", "Model", "Aug", "seeds", *columns.values()]]
    for column in ("acc", "acc (rotated)", "AUC", "AUC (rotated)", "latent equivariance (rel.)"):
        table[column] = table[column].map(lambda v: f"{v:.3f}")
    for column in ("best epoch", "epochs run"):
        table[column] = table[column].map(lambda v: f"{v:.1f}".removesuffix(".0"))
    return table


def scorecard_rows(runs: pd.DataFrame | None, paper: pd.DataFrame, flags: dict[str, str],
                  not_trained: dict[str, str] | None = None) -> list[dict]:
    """Table 5: test accuracy (unrotated test set) per (model, data set)."""
    if runs is not None and len(runs):
        require_finite(runs, ["test_accuracy"], "the scorecard (Table 5)")
    rows = []
    for _, p in paper.iterrows():
        group = "" if pd.isna(p["group"]) else str(p["group"])  # "N/A" reads as NaN
        label = p["label"] + (f" ({group})" if group not in ("", "N/A", "S4") else "") + \
            (" aug." if p["aug"] == "Yes" and p["model"] != "ours" else "")
        for flag, column in flags.items():
            ours = None if runs is None else runs[(runs["model"] == p["model"]) & (runs["experiment"] == flag)]
            found = ours is not None and len(ours) > 0
            rows.append(comparison_row(5, "MedMNIST3D", "test accuracy", p["model"], label, column,
                                       (p[f"{flag}_mean"], p[f"{flag}_std"], 5),
                                       stats(ours["test_accuracy"]) if found else None,
                                       found and bool(ours["synthetic"].any()),
                                       not_run_note(p["model"], found, not_trained),
                                       (p["params_m"], params_m(ours if found else None)),
                                       at_chance_count(ours if found else None)))
    return rows
