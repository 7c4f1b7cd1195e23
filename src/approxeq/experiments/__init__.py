"""Experiments as configuration: one module per experiment turns its config block into the settings of
each training run (`run_settings`) and a run's settings into a model, the trainer's TaskData and the
test sets (`setup`); each is registered here by one line.
"""
from __future__ import annotations

from types import ModuleType

import torch

from approxeq.data.medmnist3d import FLAGS as MEDMNIST_FLAGS
from approxeq.experiments import cifar10, ddmnist, medmnist, mnist_d3, smoke, tmnist
from approxeq.experiments.base import ExperimentSetup, evaluate_experiment

__all__ = ["EXPERIMENTS", "ExperimentSetup", "evaluate_experiment", "run_settings", "setup_experiment"]

# experiment name (the `experiment` wildcard of a run) → its module
EXPERIMENTS: dict[str, ModuleType] = {
    "ddmnist": ddmnist,
    "tmnist": tmnist,
    "mnist_d3": mnist_d3,
    "cifar10": cifar10,
    "smoke": smoke,
    **{flag: medmnist for flag in MEDMNIST_FLAGS},
}


def experiment_module(name: str) -> ModuleType:
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name]


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything the training job of (experiment, group, model, seed) needs, from the validated
    configuration, as one dict (the workflow passes it to the job and writes it into train.json);
    `data` is the file or folder the run reads."""
    return experiment_module(experiment).run_settings(config, experiment, group, model, int(seed), data)


def setup_experiment(run: dict, device: torch.device) -> ExperimentSetup:
    """Build the experiment named by run["experiment"] from the run's settings (one dict, the
    same that the workflow writes into train.json)."""
    return experiment_module(run["experiment"]).setup(run, device)
