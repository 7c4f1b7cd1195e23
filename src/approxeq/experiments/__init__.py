"""Experiments as configuration: one module per experiment turns its config block into the settings of
each training run (`run_settings`) and a run's settings into a model, the trainer's TaskData and the
test sets (`setup`); each is registered here by one line.

A user's own data sets (`classification.datasets.<name>`) are experiments of one kind, run by the
`classification` module under their own names.
"""
from __future__ import annotations

from types import ModuleType

import torch

from approxeq.data.medmnist3d import FLAGS as MEDMNIST_FLAGS
from approxeq.experiments import cifar10, classification, ddmnist, medmnist, mnist_d3, smoke, tmnist
from approxeq.experiments.base import ExperimentSetup, evaluate_experiment

__all__ = ["EXPERIMENTS", "EXPLORATORY_TABLES", "KINDS", "ExperimentSetup", "evaluate_experiment", "run_data",
           "run_network",            "run_settings", "setup_experiment"]

# experiment name (the `experiment` wildcard of a run) → its module
EXPERIMENTS: dict[str, ModuleType] = {
    "ddmnist": ddmnist,
    "tmnist": tmnist,
    "mnist_d3": mnist_d3,
    "cifar10": cifar10,
    "smoke": smoke,
    **{flag: medmnist for flag in MEDMNIST_FLAGS},
}


# the experiments of the paper's Tables 1-3 (each module's PAPER_TABLE says which)
EXPLORATORY_TABLES: dict[str, ModuleType] = {"tmnist": tmnist, "mnist_d3": mnist_d3, "cifar10": cifar10}


# experiment kinds whose experiments are named by the configuration (a run's settings say "kind")
KINDS: dict[str, ModuleType] = {
    "classification": classification,
}


def experiment_module(name: str, config: dict | None = None) -> ModuleType:
    """The module of experiment `name`: a registered experiment, or (with the configuration) one
    of the user's classification data sets."""
    if name in EXPERIMENTS:
        return EXPERIMENTS[name]
    if config is not None and name in config.get("classification", {}).get("datasets", {}):
        return classification
    raise KeyError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)} and the data sets of "
                   "classification.datasets")


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything the training job of (experiment, group, model, seed) needs, from the validated
    configuration, as one dict (the workflow passes it to the job and writes it into train.json);
    `data` is the file or folder the run reads."""
    return experiment_module(experiment, config).run_settings(config, experiment, group, model, int(seed), data)


def run_data(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before the run of (experiment, group, seed) starts, the file or
    folder the run reads): each experiment module's `data_files`."""
    return experiment_module(experiment, config).data_files(config, experiment, group, int(seed))


def run_network(config: dict, experiment: str, model: str) -> tuple[str, str] | None:
    """(config key, network name) of a run's model where its experiment offers networks that need
    an optional package (the escnn baselines), else None."""
    module = experiment_module(experiment, config)
    return module.network_key(config, model) if hasattr(module, "network_key") else None


def setup_experiment(run: dict, device: torch.device) -> ExperimentSetup:
    """Build the experiment named by run["experiment"] from the run's settings (one dict, the
    same that the workflow writes into train.json)."""
    if "kind" in run:
        return KINDS[run["kind"]].setup(run, device)
    return experiment_module(run["experiment"]).setup(run, device)
