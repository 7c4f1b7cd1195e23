"""Per-epoch augmentation of the experiments other than DDMNIST (docs/augmentation-audit.md): MNIST D3
and TMNIST draw fresh rotations (and scales) every epoch with the autoencoder's target following its
input, CIFAR10 and MedMNIST3D move every training sample by a fresh group element; each draw comes
from the trainer's augment_generator(seed, epoch)."""
import numpy as np
import pytest
import torch
from checkpoints import (
    assert_interrupted_run_resumes_bit_identically,  # tests/ is on sys.path
)

from approxeq.algebra.rotations import rotate_bilinear
from approxeq.data import cifar10, mnist, tmnist
from approxeq.data.medmnist3d import fetch_medmnist
from approxeq.experiments import setup_experiment
from approxeq.method.train import TrainConfig, augment_generator

CPU = torch.device("cpu")
LEARNED = {"algebra": 1.0, "output_equivariance": 0.25, "equivariance": 0.25, "regulariser": 1.0}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Small stand-ins: a TMNIST file from synthetic glyphs, a MedMNIST3D folder; MNIST and CIFAR10
    are patched in per test (their setups read a folder through load_*)."""
    folder = tmp_path_factory.mktemp("augmentation")
    splits, meta = tmnist.build_tmnist(tmnist.synthetic_glyphs(), {"train": 40, "val": 20, "test": 20},
                                       log=lambda m: None)
    tmnist.save_tmnist(folder / "tmnist.npz", splits, {**meta, "synthetic": True})
    fetch_medmnist("organmnist3d", folder / "medmnist", log=lambda m: None, timeout=5,
                   mirror="http://127.0.0.1:9/",
                   allow_synthetic={"sizes": {"train": 8, "val": 4, "test": 12}, "seed": 0})
    return folder


@pytest.fixture(autouse=True)
def small_sources(monkeypatch):
    monkeypatch.setattr(mnist, "load_mnist", lambda path: {**mnist.synthetic_mnist(60, 20), "synthetic": True})
    monkeypatch.setattr(cifar10, "load_cifar10", lambda path: {**cifar10.synthetic_cifar10(60, 20), "synthetic": True})


def settings(experiment, folder, per_epoch=True):
    common = {"experiment": experiment, "model": "learned", "seed": 0, "weights": LEARNED,
              "init": "orthogonal", "data_seed": 0, "augmentation": {"per_epoch": per_epoch}}
    if experiment == "mnist_d3":
        return {**common, "group": "D3", "data": "unused", "rotation_degrees": 120,
                "network": {"name": "mnist_mlp_autoencoder", "latent_dim": 30},
                "sizes": {"train": 40, "val": 10, "test": 10}}
    if experiment == "tmnist":
        return {**common, "group": "C2", "data": str(folder / "tmnist.npz"),
                "network": {"name": "tmnist_autoencoder", "latent_dim": 42}}
    if experiment == "cifar10":
        return {**common, "group": "C4", "data": "unused", "network": {"name": "cifar10_cnn", "latent_dim": 64},
                "sizes": {"train": 40, "val": 10, "test": 10}}
    return {**common, "experiment": "organmnist3d", "group": "O", "model": "ours",
            "data": str(folder / "medmnist"),
            "network": {"name": "medmnist_resnet3d", "c": 3, "upsample": 29, "latent_dim": 24},
            "weights": {"task": 0.5, "shift": 0.5, "equivariance": 1.0}, "eval_batch_size": 4,
            "rotated_test_seed": 0, "subset": None}


def views(setup, seed, epoch):
    elements = torch.zeros(len(setup.data.x_train), dtype=torch.long)
    return setup.data.epoch_views(augment_generator(seed, epoch), elements)


EXPERIMENTS = ["mnist_d3", "tmnist", "cifar10", "medmnist"]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_the_draw_is_fresh_every_epoch_and_the_same_for_the_same_seed_and_epoch(data, experiment):
    setup = setup_experiment(settings(experiment, data), CPU)
    first, again, next_epoch, other_seed = (views(setup, s, e) for s, e in ((0, 1), (0, 1), (0, 2), (1, 1)))
    assert torch.equal(first.x, again.x)
    assert not torch.equal(first.x, next_epoch.x) and not torch.equal(first.x, other_seed.x)
    assert first.x.shape == setup.data.x_train.shape and first.x.dtype == setup.data.x_train.dtype
    assert first.gx is None  # the objective forms g·x itself
    if experiment in ("mnist_d3", "tmnist"):  # autoencoders: the target is the augmented input
        assert first.y is first.x
    else:  # labels are invariant: the stored ones
        assert first.y is None


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_without_per_epoch_the_stored_draw_is_trained_every_epoch(data, experiment):
    assert setup_experiment(settings(experiment, data, per_epoch=False), CPU).data.epoch_views is None


@pytest.mark.parametrize("experiment", ["cifar10", "medmnist"])
def test_each_view_is_its_drawn_elements_exact_action_on_the_stored_sample(data, experiment):
    setup = setup_experiment(settings(experiment, data), CPU)
    x = setup.data.x_train
    drawn = torch.randint(setup.data.group_order, (len(x),), generator=augment_generator(0, 4))
    assert torch.equal(views(setup, 0, 4).x, setup.input_action(x, drawn))


def test_mnist_d3_views_are_arbitrary_rotations_of_the_clean_training_images(data):
    setup = setup_experiment(settings("mnist_d3", data), CPU)
    stored = setup_experiment(settings("mnist_d3", data, per_epoch=False), CPU)
    assert torch.equal(setup.data.x_val, stored.data.x_val)  # validation: the same one draw
    images = mnist.synthetic_mnist(60, 20)["train_images"]
    chosen = torch.randperm(60, generator=torch.Generator().manual_seed(0))[:40]
    clean = torch.from_numpy(images)[chosen].unsqueeze(1).float() / 255
    angles = torch.rand(40, generator=augment_generator(0, 2)) * 360.0
    assert torch.equal(views(setup, 0, 2).x, rotate_bilinear(clean, angles))


def test_tmnist_augmentation_moves_both_fonts_of_a_sample_alike():
    glyphs = tmnist.synthetic_glyphs()
    clean = torch.from_numpy(np.ascontiguousarray(glyphs[:, :8].swapaxes(0, 1)))  # (8, 2, 28, 28)
    # no rotation, no scaling: the clean pair itself
    same = tmnist.augment_pairs(clean, torch.Generator().manual_seed(0), (0.0, 0.0), (1.0, 1.0))
    assert torch.equal(same, clean.float() / 255)
    # the font swap (C2) commutes with the augmentation: one transform per sample, both channels
    swapped = tmnist.augment_pairs(clean.flip(1), torch.Generator().manual_seed(1), (-45.0, 45.0), (0.75, 1.25))
    moved = tmnist.augment_pairs(clean, torch.Generator().manual_seed(1), (-45.0, 45.0), (0.75, 1.25))
    assert torch.equal(swapped, moved.flip(1))
    assert not torch.equal(moved, same)


def test_a_stored_tmnist_file_without_clean_pairs_is_refused_for_per_epoch_training(data, tmp_path):
    splits, meta = tmnist.load_tmnist(data / "tmnist.npz")
    del splits["train"]["clean"]
    tmnist.save_tmnist(tmp_path / "old.npz", splits, meta)
    run = {**settings("tmnist", data), "data": str(tmp_path / "old.npz")}
    with pytest.raises(KeyError, match="train_clean"):
        setup_experiment(run, CPU)


@pytest.fixture
def deterministic():
    """As the workflow's train jobs run (compute.deterministic): without it CPU convolution
    backward passes may sum in another order between runs."""
    torch.use_deterministic_algorithms(True, warn_only=True)
    yield
    torch.use_deterministic_algorithms(False)


@pytest.mark.parametrize("experiment", ["mnist_d3", "cifar10"])
def test_an_interrupted_run_resumes_bit_identically(data, tmp_path, experiment, deterministic):
    assert_interrupted_run_resumes_bit_identically(
        settings(experiment, data), TrainConfig(lr=1e-3, batch_size=10, epochs=3, patience=5, seed=0), tmp_path)
