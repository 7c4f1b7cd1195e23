"""CIFAR10 (Section 4.3, Table 3): classification with C4 turning the images."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.symmetry import symmetry
from approxeq.data import cifar10 as cifar10_data
from approxeq.experiments import exploratory
from approxeq.experiments.base import (
    ExperimentSetup,
    augments_per_epoch,
    group_element_views,
)
from approxeq.experiments.exploratory import learned_setup
from approxeq.method.evaluate import accuracy

# the run settings every Section 4 experiment shares
run_settings = exploratory.run_settings

# Table 3: the paper's eigenvalue counts. Its column labels were lost in the paper's text; its
# columns are taken in the order 1, i, −1, −i (its runs 3 and 5 have columns 2 and 4 equal, as
# conjugate eigenvalues i and −i of a real matrix must be).
PAPER_TABLE = exploratory.PaperTable(
    3, "CIFAR10 classifier, C4", "Table 3: CIFAR10 classifier, C4, d = 64",
    {"column_1": ("eig 1", "1 (column 1)"), "column_2": ("eig i", "i (column 2)"),
     "column_3": ("eig -1", "−1 (column 3)"), "column_4": ("eig -i", "−i (column 4)")},
    note="the paper's column labels were lost: read as eigenvalues 1, i, −1, −i")


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    folder = config["cifar10"]["dir"]
    return [f"{folder}/source.json"], folder  # a data folder is named by its record


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """C4 acting on 32×32 RGB images by quarter turns; labels invariant."""
    data = cifar10_data.load_cifar10(run["data"])  # through the module: tests patch it
    sizes = run["sizes"]

    def tensors(images, labels, count):
        x = torch.from_numpy(images[:count]).permute(0, 3, 1, 2).float().div_(255).to(device)
        return x, torch.from_numpy(labels[:count]).long().to(device)

    n_train = sizes["train"]
    splits = {
        "train": tensors(data["train_images"], data["train_labels"], n_train),
        "val": tensors(data["train_images"][n_train:], data["train_labels"][n_train:], sizes["val"]),
        "test": tensors(data["test_images"], data["test_labels"], sizes["test"]),
    }
    group = symmetry(run["group"], "image")
    action = group.action(32).to(device)

    def metric(model, x, y):
        return accuracy(model, x, y)

    # per epoch: every training image turned by a fresh quarter turn (the authors' x1)
    epoch_views = (group_element_views(splits["train"][0], group.order, action)
                   if augments_per_epoch(run) else None)
    return learned_setup(run, device, splits, action, trivial_action, F.cross_entropy, metric,
                         "accuracy", maximize=True, synthetic=bool(data["synthetic"]), n_classes=10,
                         epoch_views=epoch_views)
