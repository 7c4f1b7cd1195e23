"""What the three exploratory experiments of Section 4 share: the network with learnable W_s per
generator, the Section 4 loss and its metrics (learned_setup), and the autoencoders' task loss."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from approxeq.algebra.representations import apply_matrices
from approxeq.experiments.base import ExperimentSetup
from approxeq.method.comparison import comparison_row, stats
from approxeq.method.loss import Action, LossWeights
from approxeq.method.summary import check_metric_ranges, require_finite
from approxeq.method.train import TaskData
from approxeq.nn.registry import build_model


def learned_setup(run: dict, device: torch.device, splits: dict, input_action: Action,
                  output_action: Action, task_loss: Callable, metric: Callable, metric_name: str,
                  maximize: bool, synthetic: bool, n_classes: int | None = None,
                  epoch_views: Callable | None = None) -> ExperimentSetup:
    """Shared by the three exploratory experiments: network + learnable W_s + the Section 4 loss.

    `splits` maps train/val/test to (x, y) float tensors already on the device; `epoch_views`
    (TaskData's) gives fresh training views every epoch, None trains on splits["train"]."""
    from approxeq.algebra.groups import group_from_name
    from approxeq.algebra.rotations import homomorphism_error
    from approxeq.method.learned import (
        LearnedRepresentation,
        eigenvalue_record,
        learned_metrics,
        learned_objective,
    )

    group = group_from_name(run["group"])
    network = run["network"]
    model = build_model(network["name"], **{k: v for k, v in network.items() if k != "name"})
    model.representation = LearnedRepresentation(
        group, model.latent_dim, run["init"], torch.Generator().manual_seed(run["seed"]))
    model = model.to(device)
    objective = learned_objective(LossWeights(**run["weights"]), task_loss, input_action,
                                  output_action)

    def latent_action(z, g):
        return apply_matrices(model.representation.element_matrices(), g, z)

    def extra_metrics(trained) -> dict:
        x, y = splits["test"]
        metrics = {f"test_{k}": v for k, v in learned_metrics(
            trained, x, y, group.order, task_loss, input_action, output_action, lambda t: t,
            seed=run["seed"]).items()}
        # how far the input action itself is from a homomorphism (0 for exact permutations,
        # nonzero for the interpolated 120° rotation of D3)
        defect = homomorphism_error(input_action, group, x[:256])
        metrics.update(input_action_homomorphism_error_mean=defect["mean"],
                       input_action_homomorphism_error_max=defect["max"])
        return metrics

    (x_train, y_train), (x_val, y_val) = splits["train"], splits["val"]
    data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                    group_order=group.order, objective=objective, val_metric=metric,
                    maximize=maximize, epoch_metrics=eigenvalue_record, epoch_views=epoch_views)
    return ExperimentSetup(model=model, data=data, test_sets={"test": splits["test"]},
                           test_metric=metric, metric_name=metric_name, synthetic=synthetic,
                           input_action=input_action, latent_action=latent_action,
                           output_action=output_action, task_loss=task_loss,
                           extra_metrics=extra_metrics, n_classes=n_classes)


def reconstruction_error(model, x, y, batch_size: int = 1000) -> float:
    """Mean squared reconstruction error of an autoencoder (y: target images, first channel)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        total = sum(F.mse_loss(model(x[i:i + batch_size]), y[i:i + batch_size, :1], reduction="sum").item()
                    for i in range(0, len(x), batch_size))
    model.train(was_training)
    return total / y[:, :1].numel()


def image_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Autoencoder task loss: MSE against the target's first channel (its own image)."""
    return F.mse_loss(output, target[:, :1])


LEARNED = "learned"  # the model name of exploratory runs (the representation is learned)


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything a training job of an exploratory experiment (Section 4) needs."""
    e = config["exploratory"]["experiments"][experiment]
    return {
        "experiment": experiment,
        "group": e["group"],
        "model": LEARNED,
        "seed": seed,
        "data": data,
        "network": dict(e["network"]),
        "weights": dict(e["weights"]),
        "init": e["init"],
        "sizes": dict(e.get("sizes", {})),
        "data_seed": e["data_seed"],
        "augmentation": dict(e["augmentation"]),
        "rotation_degrees": e.get("rotation_degrees"),
        "lr": e["training"]["lr"],
        "batch_size": e["training"]["batch_size"],
        "epochs": e["training"]["epochs"],
        "patience": e["training"]["patience"],
        "weight_decay": e["training"]["weight_decay"],
        "deterministic": config["compute"]["deterministic"],
    }


# --- Tables 1-3 and their scorecard rows ---------------------------------------------------------

@dataclass(frozen=True)
class PaperTable:
    """Which of the paper's Tables 1-3 an exploratory experiment reproduces: its number, section and
    title, and the paper's count columns → (our column, label): snapped eigenvalues for the cyclic
    groups (Tables 1 and 3), real multiplicities for D3 (Table 2)."""
    number: int
    section: str
    title: str
    columns: dict[str, tuple[str, str]] = field(default_factory=dict)
    note: str = ""  # said on every scorecard row of the table


def results_table(metrics: list[dict], decompositions: list[dict], paper: pd.DataFrame) -> pd.DataFrame:
    """Tables 1-3: one row per run with its irreducible counts, how far they are from integers,
    the algebra loss and the equivariance losses, then mean and std rows; the paper's counts of
    the run with the same number beside (the paper's runs are not seeded like ours)."""
    for m in metrics:
        task = "test_accuracy" if "test_accuracy" in m else "test_reconstruction_mse"
        require_finite([m], ["test_algebra", "test_equivariance_in", "test_equivariance_out",
                             "input_action_homomorphism_error_max", task], "an exploratory table")
        check_metric_ranges(m, "an exploratory table")
    rows = []
    for run, (m, d) in enumerate(sorted(zip(metrics, decompositions), key=lambda p: p[0]["seed"]), 1):
        row = {"run": str(run), "seed": m["seed"]}
        snapping = d.get("eigenvalue_snapping")
        if snapping:  # cyclic groups: counts of snapped eigenvalues, as the paper
            row.update({f"eig {k}": snapping["counts_by_label"][k] for k in snapping["labels"]})
            row["max eigenvalue distance"] = snapping["max_distance"]
        row.update({f"m({k})": d["real_multiplicities"][k] for k in d["real_labels"]})
        row["distance to integers"] = d["real_distance_to_integers"]
        row["homomorphism error"] = d["homomorphism_error"]
        row["homomorphism error at init"] = d["initial"]["homomorphism_error"]
        row["algebra loss"] = m["test_algebra"]
        row["equivariance loss (X→Z)"] = m["test_equivariance_in"]
        row["equivariance loss (Z→Y)"] = m["test_equivariance_out"]
        row["input action homomorphism error"] = m["input_action_homomorphism_error_max"]
        task = "test_accuracy" if "test_accuracy" in m else "test_reconstruction_mse"
        row[task.replace("test_", "test ")] = m[task]
        row["synthetic"] = bool(m.get("synthetic", False))
        paper_row = paper[paper["run"] == run]
        for column in paper.columns.drop("run"):
            row[f"paper {column}"] = paper_row[column].iloc[0] if len(paper_row) else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    numeric = table.select_dtypes("number").columns.drop("seed")
    summary = [dict({"run": stat}, **getattr(table[numeric], stat)().to_dict()) for stat in ("mean", "std")]
    table = pd.concat([table, pd.DataFrame(summary)], ignore_index=True)
    table.loc[table["run"].isin(["mean", "std"]), "synthetic"] = table["synthetic"].iloc[: len(rows)].any()
    return table


def scorecard_rows(paper_table: PaperTable, table: pd.DataFrame | None, paper: pd.DataFrame) -> list[dict]:
    """Per irreducible, mean (std) over runs of its count, ours beside the paper's. `table`: our
    table{number}.csv (one row per run, then "mean" and "std" rows), None when the experiment was
    not run. The paper's runs are unseeded, so the mean over runs is compared (the report says so)."""
    runs = None if table is None else table[~table["run"].astype(str).isin(["mean", "std"])]
    rows = []
    for paper_column, (ours_column, label) in paper_table.columns.items():
        found = runs is not None and len(runs) > 0 and ours_column in runs
        rows.append(comparison_row(paper_table.number, paper_table.section, "irreducible count", "ours", "Ours",
                                   label, stats(paper[paper_column]),
                                   stats(runs[ours_column]) if found else None,
                                   found and bool(runs["synthetic"].astype(str).str.lower().eq("true").any()),
                                   paper_table.note))
    return rows
