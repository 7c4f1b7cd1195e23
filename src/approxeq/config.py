"""Checks of the configuration that a JSON schema cannot express, run by the Snakefile right after
schema validation, so a bad value stops the workflow before any job starts."""
from __future__ import annotations

import math
import os
from pathlib import Path

from approxeq.algebra.groups import group_from_name
from approxeq.algebra.rotations import d3_image_action
from approxeq.data.ddmnist import product_group
from approxeq.data.mnist import SOURCE_RECORD, local_source_problem

# Adam's step is about lr per parameter and step: beyond 1 a run can only blow up (lr = 1e6 ran
# to a loss of 7e12 without a single NaN), so a larger value is a typo, refused before any job.
MAX_LR = 1.0


class ConfigError(ValueError):
    """A configuration value that cannot work; the message names the key."""


def describe_validation_error(error) -> str:
    """One screen for a jsonschema ValidationError: the failing key path, the value and what is
    allowed, never the schema (Snakemake's own message prints the failing sub-schema, for a key at
    the top level all of it)."""
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in error.absolute_path).replace(".[", "[")
    where = where or "the configuration"
    kind, rule, value = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties":
        allowed = sorted((error.schema.get("properties") or {}).keys())
        unknown = sorted(set(value) - set(allowed)) if isinstance(value, dict) else []
        return (f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; allowed here: "
                f"{', '.join(allowed) if allowed else '(none)'}")
    text = repr(value)
    shown = text if len(text) <= 120 else text[:117] + "..."
    allowed = {"type": lambda: f"a value of type {rule}", "enum": lambda: f"one of {rule}",
               "minimum": lambda: f"≥ {rule}", "maximum": lambda: f"≤ {rule}",
               "exclusiveMinimum": lambda: f"> {rule}", "exclusiveMaximum": lambda: f"< {rule}",
               "required": lambda: f"the key(s) {rule}", "minItems": lambda: f"at least {rule} item(s)",
               "pattern": lambda: f"text matching {rule}"}.get(kind)
    return f"{where} = {shown}: {error.message if allowed is None else 'allowed: ' + allowed()}"


def _typed(text: str):
    """A text leaf read as a config file would read it: int, float, true/false, null, else text."""
    for parse in (int, float):
        try:
            return parse(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "null": None, "~": None}.get(text.lower(), text)


def typed_command_line_config(config: dict, overrides: dict) -> None:
    """Snakemake reads a nested `--config KEY={...}` value with YAML's BaseLoader, so every number in
    it arrives as text ('0' for 0) and the schema refuses it. Read the text leaves of those
    overrides (Snakemake's `config_settings.overwrite_config`) as a config file would and write
    them into `config`, in place; plain `KEY=VALUE` scalars Snakemake already types itself."""
    def retype(node):
        if isinstance(node, dict):
            return {key: retype(value) for key, value in node.items()}
        if isinstance(node, list):
            return [retype(value) for value in node]
        return _typed(node) if isinstance(node, str) else node

    from snakemake.utils import update_config  # Snakemake's own merge of --config into the config

    update_config(config, {key: retype(value) for key, value in (overrides or {}).items()
                           if isinstance(value, (dict, list))})


def validate_config(config: dict, schema: str) -> None:
    """Snakemake's schema validation (which also fills in the schema's defaults), with a failure
    reported as a ConfigError in one screen (describe_validation_error)."""
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, schema)
    except WorkflowError as error:
        cause = error.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise ConfigError(f"invalid configuration: {describe_validation_error(cause)}") from None


def _walk(node, key: str = ""):
    """(dotted key, value) of every leaf of a nested config."""
    if isinstance(node, dict):
        for name, value in node.items():
            yield from _walk(value, f"{key}.{name}" if key else str(name))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{key}[{i}]")
    else:
        yield key, node


def check_numbers(config: dict) -> None:
    """No NaN or infinity anywhere (YAML's .nan / .inf pass a schema's number type), and every
    learning rate (any key `lr`, also per group) finite and in (0, MAX_LR]."""
    for key, value in _walk(config):
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value}")
        is_lr = key.endswith(".lr") or ".lr." in key or key == "lr"
        if is_lr and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and not 0 < value <= MAX_LR:
            raise ConfigError(f"{key} = {value:g} is not a usable learning rate: it must be > 0 "
                              f"and at most {MAX_LR:g}")


def check_mnist_sources(mnist: dict) -> None:
    """Local MNIST folders must exist (with the four files) when nothing else could deliver: when
    every source is local. Later non-local sources are fallbacks (the quick configuration tries
    resources/mnist first, which only a full run creates), and once MNIST is installed in
    mnist.dir no source is read again, so neither case is an error."""
    if (Path(mnist["dir"]) / SOURCE_RECORD).exists():
        return
    problems = []
    for i, source in enumerate(mnist["sources"]):
        if source["kind"] != "local":
            return
        problem = local_source_problem(source["path"])
        if problem is None:
            return
        problems.append(f"mnist.sources[{i}].path = {source['path']!r}: {problem}")
    raise ConfigError("no MNIST source can deliver (every source is a local folder): "
                      + "; ".join(problems))


def path_keys(config: dict):
    """(dotted key, value) of every filesystem path the configuration names."""
    yield "results", config["results"]
    yield "report", config["report"]
    for block in ("mnist", "tmnist", "cifar10", "medmnist"):
        yield f"{block}.dir", config[block]["dir"]
    for i, source in enumerate(config["mnist"]["sources"]):
        if source["kind"] == "local":
            yield f"mnist.sources[{i}].path", source["path"]
    yield "medmnist.local_copy", config["medmnist"].get("local_copy")
    yield "compute.gpu_lock_dir", config["compute"].get("gpu_lock_dir")


def check_paths(config: dict) -> None:
    """A relative path must stay inside the working directory: `mnist: {dir: ../../etc}` would
    plan writes two levels above a working copy. Absolute paths (a cluster's scratch disk) are
    the way to name a place outside it."""
    for key, value in path_keys(config):
        if value is None or Path(value).is_absolute():
            continue
        normal = os.path.normpath(value)
        if normal == ".." or normal.startswith(".." + os.sep):
            raise ConfigError(f"{key} = {value!r} leaves the working directory (it resolves to "
                              f"{normal!r}); use a path inside it, or an absolute path for a "
                              "place outside it")


def check_config(config: dict) -> None:
    check_numbers(config)
    check_paths(config)
    check_mnist_sources(config["mnist"])
    ddm = config["ddmnist"]
    for model, settings in ddm["models"].items():
        extra = [g for g in settings.get("groups", []) if g not in ddm["groups"]]
        if extra:
            raise ConfigError(f"ddmnist.models.{model}.groups: {extra} not in ddmnist.groups {ddm['groups']}")
        for key, values in (("lr", settings["lr"]), ("weights.equivariance", settings["weights"]["equivariance"])):
            missing = [g for g in settings.get("groups", ddm["groups"]) if g not in values]
            if missing:
                raise ConfigError(f"ddmnist.models.{model}.{key} has no value for group(s) {missing}")
        for group, lr in settings["lr"].items():
            if lr <= 0:
                raise ConfigError(f"ddmnist.models.{model}.lr.{group} must be > 0, got {lr}")
        network = {**ddm["network"], **settings.get("network", {})}
        check_network_name(network["name"], f"ddmnist.models.{model}.network.name")
        for group in ddm["groups"]:
            if settings["weights"]["equivariance"].get(group, 0) > 0:
                order = product_group(group).order
                d = network["latent_dim"]
                if d < order:
                    where = "models.{model}.network" if "latent_dim" in settings.get("network", {}) else "network"
                    raise ConfigError(
                        f"ddmnist.{where.format(model=model)}.latent_dim = {d} is smaller than "
                        f"|{group}x{group}| = {order}; ddmnist.models.{model}.weights.equivariance.{group} > 0 "
                        "needs d >= |G|")
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
    for experiment in ("ddmnist", "smoke", "medmnist"):
        check_not_trained(config[experiment], experiment)
    check_smoke(config["smoke"])
    check_medmnist(config["medmnist"])
    check_classification(config["classification"])
    missing = [g for g in ddm["groups"] if g not in ddm["artefacts"]]
    if missing:
        raise ConfigError(f"ddmnist.artefacts has no true/false entry for group(s) {missing}")
    for group in ddm["groups"]:
        group_from_name(group)


def check_not_trained(block: dict, experiment: str) -> None:
    """A model is either trained (`models`) or listed as not trained with a reason, not both."""
    both = sorted(set(block.get("not_trained") or {}) & set(block["models"]))
    if both:
        raise ConfigError(f"{experiment}.not_trained.{both[0]}: {both[0]!r} is also trained "
                          f"({experiment}.models.{both[0]}); remove one of the two")


def check_network_name(name: str, key: str) -> None:
    """A network must name a builder of nn.registry.MODEL_BUILDERS (whether its optional package, escnn
    for the baselines, is installed is checked per run when the DAG is built: other targets still
    build without it)."""
    from approxeq.nn.registry import MODEL_BUILDERS

    if name not in MODEL_BUILDERS:
        raise ConfigError(f"{key} = {name!r} is not a known network; known: {sorted(MODEL_BUILDERS)}")


def check_latent_study(ddm: dict) -> None:
    """The study's model and baseline must be configured DDMNIST models, its groups built DDMNIST
    groups, the model's λ > 0 there (else every penalty form is the CNN), and no variant name may
    shadow a configured model."""
    from approxeq.experiments.ddmnist import study_variants

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
        if not model["weights"]["equivariance"][group] > 0:
            raise ConfigError(f"ddmnist.latent_study.model {study['model']!r} has weights.equivariance.{group} = 0: "
                              "its latent penalty would not act")
    shadowed = sorted(set(study_variants(ddm)) & set(ddm["models"]))
    if shadowed:
        raise ConfigError(f"ddmnist.latent_study variant name(s) {shadowed} are also ddmnist.models entries")


def check_smoke(smoke: dict) -> None:
    """The simulation and split settings must be fields of SmokeConfig / SmokeSplits with values
    they accept, and every reported horizon must fit the stored frames of the test windows."""
    from approxeq.data.smoke_data import SmokeSplits, split_sizes
    from approxeq.data.smoke_sim import SmokeConfig

    try:
        simulation = SmokeConfig.from_dict(smoke["simulation"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"smoke.simulation: {error}") from None
    try:
        splits = SmokeSplits.from_config(smoke["splits"])
    except (TypeError, ValueError) as error:
        raise ConfigError(f"smoke.splits: {error}") from None
    check_network_name(smoke["network"]["name"], "smoke.network.name")
    for model, settings in smoke["models"].items():
        if "name" in settings.get("network", {}):
            check_network_name(settings["network"]["name"], f"smoke.models.{model}.network.name")
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


def check_medmnist(medmnist: dict) -> None:
    """Every flag is a 3D MedMNIST data set known to medmnist.INFO; every model has an lr and a λ
    for every flag; λ > 0 needs room for a copy of O's regular representation in the latent."""
    from approxeq.algebra.groups import group_from_name
    from approxeq.data.medmnist3d import MedMNISTError, dataset_info

    for flag in medmnist["datasets"]:
        try:
            dataset_info(flag)
        except MedMNISTError as error:
            raise ConfigError(f"medmnist.datasets.{flag}: {error}") from None
    order = group_from_name(medmnist["group"]).order
    network = medmnist["network"]
    if network["latent_dim"] != 8 * network["c"]:
        raise ConfigError(f"medmnist.network.latent_dim = {network['latent_dim']}: the C.2 ResNet's "
                          f"latent has 8c = {8 * network['c']} coordinates")
    for model, settings in medmnist["models"].items():
        for key, values in (("lr", settings["lr"]), ("weights.equivariance", settings["weights"]["equivariance"])):
            missing = [f for f in medmnist["datasets"] if f not in values]
            if missing:
                raise ConfigError(f"medmnist.models.{model}.{key} has no value for data set(s) {missing}")
        for flag in medmnist["datasets"]:
            if settings["weights"]["equivariance"][flag] > 0 and network["latent_dim"] < order:
                raise ConfigError(
                    f"medmnist.network.latent_dim = {network['latent_dim']} is smaller than "
                    f"|{medmnist['group']}| = {order}; medmnist.models.{model}.weights.equivariance.{flag} > 0 "
                    f"needs d >= |G|")


def check_classification(block: dict) -> None:
    """Each of the user's data sets: a name no other experiment has, a group that acts exactly on
    its domain (read here, once, as the jobs will read it), a known network, and room in the latent
    for a copy of the regular representation where a model's λ > 0."""
    from approxeq.algebra.groups import GroupError
    from approxeq.algebra.symmetry import symmetry
    from approxeq.data.medmnist3d import FLAGS
    from approxeq.experiments import EXPERIMENTS
    from approxeq.experiments.classification import dataset_network, model_weights

    for name, dataset in block["datasets"].items():
        key = f"classification.datasets.{name}"
        if name in EXPERIMENTS or name in FLAGS:
            raise ConfigError(f"{key}: {name!r} is already the name of an experiment; choose another")
        try:
            acting = symmetry(dataset["group"], dataset["domain"])
        except GroupError as error:
            raise ConfigError(f"{key}.group: {error}") from None
        network = dataset_network(block, dataset)
        if "name" not in network:
            raise ConfigError(f"{key}: classification.networks.{dataset['domain']} names no network (name:)")
        check_network_name(network["name"], f"{key}.network.name")
        for model in block["models"]:
            weights = model_weights(block, dataset, model)
            if weights["equivariance"] > 0 and network.get("latent_dim", 0) < acting.order:
                raise ConfigError(
                    f"{key}: the network's latent_dim = {network.get('latent_dim')} is smaller than "
                    f"|{acting.name}| = {acting.order}; classification.models.{model} has λ > 0 "
                    "(weights.equivariance), which needs d >= |G|")
