"""Group actions on data as batched tensor functions `act(x, g)` of a batch of element indices.

Exact image actions (90° rotations, reflections) are pixel permutations. We store each element's
permutation as a row of an index table, so acting on a whole batch is a single `gather` on the
training device: no Python per sample and no host-device synchronisation.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from approxeq.algebra.groups import FiniteGroup, GroupError

Transform = Callable[[torch.Tensor], torch.Tensor]


PLANAR_GROUPS = ("C1", "C2", "C4", "D1", "D2", "D4")  # the subgroups of D4 that act on square images


def planar_parameters(group: FiniteGroup) -> tuple[int, bool]:
    """(n, reflections) of C_n (False) or D_n (True), n dividing 4: how the group acts on images,
    by quarter turns and the reflection of the rows (also how escnn's gspace of it is built)."""
    kind, n = group.name[0], int(group.name[1:]) if group.name[1:].isdigit() else -1
    if kind not in "CD" or n < 1 or 4 % n != 0:
        raise GroupError(f"no planar image action for {group.name}: supported are {', '.join(PLANAR_GROUPS)}")
    return n, kind == "D"


def planar_elements(group: FiniteGroup) -> list[tuple[int, int]]:
    """(counter-clockwise quarter turns, reflection bit) of each element of C_n / D_n, n dividing 4.

    C_n: element k is k·(4/n) quarter turns. D_n: element f·n + k is r^k s^f, s the reflection about
    the horizontal axis (rows reversed) applied first, then the rotation, which is the order that
    matches groups.dihedral's multiplication table.
    """
    n, reflections = planar_parameters(group)
    flips = (0, 1) if reflections else (0,)
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


# ---------------------------------------------------------------------------------------------
# Rotations of volumes (MedMNIST3D): the octahedral group O ≅ S4 as exact voxel permutations.
# ---------------------------------------------------------------------------------------------

def volume_permutations(matrices, size: int) -> torch.Tensor:
    """Index tables (n, size³) of the exact rotations `matrices` (n, 3, 3), signed permutation
    matrices, of a size×size×size grid about its centre.

    Array axis a holds coordinate a (axes 0, 1, 2 ↔ x, y, z), voxel index i ↔ coordinate
    i − (size − 1)/2. Row g sends voxel p to M_g p, i.e. T(g)v (p) = v(M_g⁻¹ p): the output at p reads
    the input at M_g⁻¹ p. So T(g)T(h) = T(gh) with the table of M_g @ M_h (an anti-homomorphism,
    pitfall 1, would read v(M_g p) instead).
    """
    mats = torch.as_tensor(matrices, dtype=torch.float64)
    if mats.ndim != 3 or mats.shape[1:] != (3, 3):
        raise GroupError(f"expected (n, 3, 3) rotation matrices, got {tuple(mats.shape)}")
    if not torch.equal(mats.abs().sum(1), torch.ones(len(mats), 3, dtype=torch.float64)) or \
            not torch.equal(mats.abs().sum(2), torch.ones(len(mats), 3, dtype=torch.float64)):
        raise GroupError("volume actions need signed permutation matrices (the cube's rotations): "
                         "anything else would need interpolation")
    centre = (size - 1) / 2
    grid = torch.stack(torch.meshgrid(*(torch.arange(size, dtype=torch.float64),) * 3,
                                      indexing="ij"), -1).reshape(-1, 3) - centre  # (size³, 3) output p
    # M⁻¹ = Mᵀ for a rotation: source coordinates q = Mᵀ p, row-vector form p @ M
    sources = torch.einsum("pi,nij->npj", grid, mats) + centre
    index = sources.round().long()
    flat = (index[..., 0] * size + index[..., 1]) * size + index[..., 2]
    return flat


def volume_action(group: FiniteGroup, size: int) -> PermutationAction:
    """The action of the octahedral group `O` (groups.octahedral, element i ↔ its matrix i) on
    (B, C, size, size, size) volumes, as one gather per batch."""
    from approxeq.algebra.groups import octahedral_matrices

    if group.name != "O":
        raise GroupError(f"no volume action for {group.name}: supported is O (the cube's rotations)")
    table = volume_permutations(octahedral_matrices(), size)
    return PermutationAction(table, (size, size, size))


def rot90_words(matrices) -> list[tuple[tuple[int, int], ...]]:
    """For each signed permutation matrix, a shortest sequence of `torch.rot90(v, 1, dims)` calls
    (dims among the axis pairs of a (..., X, Y, Z) volume, applied left to right) that equals the
    voxel permutation of `volume_permutations`. Used as the per-sample reference implementation
    (benchmarks and tests); training uses the one-gather `volume_action`."""
    size = 3
    sites = torch.arange(size ** 3).reshape(size, size, size)
    targets = {tuple(row.tolist()): i for i, row in enumerate(volume_permutations(matrices, size))}
    words: dict[int, tuple] = {}
    frontier = [((), sites)]
    seen = {tuple(sites.reshape(-1).tolist())}
    steps = [(0, 1), (0, 2), (1, 2)]
    while frontier and len(words) < len(targets):
        next_frontier = []
        for word, state in frontier:
            key = tuple(state.reshape(-1).tolist())
            if key in targets and targets[key] not in words:
                words[targets[key]] = word
            for dims in steps:
                moved = torch.rot90(state, 1, dims)
                moved_key = tuple(moved.reshape(-1).tolist())
                if moved_key not in seen:
                    seen.add(moved_key)
                    next_frontier.append((word + (dims,), moved))
        frontier = next_frontier
    if len(words) < len(targets):
        raise GroupError("some matrices are not compositions of quarter turns")
    return [words[i] for i in range(len(targets))]


def rot90_volume(v: torch.Tensor, word: tuple[tuple[int, int], ...]) -> torch.Tensor:
    """Apply a `rot90_words` word to a (..., X, Y, Z) volume."""
    for dims in word:
        v = torch.rot90(v, 1, (dims[0] - 3, dims[1] - 3))
    return v
