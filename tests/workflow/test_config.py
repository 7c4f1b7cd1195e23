"""The configuration is validated before any job: the schema and the semantic checks name the key."""
import copy
import re
from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import update_config, validate

from approxeq.config import ConfigError, check_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = str(ROOT / "workflow" / "schemas" / "config.schema.yaml")


def load(*names):
    config = {}
    for name in names:
        update_config(config, yaml.safe_load((ROOT / name).read_text()))
    return config


def validated(config):
    config = copy.deepcopy(config)
    validate(config, SCHEMA)
    return config


@pytest.mark.parametrize("files", [("config.yaml",), ("config.yaml", "config.quick.yaml")])
def test_shipped_configurations_are_valid(files):
    config = validated(load(*files))
    check_config(config)
    assert config["ddmnist"]["groups"] == ["C4", "D1", "D4"]


def test_paper_settings():
    config = validated(load("config.yaml"))
    ddm = config["ddmnist"]
    assert ddm["seeds"] == [0, 1, 2, 3, 4]
    assert ddm["training"] == {"batch_size": 256, "epochs": 150, "patience": 20, "weight_decay": 0.0}
    assert ddm["models"]["cnn"]["lr"] == {"C4": 5e-4, "D1": 1e-3, "D4": 5e-4}
    assert ddm["models"]["ours"]["lr"] == {"C4": 1e-3, "D1": 1e-3, "D4": 5e-4}
    assert ddm["models"]["ours"]["weights"]["equivariance"] == {"C4": 2.0, "D1": 1.0, "D4": 1.0}
    assert ddm["network"]["latent_dim"] == 66


def test_schema_fills_defaults():
    config = load("config.yaml")
    del config["ddmnist"]["training"], config["compute"]
    config = validated(config)
    assert config["ddmnist"]["training"]["patience"] == 20
    assert config["compute"]["train_threads"] == 4


@pytest.mark.parametrize("path, value, expected", [
    (("ddmnist", "training", "epochz"), 3, "epochz"),
    (("ddmnist", "seeds"), ["a"], "seeds"),
    (("ddmnist", "groups"), ["Q8"], "groups"),
    (("mnist", "md5", "train_images"), "not-a-hash", "train_images"),
    (("mnist", "sources"), [{"kind": "ftp", "base": "x"}], "sources"),
    (("report",), "report.pdf", "report"),
    (("compute", "train_threads"), 0, "train_threads"),
])
def test_schema_rejects_bad_input_naming_the_key(path, value, expected):
    config = load("config.yaml")
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(WorkflowError) as error:
        validate(config, SCHEMA)
    assert expected in str(error.value)


def test_semantic_checks_name_the_key():
    config = validated(load("config.yaml"))
    small = copy.deepcopy(config)
    small["ddmnist"]["network"]["latent_dim"] = 60
    with pytest.raises(ConfigError, match=r"ddmnist.network.latent_dim = 60 .* \|D4xD4\| = 64"):
        check_config(small)
    missing = copy.deepcopy(config)
    del missing["ddmnist"]["models"]["ours"]["lr"]["D1"]
    with pytest.raises(ConfigError, match=r"ddmnist.models.ours.lr has no value for group\(s\) \['D1'\]"):
        check_config(missing)
    artefacts = copy.deepcopy(config)
    del artefacts["ddmnist"]["artefacts"]["C4"]
    with pytest.raises(ConfigError, match="ddmnist.artefacts"):
        check_config(artefacts)


def test_d3_rotation_of_60_degrees_is_refused_before_any_job():
    config = validated(load("config.yaml"))
    config["exploratory"]["experiments"]["mnist_d3"]["rotation_degrees"] = 60
    with pytest.raises(ConfigError, match=r"exploratory.experiments.mnist_d3.rotation_degrees: .*60"):
        check_config(config)


def test_exploratory_settings_of_table_7():
    experiments = validated(load("config.yaml"))["exploratory"]["experiments"]
    expected = {"tmnist": ("C2", 42, 1.0, 0.025, 0.475), "mnist_d3": ("D3", 30, 0.5, 0.495, 0.005),
                "cifar10": ("C4", 64, 1.0, 0.25, 0.25)}
    for name, (group, d, lambda_w, lambda_out, lambda_in) in expected.items():
        e = experiments[name]
        assert (e["group"], e["network"]["latent_dim"]) == (group, d)
        # the paper's λ_W, λ_out, λ_in by the names every experiment uses
        assert (e["weights"]["algebra"], e["weights"]["output_equivariance"], e["weights"]["equivariance"],
                e["weights"]["task"]) == (lambda_w, lambda_out, lambda_in, 1.0)
        assert e["training"]["lr"] == 0.003 and e["training"]["batch_size"] == 64


def test_smoke_settings_are_checked_before_any_job():
    config = validated(load("config.yaml"))
    assert config["smoke"]["splits"]["test_horizon"] == 6 and config["smoke"]["horizons"] == [6, 20]
    bad_key = copy.deepcopy(config)
    bad_key["smoke"]["simulation"]["resolutoin"] = 32
    with pytest.raises(ConfigError, match=r"smoke.simulation: .*resolutoin"):
        check_config(bad_key)
    too_long = copy.deepcopy(config)
    too_long["smoke"]["horizons"] = [6, 100]
    with pytest.raises(ConfigError, match=r"smoke.horizons: a 100-frame rollout"):
        check_config(too_long)
    missing_sim = copy.deepcopy(config)
    missing_sim["smoke"]["simulation"]["n_simulations"] = 20
    with pytest.raises(ConfigError, match=r"smoke.splits: simulation \d+ is not among the 20"):
        check_config(missing_sim)


def test_medmnist_settings_of_table_10():
    medmnist = validated(load("config.yaml"))["medmnist"]
    assert medmnist["synthetic"] is None  # the paper run never falls back silently
    assert medmnist["group"] == "O" and medmnist["seeds"] == [0, 1, 2, 3, 4]
    assert medmnist["training"]["batch_size"] == 32 and medmnist["training"]["eval_batch_size"] == 48
    assert medmnist["network"] == {"name": "medmnist_resnet3d", "c": 6, "upsample": 29, "latent_dim": 48}
    ours, aug = medmnist["models"]["ours"], medmnist["models"]["cnn_aug"]
    assert ours["lr"] == aug["lr"] == {"nodulemnist3d": 5e-5, "synapsemnist3d": 1e-4, "organmnist3d": 1e-4}
    assert ours["weights"]["equivariance"] == {"nodulemnist3d": 1.0, "synapsemnist3d": 1.0, "organmnist3d": 2.0}
    assert (ours["weights"]["task"], ours["weights"]["shift"]) == (aug["weights"]["task"], aug["weights"]["shift"]) \
        == (0.5, 0.5)
    assert (medmnist["models"]["cnn"]["weights"]["task"], medmnist["models"]["cnn"]["weights"]["shift"]) == (1.0, 0.0)
    assert set(aug["weights"]["equivariance"].values()) == {0.0}
    quick = validated(load("config.yaml", "config.quick.yaml"))["medmnist"]
    assert quick["synthetic"]["sizes"] == quick["subset"]


def test_medmnist_checks_name_the_key():
    config = validated(load("config.yaml"))
    unknown = copy.deepcopy(config)
    unknown["medmnist"]["datasets"]["nodule3d"] = {"label": "x"}
    with pytest.raises(WorkflowError, match="nodule3d"):
        validate(unknown, SCHEMA)
    missing = copy.deepcopy(config)
    del missing["medmnist"]["models"]["ours"]["weights"]["equivariance"]["organmnist3d"]
    with pytest.raises(ConfigError, match=r"medmnist.models.ours.weights.equivariance has no value .*organmnist3d"):
        check_config(missing)
    latent = copy.deepcopy(config)
    latent["medmnist"]["network"]["latent_dim"] = 66
    with pytest.raises(ConfigError, match=r"medmnist.network.latent_dim = 66.* 8c = 48"):
        check_config(latent)
    small = copy.deepcopy(config)
    small["medmnist"]["network"].update(c=2, latent_dim=16)
    with pytest.raises(ConfigError, match=r"medmnist.network.latent_dim = 16 is smaller than \|O\| = 24"):
        check_config(small)


@pytest.mark.parametrize("path, value, expected", [
    (("ddmnist", "models", "ours", "lr", "C4"), float("inf"), r"ddmnist.models.ours.lr.C4 must be a finite number"),
    (("ddmnist", "models", "cnn", "lr", "D1"), 1e6, r"ddmnist.models.cnn.lr.D1 = 1e\+06 is not a usable learning rate"),
    (("exploratory", "experiments", "tmnist", "training", "lr"), 1e6,
     r"exploratory.experiments.tmnist.training.lr = 1e\+06 is not a usable learning rate"),
    (("smoke", "training", "lr"), float("inf"), r"smoke.training.lr must be a finite number"),
    (("smoke", "training", "weight_decay"), float("nan"), r"smoke.training.weight_decay must be a finite number"),
    (("compute", "divergence_factor"), float("inf"), r"compute.divergence_factor must be a finite number"),
])
def test_non_finite_numbers_and_absurd_learning_rates_are_refused_naming_the_key(path, value, expected):
    config = validated(load("config.yaml"))  # .inf / .nan pass the schema's number type
    node = config
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    validate(copy.deepcopy(config), SCHEMA)
    with pytest.raises(ConfigError, match=expected):
        check_config(config)


def test_yaml_infinity_is_refused_from_a_config_file():
    config = load("config.yaml")
    update_config(config, yaml.safe_load("smoke:\n  training: {lr: .inf}\n"))
    with pytest.raises(ConfigError, match="smoke.training.lr must be a finite number"):
        check_config(validated(config))


def test_training_guard_and_gpu_wait_keys():
    config = validated(load("config.yaml"))
    assert config["compute"]["divergence_factor"] == 1000 and config["compute"]["gpu_wait_seconds"] is None
    for key, value in (("divergence_factor", 1), ("gpu_wait_seconds", 0), ("gpu_wait_seconds", "10")):
        bad = load("config.yaml")
        bad["compute"][key] = value
        with pytest.raises(WorkflowError, match=key):
            validate(bad, SCHEMA)
    config["compute"].update(divergence_factor=None, gpu_wait_seconds=600)
    check_config(validated(config))


def test_missing_local_mnist_folder_is_refused_before_any_job(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # relative paths are taken from the working directory, as jobs do
    config = validated(load("config.yaml"))
    config["mnist"]["sources"] = [{"kind": "local", "path": "no/such/mnist"}]
    with pytest.raises(ConfigError, match=r"mnist.sources\[0\].path = 'no/such/mnist': no/such/mnist does not exist"):
        check_config(config)
    (tmp_path / "no/such/mnist").mkdir(parents=True)
    with pytest.raises(ConfigError, match=r"has neither NAME nor NAME.gz for train-images-idx3-ubyte"):
        check_config(config)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte"):
        (tmp_path / "no/such/mnist" / name).write_bytes(b"")  # hashes are checked when fetched
    check_config(config)
    # a missing local folder before another source is a fallback chain (config.quick.yaml), fine
    config["mnist"]["sources"] = [{"kind": "local", "path": "elsewhere"}, {"kind": "synthetic"}]
    check_config(config)
    # and once MNIST is installed, its sources are not read again
    config["mnist"]["sources"] = [{"kind": "local", "path": "elsewhere"}]
    (tmp_path / config["mnist"]["dir"]).mkdir(parents=True)
    (tmp_path / config["mnist"]["dir"] / "source.json").write_text("{}")
    check_config(config)


def test_not_trained_models_carry_a_reason_and_are_not_also_trained():
    config = load("config.yaml")
    config["smoke"]["not_trained"] = {"lift": ""}
    with pytest.raises(WorkflowError, match="not_trained"):
        validate(config, SCHEMA)
    both = validated(load("config.yaml"))
    both["ddmnist"]["not_trained"] = {"scnn": "a reason"}
    with pytest.raises(ConfigError, match=r"ddmnist.not_trained.scnn: 'scnn' is also trained"):
        check_config(both)


def test_a_models_groups_must_be_configured_groups():
    config = validated(load("config.yaml"))
    config["ddmnist"]["models"]["scnn"]["groups"] = ["D1", "C2"]
    with pytest.raises(ConfigError, match=r"ddmnist.models.scnn.groups: \['C2'\] not in ddmnist.groups"):
        check_config(config)
    quick = validated(load("config.yaml", "config.quick.yaml"))
    check_config(quick)  # the quick run's baselines on D1 only
    assert quick["ddmnist"]["models"]["rpp"]["groups"] == ["D1"]


@pytest.mark.parametrize("key, value, ok", [
    ("mnist.sources[0].path", "../mnist", False), ("medmnist.local_copy", "a/../../b", False),
    ("results", "results/../../up", False), ("report", "reports/../report.html", True),
    ("compute.gpu_lock_dir", "/scratch/locks", True), ("tmnist.dir", "/shared/fonts", True),
])
def test_relative_paths_must_stay_in_the_working_directory(key, value, ok):
    config = load("config.yaml")
    if key.startswith("mnist.sources"):
        config["mnist"]["sources"] = [{"kind": "local", "path": value}]
    else:
        block, _, name = key.rpartition(".")
        (config[block] if block else config)[name] = value
    from approxeq.config import check_paths
    if ok:
        check_paths(config)
    else:
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)} = '{re.escape(value)}' leaves the working directory"):
            check_paths(config)


@pytest.mark.parametrize("overlay, expected", [
    ({"ddmnistt": {"seeds": [0]}}, "the configuration: unknown key(s) 'ddmnistt'; allowed here: cifar10, classification, compute"),
    ({"ddmnist": {"training": {"epochs": 0}}}, "ddmnist.training.epochs = 0: allowed: ≥ 1"),
    ({"ddmnist": {"augmentation": {"second_view": "twice"}}},
     "ddmnist.augmentation.second_view = 'twice': allowed: one of ['exact', 'authors']"),
    ({"mnist": {"dir": "../../etc"}}, "mnist.dir = '../../etc' leaves the working directory"),
])
def test_config_errors_fit_one_screen_naming_key_value_and_what_is_allowed(overlay, expected):
    """The workflow test checks one of these through Snakemake; here every kind, in process."""
    from approxeq.config import validate_config
    config = load("config.yaml")
    update_config(config, overlay)
    with pytest.raises(ConfigError) as caught:
        validate_config(config, SCHEMA)
        check_config(config)
    message = str(caught.value)
    assert expected in message and len(message) < 400 and "Failed validating" not in message, message


def test_nested_command_line_overrides_are_typed_as_a_config_file_would_type_them():
    """`snakemake --config 'ddmnist={seeds: [0, 1]}'`: Snakemake hands the nested value over as text
    ({'seeds': ['0', '1']}); typed_command_line_config reads it as YAML would, merges it into the
    configuration, and the schema accepts it. Plain texts stay texts."""
    from snakemake.cli import parse_config

    from approxeq.config import typed_command_line_config
    overrides = parse_config(["ddmnist={seeds: [0, 1], training: {weight_decay: 0.5, epochs: 3}}",
                              "results=results/other",
                              "medmnist={dir: resources/medmnist_copy, synthetic: null, "
                              "subset: {train: 10, val: 5, test: 5}}"])
    assert overrides["ddmnist"]["seeds"] == ["0", "1"]  # what Snakemake gives: the reason for the fix
    config = load("config.yaml")
    update_config(config, overrides)
    with pytest.raises(WorkflowError):
        validated(config)
    typed_command_line_config(config, overrides)
    config = validated(config)
    check_config(config)
    assert config["ddmnist"]["seeds"] == [0, 1]
    assert config["ddmnist"]["training"]["weight_decay"] == 0.5 and config["ddmnist"]["training"]["epochs"] == 3
    assert config["ddmnist"]["training"]["batch_size"] == 256  # the rest of the block is kept
    assert config["medmnist"]["dir"] == "resources/medmnist_copy" and config["medmnist"]["synthetic"] is None
    assert config["medmnist"]["subset"] == {"train": 10, "val": 5, "test": 5}
    assert config["results"] == "results/other"
