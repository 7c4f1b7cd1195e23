"""MNIST D3 (Section 4.2, Table 2): an autoencoder of rotated digits with D3 acting on images."""
from __future__ import annotations

import torch

from approxeq.experiments import exploratory
from approxeq.experiments.base import ExperimentSetup, augments_per_epoch
from approxeq.experiments.exploratory import (
    image_mse,
    learned_setup,
    reconstruction_error,
)
from approxeq.method.train import EpochViews

# the run settings every Section 4 experiment shares
run_settings = exploratory.run_settings

# Table 2: the paper's real multiplicities of D3's irreducibles in the learned representation
PAPER_TABLE = exploratory.PaperTable(2, "MNIST autoencoder, D3", "Table 2: MNIST autoencoder, D3 ≅ S3, d = 30",
                                     {"trivial": ("m(trivial)", "trivial"), "sign": ("m(sign)", "sign"),
                                      "standard": ("m(standard)", "standard")})


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    folder = config["mnist"]["dir"]
    return [f"{folder}/source.json"], folder  # a data folder is named by its record


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """D3 on MNIST augmented by arbitrary rotations: r a 120° rotation, s a flip about the vertical
    axis (bilinear interpolation, so the action is only approximately a homomorphism)."""
    from approxeq.algebra.rotations import d3_image_action, rotate_bilinear
    from approxeq.data.mnist import load_mnist

    mnist = load_mnist(run["data"])
    sizes = run["sizes"]
    rng = torch.Generator().manual_seed(run["data_seed"])
    train = torch.from_numpy(mnist["train_images"])
    chosen = torch.randperm(len(train), generator=rng)[: sizes["train"] + sizes["val"]]
    parts = {"train": train[chosen[: sizes["train"]]], "val": train[chosen[sizes["train"]:]],
             "test": torch.from_numpy(mnist["test_images"])[: sizes["test"]]}
    splits = {}
    for split, images in parts.items():
        x = images.unsqueeze(1).float().div_(255)
        # "augmented by arbitrary rotations"; drawn for every split, so that validation and test
        # are the same draws whether or not training is augmented per epoch
        angles = torch.rand(len(x), generator=rng) * 360.0
        x = rotate_bilinear(x, angles).to(device)
        splits[split] = (x, x)
    epoch_views = None
    if augments_per_epoch(run):  # a fresh angle per training image every epoch
        clean_train = parts["train"].unsqueeze(1).to(device).float().div_(255)

        def epoch_views(generator: torch.Generator, elements: torch.Tensor) -> EpochViews:
            angles = torch.rand(len(clean_train), generator=generator).to(device) * 360.0
            x = rotate_bilinear(clean_train, angles)
            return EpochViews(x, y=x)  # an autoencoder: the target is the augmented input
    action = d3_image_action(run["rotation_degrees"])
    return learned_setup(run, device, splits, action, action, image_mse, reconstruction_error,
                         "reconstruction_mse", maximize=False, synthetic=bool(mnist["synthetic"]),
                         epoch_views=epoch_views)
