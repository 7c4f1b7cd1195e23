"""MedMNIST3D (Section 6.2, Table 5): O ≅ S4 rotating 28³ volumes by exact voxel permutations."""
from __future__ import annotations

import torch

from approxeq.algebra.symmetry import symmetry
from approxeq.data.medmnist3d import SIDE, load_medmnist
from approxeq.experiments.base import ExperimentSetup, model_network
from approxeq.experiments.classification import SPLIT_SEEDS, grid_setup


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
