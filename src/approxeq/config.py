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
    check_latent_study(ddm)
    check_smoke(config["smoke"])
    missing = [g for g in ddm["groups"] if g not in ddm["artefacts"]]
    if missing:
        raise ConfigError(f"ddmnist.artefacts has no true/false entry for group(s) {missing}")
    for group in ddm["groups"]:
        group_from_name(group)


def check_latent_study(ddm: dict) -> None:
    """The study's model and baseline must be configured DDMNIST models, its groups built DDMNIST
    groups, the model's λ > 0 there (else every penalty form is the CNN), and no variant name may
    shadow a configured model."""
    from .latent_study import study_variants

    study = ddm.get("latent_study")
    if not study:
        return
    for key in ("model", "baseline"):
        if study[key] not in ddm["models"]:
            raise ConfigError(f"ddmnist.latent_study.{key} = {study[key]!r} is not in ddmnist.models "
                              f"{sorted(ddm['models'])}")
    missing = [g for g in study["groups"] if g not in ddm["groups"]]
    if missing:
        raise ConfigError(f"ddmnist.latent_study.groups {missing} are not in ddmnist.groups {ddm['groups']}")
    model = ddm["models"][study["model"]]
    for group in study["groups"]:
        if not model["lambda"][group] > 0:
            raise ConfigError(f"ddmnist.latent_study.model {study['model']!r} has lambda.{group} = 0: "
                              "its latent penalty would not act")
    shadowed = sorted(set(study_variants(ddm)) & set(ddm["models"]))
    if shadowed:
        raise ConfigError(f"ddmnist.latent_study variant name(s) {shadowed} are also ddmnist.models entries")


def check_smoke(smoke: dict) -> None:
    """The simulation and split settings must be fields of SmokeConfig / SmokeSplits with values
    they accept, and every reported horizon must fit the stored frames of the test windows."""
    from .smoke_data import SmokeSplits, split_sizes
    from .smoke_sim import SmokeConfig

    try:
        simulation = SmokeConfig.from_dict(smoke["simulation"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"smoke.simulation: {error}") from None
    try:
        splits = SmokeSplits.from_config(smoke["splits"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"smoke.splits: {error}") from None
    stored = simulation.last_frame - simulation.first_frame + 1
    for horizon in smoke["horizons"]:
        for split in ("future", "domain"):
            start, stop = splits.window(split)
            if stop - 1 + splits.frames_needed(horizon) > stored:
                raise ConfigError(
                    f"smoke.horizons: a {horizon}-frame rollout from the last {split} window "
                    f"(t = {stop - 1}) needs frame {stop - 1 + splits.frames_needed(horizon) - 1}, "
                    f"but only {stored} frames are stored")
    for k in (k for k, _ in (*splits.train_simulations, *splits.domain_simulations)):
        if not 1 <= k <= simulation.n_simulations:
            raise ConfigError(f"smoke.splits: simulation {k} is not among the "
                              f"{simulation.n_simulations} simulated")
    split_sizes(splits, stored)
