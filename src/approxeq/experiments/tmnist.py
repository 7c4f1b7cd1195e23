"""TMNIST (Section 4.1, Table 1): C2 swapping two typefaces of the same digit."""
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

# Table 1: the paper's counts of the snapped eigenvalues +1 and −1 of the learned W_s
PAPER_TABLE = exploratory.PaperTable(1, "TMNIST autoencoder, C2", "Table 1: TMNIST autoencoder, C2, d = 42",
                                     {"plus_one": ("eig 1", "+1"), "minus_one": ("eig -1", "−1")})


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    data = f"{config['results']}/data/tmnist.npz"
    return [data], data


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """C2 on two typefaces: a sample is (own font, other font); g = 1 swaps the channels."""
    from approxeq.data import tmnist

    stored, meta = tmnist.load_tmnist(run["data"])
    splits = {}
    for split in ("train", "val", "test"):
        x = torch.from_numpy(tmnist.as_pair_channels(stored[split])).to(device).float().div_(255)
        splits[split] = (x, x)  # an autoencoder: the target is the input
    epoch_views = None
    if augments_per_epoch(run):
        if "clean" not in stored["train"]:
            raise KeyError(f"{run['data']} holds no untransformed pairs (train_clean) for the "
                           "per-epoch augmentation; rebuild it")
        clean = torch.from_numpy(tmnist.as_pair_channels(
            {"pairs": stored["train"]["clean"], "fonts": stored["train"]["fonts"]})).to(device)

        def epoch_views(generator: torch.Generator, elements: torch.Tensor) -> EpochViews:
            # a fresh rotation and scale per sample every epoch, the data set's ranges
            x = tmnist.augment_pairs(clean, generator, meta["angle_range"], meta["scale_range"])
            return EpochViews(x, y=x)  # an autoencoder: the target is the augmented input
    return learned_setup(run, device, splits, tmnist.font_swap_action, tmnist.font_swap_action,
                         image_mse, reconstruction_error, "reconstruction_mse", maximize=False,
                         synthetic=bool(meta.get("synthetic", False)), epoch_views=epoch_views)
