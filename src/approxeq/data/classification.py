"""Your own classification data: one npz in medmnist's layout, images (2D) or volumes (3D).

Keys `{train,val,test}_images` and `{train,val,test}_labels`, as the files medmnist distributes:

    images  uint8 (or float)  (N, S, S)        square images, one channel
                              (N, S, S, C)     square images, C channels last (C != S)
                              (N, S, S, S)     cubic volumes, one channel
                              (N, S, S, S, C)  cubic volumes, C channels last
    labels  integer           (N,) or (N, 1)   classes 0 .. n_classes − 1 (one label per sample)

uint8 images are scaled as medmnist's (x/255 − 0.5)/0.5; floating images are used as stored. An
optional boolean key `synthetic` marks a file built from a synthetic stand-in (the worked example's
MNIST when offline), so every output built from it says so.

`describe` checks a file before any training job starts and returns the record the jobs read
(sha256, domain, sizes, classes); `load_classification` checks the sha256 again before every use.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from approxeq.runtime.io import atomic_path, check_hash, file_hash, read_json

SPLITS = ("train", "val", "test")


class ClassificationDataError(ValueError):
    """A classification npz that does not have the documented layout."""


def _read(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise ClassificationDataError(f"{path}: no such file (classification.datasets.*.npz)")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise ClassificationDataError(f"{path}: not a readable npz ({error})") from None


def grid_layout(shape: tuple[int, ...], where: str) -> tuple[str, int, int]:
    """(domain, side, channels) of an images array's shape (N, ...), see the module docstring."""
    sides = shape[1:]
    if len(sides) == 2 and sides[0] == sides[1]:
        return "image", sides[0], 1
    if len(sides) == 3 and sides[0] == sides[1] == sides[2]:
        return "volume", sides[0], 1
    if len(sides) == 3 and sides[0] == sides[1]:
        return "image", sides[0], sides[2]
    if len(sides) == 4 and sides[0] == sides[1] == sides[2]:
        return "volume", sides[0], sides[3]
    raise ClassificationDataError(
        f"{where}: images of shape {shape} are neither square images (N, S, S[, C]) nor cubic "
        "volumes (N, S, S, S[, C]); a finite group acts exactly only on a square or cubic grid")


def check_arrays(arrays: Mapping[str, np.ndarray], where: str) -> dict:
    """The layout of a file's arrays, or ClassificationDataError naming the file and the key."""
    layout = None
    classes = 0
    sizes = {}
    for split in SPLITS:
        images, labels = arrays.get(f"{split}_images"), arrays.get(f"{split}_labels")
        if images is None or labels is None:
            raise ClassificationDataError(f"{where}: missing {split}_images or {split}_labels; keys "
                                          f"{sorted(arrays)}")
        if not (images.dtype == np.uint8 or np.issubdtype(images.dtype, np.floating)):
            raise ClassificationDataError(f"{where}: {split}_images is {images.dtype}; expected uint8 "
                                          "or floating point")
        split_layout = grid_layout(images.shape, f"{where}: {split}_images")
        if layout is not None and split_layout != layout:
            raise ClassificationDataError(f"{where}: {split}_images has layout {split_layout}, "
                                          f"train_images {layout} (domain, side, channels)")
        layout = split_layout
        if labels.shape not in ((len(images),), (len(images), 1)):
            raise ClassificationDataError(f"{where}: {split}_labels has shape {labels.shape}; expected "
                                          f"({len(images)},) or ({len(images)}, 1): one label per sample")
        if not np.issubdtype(labels.dtype, np.integer):
            raise ClassificationDataError(f"{where}: {split}_labels is {labels.dtype}; expected integers")
        if len(labels) == 0:
            raise ClassificationDataError(f"{where}: the {split} split is empty")
        if labels.min() < 0:
            raise ClassificationDataError(f"{where}: {split}_labels has negative classes")
        classes = max(classes, int(labels.max()) + 1)
        sizes[split] = int(len(images))
    domain, side, channels = layout
    return {"domain": domain, "side": side, "channels": channels, "n_classes": classes,
            "sizes": sizes, "dtype": str(arrays["train_images"].dtype),
            "synthetic": bool(arrays.get("synthetic", np.array(False)))}


def describe(path: str | Path, sha256: str | None = None) -> dict:
    """The record of a user's npz (checked against `sha256` when given): what the training jobs
    read instead of opening the file at DAG time."""
    path = Path(path)
    arrays = _read(path)
    digest = file_hash(path, "sha256")
    if sha256 and digest != sha256.lower():
        raise ClassificationDataError(f"{path}: sha256 {digest} differs from the configured {sha256}")
    return {"file": str(path), "sha256": digest, **check_arrays(arrays, str(path))}


def load_classification(record_path: str | Path) -> dict:
    """The splits of the file a record (written from `describe`) names, after checking its sha256:
    {split: (images with a channel axis first (N, C, S, S[, S]), labels int64 (N,))} plus the
    record."""
    record = read_json(record_path)
    path = Path(record["file"])
    check_hash(path, record["sha256"], "sha256")
    arrays = _read(path)
    spatial = 2 if record["domain"] == "image" else 3
    out = {}
    for split in SPLITS:
        images = arrays[f"{split}_images"]
        images = images[:, None] if images.ndim == spatial + 1 else np.moveaxis(images, -1, 1)
        out[split] = (np.ascontiguousarray(images), arrays[f"{split}_labels"].reshape(-1).astype(np.int64))
    out["record"] = record
    return out


def stratified_sample(labels, count: int, seed) -> np.ndarray:
    """Sorted indices of `count` samples drawn round-robin over the classes in a seeded random
    order, so a small subset still holds every class (AUC is undefined for an absent class)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    position = np.empty(len(labels), dtype=np.int64)
    position[order] = np.arange(len(labels))
    chosen = np.lexsort((position, rank))[:count]
    return np.sort(chosen)


def mnist_classification_arrays(mnist: Mapping[str, np.ndarray], val: int) -> dict[str, np.ndarray]:
    """MNIST (load_mnist's dict) in this layout: the last `val` training digits are the validation
    split, t10k the test split; the worked example of the quick configuration."""
    train_images, train_labels = mnist["train_images"], mnist["train_labels"]
    if not 0 < val < len(train_images):
        raise ValueError(f"val = {val} must leave training digits ({len(train_images)} in all)")
    cut = len(train_images) - val
    return {"train_images": train_images[:cut], "train_labels": train_labels[:cut, None].astype(np.uint8),
            "val_images": train_images[cut:], "val_labels": train_labels[cut:, None].astype(np.uint8),
            "test_images": mnist["test_images"], "test_labels": mnist["test_labels"][:, None].astype(np.uint8),
            "synthetic": np.array(bool(mnist["synthetic"]))}


def save_classification_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> None:
    """Write a file in this layout, atomically (checked first, so a bad export never lands)."""
    check_arrays(arrays, str(path))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
