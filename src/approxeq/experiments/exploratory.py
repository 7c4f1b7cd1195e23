"""What the three exploratory experiments of Section 4 share: the network with learnable W_s per
generator, the Section 4 loss and its metrics (learned_setup), and the autoencoders' task loss."""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from approxeq.algebra.representations import apply_matrices
from approxeq.experiments.base import ExperimentSetup
from approxeq.method.loss import Action, LossWeights
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
