"""Each experiment module turns the validated configuration into one training run's settings
(approxeq.experiments.run_settings), the dict the workflow hands to the job and writes into train.json."""
from pathlib import Path

import pytest
import yaml

from approxeq.config import validate_config
from approxeq.experiments import run_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    loaded = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate_config(loaded, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    return loaded


def test_ddmnist_settings_take_the_groups_lr_and_lambda_and_the_models_latent(config):
    run = run_settings(config, "ddmnist", "D4", "ours", 3, "results/data/ddmnist/D4.npz")
    assert (run["experiment"], run["group"], run["model"], run["seed"]) == ("ddmnist", "D4", "ours", 3)
    assert run["lr"] == 5.0e-4 and run["weights"] == {"task": 1.0, "shift": 0.0, "equivariance": 1.0}
    assert run["latent"] == {"placement": "bn_elu", "penalty": "normalised"}
    assert run["augmentation"]["per_epoch"] is True and run["network"]["name"] == "ddmnist_cnn"
    # a latent-study variant: ours with another placement and penalty, everything else the same
    variant = run_settings(config, "ddmnist", "D4", "ours_conv_mse", 3, "results/data/ddmnist/D4.npz")
    assert variant["latent"] == {"placement": "conv", "penalty": "mse"}
    assert {k: v for k, v in variant.items() if k not in ("latent", "model")} == \
        {k: v for k, v in run.items() if k not in ("latent", "model")}
    # a baseline's own network on top of the experiment's
    assert run_settings(config, "ddmnist", "C4", "scnn", 0, "x.npz")["network"]["name"] == "ddmnist_scnn"


def test_a_ddmnist_model_may_train_for_its_own_number_of_epochs(config):
    import copy

    own = copy.deepcopy(config)
    own["ddmnist"]["models"]["scnn"]["epochs"] = 1
    validate_config(own, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert run_settings(own, "ddmnist", "D1", "scnn", 0, "x.npz")["epochs"] == 1
    assert run_settings(own, "ddmnist", "D1", "cnn", 0, "x.npz")["epochs"] == config["ddmnist"]["training"]["epochs"]
    own["ddmnist"]["models"]["scnn"]["epochs"] = 0
    with pytest.raises(Exception, match="epochs"):
        validate_config(own, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))


def test_medmnist_augments_per_epoch_only_the_models_marked_augmented(config):
    per_epoch = {model: run_settings(config, "organmnist3d", "O", model, 0, "resources/medmnist")
                 ["augmentation"]["per_epoch"] for model in ("cnn", "cnn_aug", "ours")}
    assert per_epoch == {"cnn": False, "cnn_aug": True, "ours": True}
    ours = run_settings(config, "organmnist3d", "O", "ours", 0, "resources/medmnist")
    assert ours["weights"] == {"task": 0.5, "shift": 0.5, "equivariance": 2.0} and ours["lr"] == 1.0e-4


def test_medmnist_steerable_baselines_take_their_network_lr_and_epochs(config):
    """Table 5's escnn rows: the model's network keys over medmnist.network, their script's lr and
    epochs (Veefkind & Cesa's medical_mnist2d.py defaults), unaugmented, no latent term; the
    workflow checks their network is buildable (network_key)."""
    from approxeq.experiments import run_network

    rpp = run_settings(config, "nodulemnist3d", "O", "rpp_o3", 0, "resources/medmnist")
    assert rpp["network"] == {"name": "medmnist_rpp", "group": "O3", "c": 6, "upsample": 29, "latent_dim": 48}
    assert (rpp["lr"], rpp["epochs"], rpp["augmentation"]["per_epoch"]) == (1.0e-3, 25, False)
    assert rpp["weights"] == {"task": 1.0, "shift": 0.0, "equivariance": 0.0}
    assert run_settings(config, "organmnist3d", "O", "ours", 0, "d")["epochs"] == 100  # the block's
    assert run_network(config, "synapsemnist3d", "scnn_so3") == ("medmnist.models.scnn_so3", "medmnist_scnn")
    assert run_network(config, "synapsemnist3d", "cnn") == ("medmnist.models.cnn", "medmnist_resnet3d")
    assert not set(config["medmnist"]["models"]) & set(config["medmnist"]["not_trained"])


def test_smoke_and_exploratory_settings(config):
    aug = run_settings(config, "smoke", "C4", "cnn_aug", 1, "results/data/smoke")
    assert aug["weights"] == {"task": 1.0, "shift": 0.5, "equivariance": 0.0} and aug["augment"] is False
    assert run_settings(config, "smoke", "C4", "e2cnn", 1, "d")["network"] == {"name": "smoke_e2cnn", "hidden": 92}
    tmnist = run_settings(config, "tmnist", "C2", "learned", 2, "results/data/tmnist.npz")
    assert (tmnist["group"], tmnist["model"], tmnist["epochs"]) == ("C2", "learned", 30)
    assert tmnist["augmentation"] == {"per_epoch": True}


def test_an_unknown_experiment_is_named(config):
    with pytest.raises(KeyError, match="unknown experiment 'ddmnsit'"):
        run_settings(config, "ddmnsit", "D4", "ours", 0, "x")
