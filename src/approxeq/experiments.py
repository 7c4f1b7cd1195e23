"""Experiments as configuration: each entry turns a dataset file and a config block into a model,
the trainer's TaskData and the test sets. Adding an experiment means adding a setup function here
(plus its data rule and network), not a new training loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from . import ddmnist
from .actions import trivial_action
from .evaluate import accuracy
from .loss import Action, LossWeights, method_objective
from .models import EncoderHead, build_model
from .representations import apply_matrices, latent_representation
from .train import TaskData


@dataclass
class ExperimentSetup:
    model: EncoderHead
    data: TaskData
    test_sets: dict[str, tuple[torch.Tensor, torch.Tensor]]  # name → (x, y) on the device
    test_metric: Callable[[EncoderHead, torch.Tensor, torch.Tensor], float]
    metric_name: str
    synthetic: bool  # the data derive from a synthetic stand-in, not the real data set
    input_action: Action
    latent_action: Action


def ddmnist_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: data (DDMNIST file), group (C4/D1/D4), network, weights (task, shift, equivariance)."""
    data_path, group, network = run["data"], run["group"], run["network"]
    splits, meta = ddmnist.load_ddmnist(data_path)
    if meta["group"] != group:
        raise ValueError(f"{data_path} holds DDMNIST for {meta['group']}, not {group}")
    canvas = ddmnist.Canvas(**meta["canvas"])
    product = ddmnist.product_group(group)
    input_action = ddmnist.pair_action(group, canvas).to(device)
    rep = latent_representation(product, network["latent_dim"]).to(device)

    def tensors(split: str, images: str = "images"):
        x = torch.from_numpy(splits[split][images]).unsqueeze(1).to(device)  # uint8 N×1×H×W
        return x, torch.from_numpy(splits[split]["labels"]).to(device)

    def prepare(x: torch.Tensor) -> torch.Tensor:
        return x.float().div_(255.0)

    def metric(model, x, y):
        return accuracy(model, x, y, prepare)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    x_train, y_train = tensors("train")
    x_val, y_val = tensors("val")
    model = build_model(network["name"], **{k: v for k, v in network.items() if k != "name"})
    objective = method_objective(LossWeights(**run["weights"]), F.cross_entropy, input_action,
                                 latent_action, trivial_action)
    data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                    group_order=product.order, objective=objective, val_metric=metric,
                    prepare=prepare, maximize=True)
    return ExperimentSetup(model=model.to(device), data=data,
                           test_sets={"test": tensors("test"), "test_clean": tensors("test", "clean")},
                           test_metric=metric, metric_name="accuracy",
                           synthetic=bool(meta.get("synthetic", False)),
                           input_action=input_action, latent_action=latent_action)


EXPERIMENTS: dict[str, Callable[..., ExperimentSetup]] = {"ddmnist": ddmnist_setup}


def setup_experiment(run: dict, device: torch.device) -> ExperimentSetup:
    """Build the experiment named by run["experiment"] from the run's settings (one dict, the
    same that the workflow writes into train.json)."""
    name = run["experiment"]
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name](run, device)
