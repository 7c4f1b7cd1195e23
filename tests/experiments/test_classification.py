"""Your own data and group by configuration: a data set entry becomes runs of CNN, augmented CNN and
ours whose actions are the named group's on the data's grid (a subgroup of O on volumes here, C4 on
images in the quick run's worked example); bad entries are refused naming the key."""
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from approxeq.algebra.symmetry import symmetry
from approxeq.config import ConfigError, check_config, validate_config
from approxeq.data.classification import describe, save_classification_npz
from approxeq.experiments import evaluate_experiment, run_data, run_settings, setup_experiment
from approxeq.method.train import TrainConfig, seed_everything, train
from approxeq.runtime.io import write_json_atomic

ROOT = Path(__file__).resolve().parents[2]
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def volumes(tmp_path_factory):
    """A tiny volume data set, two classes told apart by which half of the cube is bright."""
    folder = tmp_path_factory.mktemp("mine")
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 16), ("val", 8), ("test", 8)):
        labels = np.arange(n) % 2
        images = rng.integers(0, 60, (n, 6, 6, 6)).astype(np.uint8)
        images[labels == 1, :3] += 150
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    save_classification_npz(folder / "cubes.npz", arrays)
    return folder


def configured(volumes, **dataset):
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["classification"]["datasets"] = {"cubes": {
        "npz": str(volumes / "cubes.npz"), "domain": "volume", "group": "D3", "label": "Cubes",
        "network": {"c": 1, "latent_dim": 8}, **dataset}}
    config["results"] = str(volumes / "results")
    validate_config(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return config


def test_a_data_set_entry_becomes_runs_of_every_model(volumes):
    config = configured(volumes, equivariance=2.0)
    check_config(config)
    inputs, data = run_data(config, "cubes", "D3", 0)
    assert inputs == [data] == [f"{config['results']}/data/classification/cubes.json"]
    runs = {m: run_settings(config, "cubes", "D3", m, 0, data) for m in ("cnn", "cnn_aug", "ours")}
    assert {m: r["augmentation"]["per_epoch"] for m, r in runs.items()} == {"cnn": False, "cnn_aug": True, "ours": True}
    assert {m: r["weights"]["equivariance"] for m, r in runs.items()} == {"cnn": 0.0, "cnn_aug": 0.0, "ours": 2.0}
    assert runs["ours"]["network"] == {"name": "medmnist_resnet3d", "c": 1, "latent_dim": 8, "upsample": 29}
    assert runs["ours"]["kind"] == "classification" and runs["ours"]["domain"] == "volume"


def test_ours_trains_and_is_measured_with_the_named_groups_action(volumes):
    config = configured(volumes)
    config["classification"]["training"].update(epochs=2, batch_size=8, eval_batch_size=8)
    record = volumes / "results" / "cubes.json"
    write_json_atomic(record, describe(volumes / "cubes.npz"))
    run = run_settings(config, "cubes", "D3", "ours", 0, str(record))
    seed_everything(0)
    setup = setup_experiment(run, CPU)
    acting = symmetry("D3", "volume")
    x, y = setup.test_sets["test"]
    moved = torch.randint(6, (len(x),), generator=torch.Generator().manual_seed(0))
    assert torch.equal(setup.test_sets["test_transformed"][0], acting.action(6)(x, moved))
    assert torch.equal(setup.test_sets["test_transformed"][1], y)
    assert setup.data.group_order == 6 and setup.n_classes == 2
    cfg = TrainConfig(lr=run["lr"], batch_size=8, epochs=2, patience=2, seed=0)
    result = train(setup.model, setup.data, cfg, volumes / "run", log=lambda m: None)
    setup.model.load_state_dict(result.best_state)
    metrics = evaluate_experiment(setup, run)
    for key in ("test_accuracy", "test_transformed_accuracy", "latent_equivariance_relative"):
        assert np.isfinite(metrics[key]), key
    assert metrics["lambda"] == 1.0 and metrics["synthetic"] is False


def test_the_file_must_hold_the_configured_domain(volumes):
    config = configured(volumes, domain="image", group="C4", network={"c": 1, "latent_dim": 8})
    record = volumes / "results" / "cubes_as_images.json"
    write_json_atomic(record, describe(volumes / "cubes.npz"))
    run = run_settings(config, "cubes", "C4", "cnn", 0, str(record))
    with pytest.raises(ValueError, match="holds volumes.*classification.datasets.cubes.domain"):
        setup_experiment(run, CPU)


@pytest.mark.parametrize("change, message", [
    ({"group": "D1"}, r"classification.datasets.cubes.group: 'D1' does not act exactly on cubic volumes"),
    ({"network": {"c": 1, "latent_dim": 4}},
     r"latent_dim = 4 is smaller than \|D3\| = 6; classification.models.ours has λ > 0"),
    ({"network": {"name": "no_such_net"}}, r"classification.datasets.cubes.network.name = 'no_such_net'"),
])
def test_a_bad_entry_is_refused_naming_the_key(volumes, change, message):
    config = configured(volumes, **change)
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_a_data_set_may_not_take_an_experiments_name(volumes):
    config = configured(volumes)
    config["classification"]["datasets"]["ddmnist"] = copy.deepcopy(config["classification"]["datasets"]["cubes"])
    with pytest.raises(ConfigError, match="classification.datasets.ddmnist: 'ddmnist' is already"):
        check_config(config)
