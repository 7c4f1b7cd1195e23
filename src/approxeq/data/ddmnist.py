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

from approxeq.algebra.actions import (
    patch_product_action,
    planar_elements,
    planar_transforms,
)
from approxeq.algebra.groups import FiniteGroup, direct_product
from approxeq.algebra.rotations import rotate_bilinear
from approxeq.algebra.symmetry import Symmetry, symmetry
from approxeq.runtime.io import load_splits, save_splits

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


def digit_group(group: Symmetry | str) -> FiniteGroup:
    """The group acting on each digit: a Symmetry read once by the caller (a training job reads
    the run's group name once and passes the object on), or a name, read here."""
    return (group if isinstance(group, Symmetry) else symmetry(group, "image")).group


def product_group(group: Symmetry | str) -> FiniteGroup:
    """The group the method uses: one factor per digit (e.g. C4 → C4×C4)."""
    g = digit_group(group)
    return direct_product(g, g)


def pair_action(group: Symmetry | str, canvas: Canvas = Canvas()):
    g = digit_group(group)
    return patch_product_action([g, g], (canvas.size, canvas.size), canvas.patches)


ANGLE_KINDS = ("integer", "real")


def draw_artefact_angles(shape, generator: torch.Generator, kind: str = "integer") -> torch.Tensor:
    """Angles u ~ U(−180, 180) in degrees, float (on the CPU; the generator's device): "integer" as
    DDMNIST is built (integers −180..180) and as the authors' C4 code rounds them, "real" as their
    D4 code draws them (np.random.uniform)."""
    if kind == "integer":
        return torch.randint(-180, 181, tuple(shape), generator=generator).float()
    if kind == "real":
        return torch.rand(tuple(shape), generator=generator, dtype=torch.float64).mul(360).sub(180).float()
    raise ValueError(f"unknown artefact angle kind {kind!r}; known: {list(ANGLE_KINDS)}")


def act_on_digits(x: torch.Tensor, elements: torch.Tensor, group: FiniteGroup,
                  angles: torch.Tensor | None) -> torch.Tensor:
    """Element `elements[i]` of `group` on digit images x[i] (float, N×1×28×28, values 0..255).

    angles None: the exact action (a flip of rows, then quarter turns). With angles u (N,): the
    reflection is exact, then a bilinear rotation by u and one by (target − u), so the net transform
    is the element up to interpolation blur (the artefacts of Veefkind & Cesa's DDMNIST)."""
    turns, flips = (torch.tensor(column, device=x.device) for column in zip(*planar_elements(group)))
    if angles is None:
        out = torch.empty_like(x)
        for e, t in enumerate(planar_transforms(group)):  # one vectorised call per element
            mask = elements == e
            out[mask] = t(x[mask])
        return out
    reflected = torch.where(flips[elements].bool()[:, None, None, None], torch.flip(x, (-2,)), x)
    target = turns[elements].to(x.dtype) * 90
    u = angles.to(device=x.device, dtype=x.dtype)
    return rotate_bilinear(rotate_bilinear(reflected, u), target - u)


def transform_digits(digits: np.ndarray, elements: np.ndarray, group: FiniteGroup,
                     artefacts: bool, rng: np.random.Generator) -> np.ndarray:
    """Apply element `elements[i]` to `digits[i]` (uint8, N×28×28), optionally with artefacts
    (integer angles u drawn from `rng`)."""
    x = torch.from_numpy(digits).float().unsqueeze(1)
    angles = torch.from_numpy(rng.integers(-180, 181, size=len(x))).float() if artefacts else None
    out = act_on_digits(x, torch.from_numpy(elements), group, angles)
    return out.squeeze(1).round().clamp(0, 255).to(torch.uint8).numpy()


class PairAugmentation:
    """G×G on canvases of two digits, batched on the canvases' device: element (a, b), index
    a·|G| + b (groups.direct_product), acts on the left digit by a and on the right by b, exactly
    (one gather, pair_action) or with interpolation artefacts (act_on_digits per patch, `angles`
    (N, 2) one per digit). Canvases are uint8 (N×1×S×S) in and out, rounded as DDMNIST is stored."""

    def __init__(self, group: Symmetry | str, canvas: Canvas, artefacts: bool, device="cpu"):
        self.factor = digit_group(group)
        self.canvas = canvas
        self.artefacts = artefacts
        self.exact = pair_action(group, canvas).to(device)

    def __call__(self, x: torch.Tensor, elements: torch.Tensor, angles: torch.Tensor | None = None) -> torch.Tensor:
        if not self.artefacts:
            return self.exact(x, elements)
        if angles is None:
            raise ValueError("artefacts need one angle per digit (N, 2)")
        out = x.clone()
        per_digit = (elements // self.factor.order, elements % self.factor.order)
        for side, (ys, xs) in enumerate(self.canvas.patches):
            moved = act_on_digits(x[:, :, ys, xs].float(), per_digit[side], self.factor, angles[:, side])
            out[:, :, ys, xs] = moved.round().clamp(0, 255).to(torch.uint8)
        return out


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
    group = digit_group(group_name)
    rng = np.random.default_rng(seed)
    source = {"train": "train", "val": "test", "test": "test"}
    return {split: sample_split(mnist[f"{source[split]}_images"], mnist[f"{source[split]}_labels"],
                                per_class[split], group, artefacts, rng, canvas)
            for split in ("train", "val", "test")}


# Compressed npz + `<path>.json` with its sha256 and metadata, checked on load.
save_ddmnist = save_splits
load_ddmnist = load_splits
