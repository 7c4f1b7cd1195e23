"""DDMNIST (double-digit MNIST, Veefkind & Cesa 2024; paper Section 6.1, appendix C.1).

Class c = 10·left + right. Each 28×28 digit is transformed by its own group element, then pasted
into a zero canvas (default 56×56, rows 14:42, columns 0:28 and 28:56). With interpolation
artefacts, a digit is first rotated by an integer angle u ~ U(−180, 180) with bilinear
interpolation and then by (target − u), so the net transform is the group element up to blur.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .actions import patch_product_action, planar_elements, planar_transforms
from .rotations import rotate_bilinear
from .groups import FiniteGroup, direct_product, group_from_name
from .io import load_splits, save_splits

DIGIT = 28


@dataclass(frozen=True)
class Canvas:
    size: int = 56
    top: int = 14

    @property
    def patches(self) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
        rows = slice(self.top, self.top + DIGIT)
        return (rows, slice(0, DIGIT)), (rows, slice(DIGIT, 2 * DIGIT))

    def check(self) -> None:
        if self.size < 2 * DIGIT or not 0 <= self.top <= self.size - DIGIT:
            raise ValueError(f"canvas size {self.size} / top {self.top} cannot hold two 28×28 digits")


def product_group(group_name: str) -> FiniteGroup:
    """The group the method uses: one factor per digit (e.g. C4 → C4×C4)."""
    g = group_from_name(group_name)
    return direct_product(g, g)


def pair_action(group_name: str, canvas: Canvas = Canvas()):
    g = group_from_name(group_name)
    return patch_product_action([g, g], (canvas.size, canvas.size), canvas.patches)


def transform_digits(digits: np.ndarray, elements: np.ndarray, group: FiniteGroup,
                     artefacts: bool, rng: np.random.Generator) -> np.ndarray:
    """Apply element `elements[i]` to `digits[i]` (uint8, N×28×28), optionally with artefacts."""
    x = torch.from_numpy(digits).float().unsqueeze(1)
    if artefacts:
        # Reflect exactly, then rotate by u and by (target − u) with bilinear interpolation.
        turns, flips = np.array(planar_elements(group)).T
        reflected = torch.where(torch.from_numpy(flips[elements]).bool()[:, None, None, None],
                                torch.flip(x, (-2,)), x)
        u = torch.from_numpy(rng.integers(-180, 181, size=len(x))).float()
        target = torch.from_numpy(turns[elements] * 90).float()
        out = rotate_bilinear(rotate_bilinear(reflected, u), target - u)
    else:
        out = torch.empty_like(x)
        for e, t in enumerate(planar_transforms(group)):  # one vectorised call per element
            mask = torch.from_numpy(elements == e)
            out[mask] = t(x[mask])
    return out.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()


def sample_split(images: np.ndarray, labels: np.ndarray, per_class: int, group: FiniteGroup,
                 artefacts: bool, rng: np.random.Generator, canvas: Canvas) -> dict[str, np.ndarray]:
    """`per_class` examples of each of the 100 classes; digits drawn with replacement."""
    classes = np.repeat(np.arange(100), per_class)
    sources = np.empty((len(classes), 2), np.int64)
    for side, digit_of_class in enumerate((classes // 10, classes % 10)):
        for d in range(10):
            where = digit_of_class == d
            sources[where, side] = rng.choice(np.flatnonzero(labels == d), size=where.sum())
    elements = rng.integers(0, group.order, size=sources.shape)
    n = len(classes)
    clean = np.zeros((n, canvas.size, canvas.size), np.uint8)
    transformed = np.zeros_like(clean)
    for side, (ys, xs) in enumerate(canvas.patches):
        digits = images[sources[:, side]]
        clean[:, ys, xs] = digits
        transformed[:, ys, xs] = transform_digits(digits, elements[:, side], group, artefacts, rng)
    return {"images": transformed, "clean": clean, "labels": classes.astype(np.int64),
            "elements": elements.astype(np.int64), "sources": sources}


def build_ddmnist(mnist: dict, group_name: str, artefacts: bool, seed: int,
                  per_class: dict[str, int], canvas: Canvas = Canvas()) -> dict[str, dict]:
    """Splits train (from MNIST train), val and test (from MNIST test), as protocols.md."""
    canvas.check()
    group = group_from_name(group_name)
    rng = np.random.default_rng(seed)
    source = {"train": "train", "val": "test", "test": "test"}
    return {split: sample_split(mnist[f"{source[split]}_images"], mnist[f"{source[split]}_labels"],
                                per_class[split], group, artefacts, rng, canvas)
            for split in ("train", "val", "test")}


# Compressed npz + `<path>.json` with its sha256 and metadata, checked on load.
save_ddmnist = save_splits
load_ddmnist = load_splits
