"""MedMNIST3D (Section 6.2, Table 5): O ≅ S4 rotating 28³ volumes by exact voxel permutations."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.algebra.symmetry import symmetry
from approxeq.data.classification import stratified_sample
from approxeq.data.medmnist3d import SIDE, load_medmnist
from approxeq.experiments.base import (
    ExperimentSetup,
    augments_per_epoch,
    group_element_views,
    model_network,
)
from approxeq.method.evaluate import accuracy
from approxeq.method.loss import LossWeights, method_objective
from approxeq.method.train import TaskData
from approxeq.nn.registry import build_model

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


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
    acting = symmetry(run["group"], "volume")  # O for Table 5; any subgroup of O by name
    group = acting.group
    input_action = acting.action(SIDE).to(device)
    network = dict(run["network"], n_classes=info["n_classes"], n_channels=info["n_channels"])
    rep = latent_representation(group, network["latent_dim"]).to(device)
    eval_batch = run["eval_batch_size"]

    subset = run.get("subset") or {}

    def tensors(split: str):
        images, labels = data[split]
        if split in subset and subset[split] < len(labels):  # quick runs on real data
            keep = stratified_sample(labels, subset[split], [run["data_seed"], SPLIT_SEEDS[split]])
            images, labels = images[keep], labels[keep]
        return torch.from_numpy(images).unsqueeze(1).to(device), torch.from_numpy(labels).to(device)

    def prepare(x: torch.Tensor) -> torch.Tensor:  # protocols.md: (x/255 − 0.5)/0.5
        return x.float().div_(255.0).sub_(0.5).div_(0.5)

    def metric(model, x, y):
        return accuracy(model, x, y, prepare, eval_batch)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    x_test, y_test = tensors("test")
    rotation = torch.randint(group.order, (len(x_test),),
                             generator=torch.Generator().manual_seed(run["rotated_test_seed"]))
    x_test_rotated = input_action(x_test, rotation.to(device))

    model = build_model(network.pop("name"), **network).to(device)
    objective = method_objective(LossWeights(**run["weights"]), F.cross_entropy, input_action,
                                 latent_action, trivial_action)
    (x_train, y_train), (x_val, y_val) = tensors("train"), tensors("val")
    # per epoch: every training volume rotated by a fresh element of O (the authors' x1 = g1·x);
    # the objective's shifted term then sees g·x1, their x2
    task_data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                         group_order=group.order, objective=objective, val_metric=metric,
                         prepare=prepare, maximize=True,
                         epoch_views=(group_element_views(x_train, group.order, input_action)
                                      if augments_per_epoch(run) else None))

    def extra_metrics(trained) -> dict:
        # medmnist's own metric functions (those its Evaluator calls), on our labels: a subset of
        # the test split has fewer labels than the Evaluator would read from the file
        from medmnist.evaluator import getACC, getAUC

        metrics = {}
        labels = y_test.cpu().numpy()
        for name, x in (("test", x_test), ("test_rotated", x_test_rotated)):
            was_training = trained.training
            trained.eval()
            with torch.no_grad():
                scores = torch.cat([torch.softmax(trained(prepare(x[i:i + eval_batch])), 1)
                                    for i in range(0, len(x), eval_batch)]).cpu().double().numpy()
            trained.train(was_training)
            metrics[f"{name}_auc"] = float(getAUC(labels, scores, info["task"]))
            metrics[f"{name}_evaluator_accuracy"] = float(getACC(labels, scores, info["task"]))
        return metrics

    return ExperimentSetup(model=model, data=task_data,
                           test_sets={"test": (x_test, y_test), "test_rotated": (x_test_rotated, y_test)},
                           test_metric=metric, metric_name="accuracy", synthetic=data["synthetic"],
                           input_action=input_action, latent_action=latent_action,
                           extra_metrics=extra_metrics, n_classes=info["n_classes"])


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
