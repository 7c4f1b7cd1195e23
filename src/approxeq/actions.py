"""Group actions on data as batched tensor functions `act(x, g)` of a batch of element indices.

Exact image actions (90° rotations, reflections) are pixel permutations. We store each element's
permutation as a row of an index table, so acting on a whole batch is a single `gather` on the
training device: no Python per sample and no host-device synchronisation.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from .groups import FiniteGroup, GroupError

Transform = Callable[[torch.Tensor], torch.Tensor]


def planar_elements(group: FiniteGroup) -> list[tuple[int, int]]:
    """(counter-clockwise quarter turns, reflection bit) of each element of C_n / D_n, n dividing 4.

    C_n: element k is k·(4/n) quarter turns. D_n: element f·n + k is r^k s^f, s the reflection about
    the horizontal axis (rows reversed) applied first, then the rotation, which is the order that
    matches groups.dihedral's multiplication table.
    """
    kind, n = group.name[0], int(group.name[1:]) if group.name[1:].isdigit() else -1
    if kind not in "CD" or n < 1 or 4 % n != 0:
        raise GroupError(f"no planar image action for {group.name}: supported are C1, C2, C4, D1, D2, D4")
    flips = (0,) if kind == "C" else (0, 1)
    return [(k * (4 // n), f) for f in flips for k in range(n)]


def planar_transform(quarter_turns: int, flip: int) -> Transform:
    """The exact transform of tensors (..., H, W): reflect rows if `flip`, then rotate."""
    def apply(x: torch.Tensor) -> torch.Tensor:
        if flip:
            x = torch.flip(x, dims=(-2,))
        return torch.rot90(x, quarter_turns, dims=(-2, -1)) if quarter_turns else x
    return apply


def planar_transforms(group: FiniteGroup) -> list[Transform]:
    return [planar_transform(k, f) for k, f in planar_elements(group)]


class PermutationAction:
    """act(x, g): x of shape (B, C, *space), g of shape (B,), element g permuting the sites of `space`.

    `table[g]` lists, for each output site, the input site it is read from.
    """

    def __init__(self, table: torch.Tensor, shape: Sequence[int]):
        self.table = table.long()
        self.shape = tuple(shape)

    @classmethod
    def from_transforms(cls, transforms: Sequence[Transform], shape: Sequence[int]) -> "PermutationAction":
        sites = torch.arange(int(torch.tensor(shape).prod())).reshape(shape)
        table = torch.stack([t(sites).reshape(-1) for t in transforms])
        for row in table:  # every transform must be a bijection of the sites
            if not torch.equal(row.sort().values, torch.arange(len(row))):
                raise GroupError("transform is not a permutation of the grid sites")
        return cls(table, shape)

    @property
    def order(self) -> int:
        return len(self.table)

    def to(self, device) -> "PermutationAction":
        return PermutationAction(self.table.to(device), self.shape)

    def __call__(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        batch, channels = x.shape[:2]
        flat = x.reshape(batch, channels, -1)
        index = self.table[g].unsqueeze(1).expand(batch, channels, -1)
        return torch.gather(flat, 2, index).reshape(x.shape)


def image_action(group: FiniteGroup, size: int) -> PermutationAction:
    """The planar action of `group` on square `size`×`size` images."""
    return PermutationAction.from_transforms(planar_transforms(group), (size, size))


def patch_product_action(factors: Sequence[FiniteGroup], canvas: tuple[int, int],
                         patches: Sequence[tuple[slice, slice]]) -> PermutationAction:
    """G_1 × ... × G_k acting on a canvas, factor i transforming square patch i independently.

    Element indices follow groups.direct_product: (a, b) at a·|H| + b. Sites outside the patches
    are fixed. Used by DDMNIST: two 28×28 digits side by side, each with its own group element.
    """
    if len(factors) != len(patches):
        raise GroupError(f"{len(factors)} group factors for {len(patches)} patches")
    per_factor = [planar_transforms(group) for group in factors]
    sites = torch.arange(canvas[0] * canvas[1]).reshape(canvas)
    rows = [sites.clone()]
    for transforms, (ys, xs) in zip(per_factor, patches):
        if ys.stop - ys.start != xs.stop - xs.start:
            raise GroupError(f"patch {ys}, {xs} is not square: a quarter turn would not map it to itself")
        # rows so far × elements of this factor, in row-major (product) order
        rows = [_with_patch(r, t, ys, xs) for r in rows for t in transforms]
    table = torch.stack([r.reshape(-1) for r in rows])
    return PermutationAction(table, canvas)


def _with_patch(sites: torch.Tensor, transform: Transform, ys: slice, xs: slice) -> torch.Tensor:
    out = sites.clone()
    out[ys, xs] = transform(sites[ys, xs])
    return out


def trivial_action(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """ρ_Y for invariant targets (class labels)."""
    return x
