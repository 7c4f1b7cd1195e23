"""Your own data and group, by configuration: image (2D) or volume (3D) classification.

A `classification.datasets.<name>` entry points at an npz in medmnist's layout
(data/classification.py) and names a group that acts exactly on its grid (algebra/symmetry.py: a
subgroup of D4 on square images, of O on cubic volumes). Every configured model (by default a CNN,
the CNN trained on G-augmented data and ours) is trained per seed with the method's one loss; the
test metrics are accuracy on the test split as stored and on the same samples each moved by a
seeded random element of G (identical for every model and seed), and the latent equivariance error;
`results_table` is their table.
"""
from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.algebra.symmetry import Symmetry, symmetry
from approxeq.data.classification import load_classification, stratified_sample
from approxeq.experiments.base import (
    ExperimentSetup,
    augments_per_epoch,
    group_element_views,
)
from approxeq.method.evaluate import accuracy
from approxeq.method.loss import LossWeights, method_objective
from approxeq.method.summary import CHANCE_MARK, mean_std
from approxeq.method.train import TaskData
from approxeq.nn.registry import build_model

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    record = record_file(config, experiment)
    return [record], record


def record_file(config: dict, name: str) -> str:
    """Where check_classification_data writes the record of data set `name` (what its runs read)."""
    return f"{config['results']}/data/classification/{name}.json"


def dataset_network(block: dict, dataset: dict) -> dict:
    """A data set's network: the block's network for its domain with the data set's own keys on top."""
    return {**block["networks"][dataset["domain"]], **dataset.get("network", {})}


def model_weights(block: dict, dataset: dict, model: str) -> dict:
    """A model's loss weights; a data set's `equivariance` (λ) replaces the model's where the model
    uses the latent term (λ > 0), so one data set can be tuned without touching the others."""
    weights = dict(block["models"][model]["weights"])
    if weights["equivariance"] > 0 and "equivariance" in dataset:
        weights["equivariance"] = dataset["equivariance"]
    return weights


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything a classification job needs; the experiment is the data set's name and `data`
    the record that check_classification_data wrote for its npz."""
    block = config["classification"]
    dataset, settings, training = block["datasets"][experiment], block["models"][model], block["training"]
    return {
        "experiment": experiment,
        "kind": "classification",
        "group": dataset["group"],
        "domain": dataset["domain"],
        "model": model,
        "seed": seed,
        "data": data,
        "network": dataset_network(block, dataset),
        "penalty": block["penalty"],
        "lr": dataset.get("lr", settings["lr"]),
        "weights": model_weights(block, dataset, model),
        "batch_size": training["batch_size"],
        "eval_batch_size": training["eval_batch_size"],
        "epochs": training["epochs"],
        "patience": training["patience"],
        "weight_decay": training["weight_decay"],
        "lr_decay": training["lr_decay"],
        "transformed_test_seed": block["transformed_test_seed"],
        "subset": block["subset"],
        "data_seed": block["data_seed"],
        # models with aug "No" (the plain CNN) train on the samples as stored
        "augmentation": {"per_epoch": block["augmentation"]["per_epoch"] and settings["aug"] == "Yes"},
        "deterministic": config["compute"]["deterministic"],
    }


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """The group read once (name and domain), acting on the data's grid; test sets "test" (as
    stored) and "test_transformed" (each sample moved by a seeded element of G)."""
    data = load_classification(run["data"])
    record = data["record"]
    if record["domain"] != run["domain"]:
        raise ValueError(f"{record['file']} holds {record['domain']}s, but its data set is configured "
                         f"with domain {run['domain']!r} (classification.datasets.{run['experiment']}.domain)")
    network = dict(run["network"], n_classes=record["n_classes"], n_channels=record["channels"])
    return grid_setup(run, device, {split: data[split] for split in SPLIT_SEEDS},
                      symmetry(run["group"], run["domain"]), record["side"], network,
                      ("test_transformed", run["transformed_test_seed"]), record["synthetic"],
                      record["n_classes"], penalty=run["penalty"])


def grid_setup(run: dict, device: torch.device, splits: dict, acting: Symmetry, side: int, network: dict,
               transformed: tuple[str, int], synthetic: bool, n_classes: int, penalty: str = "mse",
               extra_metrics: Callable | None = None) -> ExperimentSetup:
    """What classification on a grid shares (the user's data sets here, MedMNIST3D): `splits` maps
    train/val/test to (images with a channel axis, labels) arrays, at most run["subset"][split] of
    them kept (a seeded stratified sample); `acting` moves them on their grid of `side`. Test sets:
    "test" and `transformed` = (its name, the seed of one element per sample). `extra_metrics`:
    (x_test, x_moved, y_test, prepare, eval_batch) → the trained model's extra metrics."""
    group = acting.group
    input_action = acting.action(side).to(device)
    rep = latent_representation(group, network["latent_dim"]).to(device)
    eval_batch = run["eval_batch_size"]
    subset = run.get("subset") or {}

    def tensors(split: str):
        images, labels = splits[split]
        if split in subset and subset[split] < len(labels):  # quick runs on real data
            keep = stratified_sample(labels, subset[split], [run["data_seed"], SPLIT_SEEDS[split]])
            images, labels = images[keep], labels[keep]
        return torch.from_numpy(images).to(device), torch.from_numpy(labels).to(device)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:  # medmnist's (x/255 − 0.5)/0.5
            return x.float().div_(255.0).sub_(0.5).div_(0.5)
        return x.float()

    def metric(model, x, y):
        return accuracy(model, x, y, prepare, eval_batch)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    x_test, y_test = tensors("test")
    name, seed = transformed
    moved = torch.randint(group.order, (len(x_test),), generator=torch.Generator().manual_seed(seed))
    x_moved = input_action(x_test, moved.to(device))

    network = dict(network)
    model = build_model(network.pop("name"), **network).to(device)
    objective = method_objective(LossWeights(**run["weights"]), F.cross_entropy, input_action,
                                 latent_action, trivial_action, penalty=penalty)
    (x_train, y_train), (x_val, y_val) = tensors("train"), tensors("val")
    # per epoch (models marked augmented): every training sample moved by a fresh element of G
    # (the authors' x1 = g1·x); the objective's shifted term then sees g·x1, their x2
    task_data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                         group_order=group.order, objective=objective, val_metric=metric,
                         prepare=prepare, maximize=True,
                         epoch_views=(group_element_views(x_train, group.order, input_action)
                                      if augments_per_epoch(run) else None))
    return ExperimentSetup(model=model, data=task_data,
                           test_sets={"test": (x_test, y_test), name: (x_moved, y_test)},
                           test_metric=metric, metric_name="accuracy", synthetic=synthetic,
                           input_action=input_action, latent_action=latent_action,
                           extra_metrics=(extra_metrics(x_test, x_moved, y_test, prepare, eval_batch)
                                          if extra_metrics else None),
                           n_classes=n_classes)


def results_table(runs: pd.DataFrame, datasets: dict[str, dict], models: dict[str, dict]) -> pd.DataFrame:
    """Your own data sets (classification.datasets): per data set and model, accuracy on the test
    split as stored and on the same samples each moved by a seeded element of G, mean (std) over
    seeds, and the latent's relative equivariance error (mean). No paper column: these are yours."""
    rows = []
    for name, dataset in datasets.items():
        for model, settings in models.items():
            chosen = runs[(runs["experiment"] == name) & (runs["model"] == model)]
            if chosen.empty:
                continue
            row = {"Data set": dataset["label"], "Group": f"{dataset['group']} ({dataset['domain']}s)",
                   "Model": settings["label"], "Aug": settings["aug"], "seeds": len(chosen)}
            for column, metric in (("Test acc.", "test_accuracy"),
                                   ("Transformed test acc.", "test_transformed_accuracy")):
                values = chosen[metric]
                row[column] = mean_std(values.mean(), values.std(ddof=1), n=len(values))
                if metric == "test_accuracy" and chosen["at_chance"].any():
                    row[column] += f" {CHANCE_MARK}"
            row["Latent equivariance (rel.)"] = f"{chosen['latent_equivariance_relative'].mean():.3f}"
            row["Par (M)"] = f"{chosen['parameters'].max() / 1e6:.2f}"
            rows.append(row)
    columns = ["Data set", "Group", "Model", "Aug", "seeds", "Test acc.", "Transformed test acc.",
               "Latent equivariance (rel.)", "Par (M)"]
    return pd.DataFrame(rows, columns=columns)
