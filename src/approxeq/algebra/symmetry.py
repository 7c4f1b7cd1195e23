"""A group together with the grid it acts on: the object a group's name becomes once it is read.

`symmetry("C4", "image")` and `symmetry("C4", "volume")` are both cyclic of order 4, but one turns
square images by quarter turns and the other turns cubes about the z axis; the pair (name, domain)
is read once, where the configuration enters a job, and everything after it (the action on the
data, the latent representation, the test set's transform) uses the object's one element order.

Images: the subgroups of D4 that act on a square grid exactly (actions.PLANAR_GROUPS).
Volumes: the subgroups of the cube's rotation group O ≅ S4, each up to conjugacy, with the axes
fixed below. Every element is a signed permutation matrix, so the action is an exact voxel
permutation (no interpolation).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from approxeq.algebra.actions import (
    PLANAR_GROUPS,
    PermutationAction,
    image_action,
    planar_parameters,
    volume_permutations,
)
from approxeq.algebra.groups import (
    FiniteGroup,
    GroupError,
    _matrix_key,
    group_from_matrices,
    group_from_name,
    octahedral,
    octahedral_matrices,
)

DOMAINS = ("image", "volume")


def _rotation(axis, quarter_turns_or_thirds: int, third: bool = False) -> np.ndarray:
    """The cube rotation about `axis` by k quarter turns (or, with third, k·120° about a body
    diagonal), as an integer matrix."""
    axis = np.asarray(axis, dtype=np.float64)
    angle = (2 * np.pi / 3 if third else np.pi / 2) * quarter_turns_or_thirds
    u = axis / np.linalg.norm(axis)
    cross = np.array([[0, -u[2], u[1]], [u[2], 0, -u[0]], [-u[1], u[0], 0]])
    m = np.cos(angle) * np.eye(3) + np.sin(angle) * cross + (1 - np.cos(angle)) * np.outer(u, u)
    return np.rint(m).astype(np.int64)


_Z, _X, _Y, _DIAGONAL, _EDGE = (0, 0, 1), (1, 0, 0), (0, 1, 0), (1, 1, 1), (1, -1, 0)

# The subgroups of O, one per conjugacy class, by their generators. Axes: C_n and D_n turn about z
# (D_n's half turn about x), C3 and D3 about the body diagonal (1, 1, 1) (D3's half turn about the
# face diagonal (1, −1, 0), perpendicular to it), D2 is the three half turns about x, y and z, T the
# tetrahedral rotations (A4). "D2" here is the normal Klein four-group of O (ℤ2 × ℤ2 in O's table).
VOLUME_GENERATORS: dict[str, tuple[np.ndarray, ...]] = {
    "C1": (),
    "C2": (_rotation(_Z, 2),),
    "C3": (_rotation(_DIAGONAL, 1, third=True),),
    "C4": (_rotation(_Z, 1),),
    "D2": (_rotation(_X, 2), _rotation(_Y, 2)),
    "D3": (_rotation(_DIAGONAL, 1, third=True), _rotation(_EDGE, 2)),
    "D4": (_rotation(_Z, 1), _rotation(_X, 2)),
    "T": (_rotation(_Z, 2), _rotation(_DIAGONAL, 1, third=True)),
    "O": (),  # O itself: groups.octahedral, the element order MedMNIST3D's runs use
}
VOLUME_GROUPS = tuple(VOLUME_GENERATORS)


def generated_matrices(generators) -> np.ndarray:
    """The closure of `generators` under products, in O's element order (octahedral_matrices: the
    identity first, then the others lexicographically), so a subgroup lists its elements in the
    order they have in O."""
    closure = {_matrix_key(np.eye(3))}
    frontier = [np.eye(3, dtype=np.int64)]
    while frontier:
        grown = []
        for m in frontier:
            for s in generators:
                product = m @ s
                if _matrix_key(product) not in closure:
                    closure.add(_matrix_key(product))
                    grown.append(product)
        frontier = grown
    return np.stack([m for m in octahedral_matrices() if _matrix_key(m) in closure])


def _volume_group(name: str) -> tuple[FiniteGroup, np.ndarray]:
    if name == "O":
        return octahedral(), octahedral_matrices()
    generators = VOLUME_GENERATORS[name]
    matrices = generated_matrices(generators)
    index = {_matrix_key(m): i for i, m in enumerate(matrices)}
    return (group_from_matrices(name, matrices, tuple(index[_matrix_key(g)] for g in generators)),
            matrices)


@dataclass(frozen=True)
class Symmetry:
    """A finite group acting exactly on a square image grid or a cubic volume grid.

    group: the abstract group (its table indexes every element of every action built from here);
    matrices: for volumes, element i's rotation matrix (signed permutation), else None.
    """

    name: str
    domain: str
    group: FiniteGroup
    matrices: np.ndarray | None = None

    @property
    def order(self) -> int:
        return self.group.order

    def action(self, size: int) -> PermutationAction:
        """The action on (B, C, size, size) images or (B, C, size, size, size) volumes, one gather
        per batch."""
        if self.domain == "image":
            return image_action(self.group, size)
        return PermutationAction(volume_permutations(self.matrices, size), (size,) * 3)

    @property
    def escnn_gspace(self) -> tuple[str, dict]:
        """escnn's gspace of this group on the plane, as (the `escnn.gspaces` builder, its arguments),
        in our conventions (actions.planar_elements): C_n's generator is torch.rot90 by 4/n quarter
        turns, the reflection torch.flip(x, (-2,)), escnn's with axis 0. Data, not the gspace: escnn
        is an optional package, imported where a network is built (nn/baselines/common.py)."""
        self._require_image("an escnn gspace")
        n, reflections = planar_parameters(self.group)
        if not reflections:
            return "rot2dOnR2", {"N": n}
        return ("flip2dOnR2", {"axis": 0.0}) if n == 1 else ("flipRot2dOnR2", {"N": n, "axis": 0.0})

    @property
    def trivial_subgroup_id(self):
        """escnn's id of the trivial subgroup of escnn_gspace's fibre group (Veefkind & Cesa's
        `restrict_id`): 1 for C_n and for the flip group D1, (None, 1) for D_n with n > 1 (no
        reflection, rotations of order 1)."""
        self._require_image("an escnn subgroup id")
        n, reflections = planar_parameters(self.group)
        return (None, 1) if reflections and n > 1 else 1

    @property
    def rotations(self) -> int:
        """N, the number of rotations (planar groups)."""
        self._require_image("a rotation count")
        return planar_parameters(self.group)[0]

    def _require_image(self, what: str) -> None:
        if self.domain != "image":
            raise GroupError(f"{what} is defined here for planar groups only, not {self}")

    def __str__(self) -> str:
        return f"{self.name} on {self.domain}s"


def symmetry(name: str, domain: str) -> Symmetry:
    """Read a group name for a domain ("image" or "volume"); a clear error lists what acts there."""
    if domain not in DOMAINS:
        raise GroupError(f"unknown domain {domain!r}; expected one of {DOMAINS}")
    if domain == "image":
        if name not in PLANAR_GROUPS:
            raise GroupError(f"{name!r} does not act exactly on square images; the subgroups of D4 "
                             f"that do: {', '.join(PLANAR_GROUPS)}")
        return Symmetry(name, domain, group_from_name(name))
    if name not in VOLUME_GENERATORS:
        raise GroupError(f"{name!r} does not act exactly on cubic volumes; the subgroups of O that "
                         f"do: {', '.join(VOLUME_GROUPS)}")
    group, matrices = _volume_group(name)
    return Symmetry(name, domain, group, matrices)
