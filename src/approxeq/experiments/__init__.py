"""Experiments as configuration: one module per experiment turns a data set and a config block into a
model, the trainer's TaskData and the test sets (its `setup(run, device)`), registered here by one line.
"""
from __future__ import annotations

from typing import Callable

import torch

from approxeq.data.medmnist3d import FLAGS as MEDMNIST_FLAGS
from approxeq.experiments import cifar10, ddmnist, medmnist, mnist_d3, smoke, tmnist
from approxeq.experiments.base import ExperimentSetup, evaluate_experiment

__all__ = ["EXPERIMENTS", "ExperimentSetup", "evaluate_experiment", "setup_experiment"]

EXPERIMENTS: dict[str, Callable[[dict, torch.device], ExperimentSetup]] = {
    "ddmnist": ddmnist.setup,
    "tmnist": tmnist.setup,
    "mnist_d3": mnist_d3.setup,
    "cifar10": cifar10.setup,
    "smoke": smoke.setup,
    **{flag: medmnist.setup for flag in MEDMNIST_FLAGS},
}


def setup_experiment(run: dict, device: torch.device) -> ExperimentSetup:
    """Build the experiment named by run["experiment"] from the run's settings (one dict, the
    same that the workflow writes into train.json)."""
    name = run["experiment"]
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name](run, device)
