"""Checks of the configuration that a JSON schema cannot express, run by the Snakefile right after
schema validation, so a bad value stops the workflow before any job starts."""
from __future__ import annotations

from .groups import group_from_name
from .ddmnist import product_group
from .rotations import d3_image_action


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key."""


def check_config(config: dict) -> None:
    ddm = config["ddmnist"]
    for model, settings in ddm["models"].items():
        for key in ("lr", "lambda"):
            missing = [g for g in ddm["groups"] if g not in settings[key]]
            if missing:
                raise ConfigError(f"ddmnist.models.{model}.{key} has no value for group(s) {missing}")
        for group, lr in settings["lr"].items():
            if lr <= 0:
                raise ConfigError(f"ddmnist.models.{model}.lr.{group} must be > 0, got {lr}")
        for group in ddm["groups"]:
            if settings["lambda"][group] > 0:
                order = product_group(group).order
                d = ddm["network"]["latent_dim"]
                if d < order:
                    raise ConfigError(
                        f"ddmnist.network.latent_dim = {d} is smaller than |{group}x{group}| = {order}; "
                        f"ddmnist.models.{model}.lambda.{group} > 0 needs d >= |G|")
    for name, experiment in config["exploratory"]["experiments"].items():
        key = f"exploratory.experiments.{name}"
        try:
            group = group_from_name(experiment["group"])
        except ValueError as error:
            raise ConfigError(f"{key}.group: {error}") from None
        if group.name in ("D3", "S3"):
            try:
                d3_image_action(experiment.get("rotation_degrees", 120.0))
            except ValueError as error:
                raise ConfigError(f"{key}.rotation_degrees: {error}") from None
    missing = [g for g in ddm["groups"] if g not in ddm["artefacts"]]
    if missing:
        raise ConfigError(f"ddmnist.artefacts has no true/false entry for group(s) {missing}")
    for group in ddm["groups"]:
        group_from_name(group)
