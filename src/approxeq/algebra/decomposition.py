"""The decomposition of (learned) matrix representations into irreducibles by characters
(characters.py), and eigenvalues of matrices of cyclic groups snapped to roots of unity.

`decompose` reads a representation off matrices given for every element (method.md, "Identifying
the learned representation"): multiplicities m_i = (1/|G|) Σ_g tr M_g · conj χ_i(g), per complex
irreducible and per real form (an irreducible real representation: a real-type irreducible, a
complex irreducible together with its conjugate, or twice a quaternionic one), normalised by
⟨φ, φ⟩ of the real form's character φ.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from approxeq.algebra.characters import CharacterTable, character_table
from approxeq.algebra.groups import FiniteGroup, GroupError

# ---------------------------------------------------------------------------------------------
# Matrices for every element, and decompositions
# ---------------------------------------------------------------------------------------------

def _to_numpy(matrices) -> np.ndarray:
    """numpy view of numpy / torch input; torch is detached, moved to the CPU and widened to
    float64 / complex128 (so float32 training weights are analysed in double precision)."""
    if hasattr(matrices, "detach"):  # torch.Tensor
        import torch

        matrices = matrices.detach().cpu()
        return matrices.to(torch.complex128 if matrices.is_complex() else torch.float64).numpy()
    return np.asarray(matrices)


def element_matrices(group: FiniteGroup, generator_matrices):
    """Extend matrices on the generators to every element along `group.words`: M_g is the
    product, left to right, of the generator matrices of g's word; the identity gets I.

    `generator_matrices` is (k, d, d) (or a sequence of k (d, d) matrices) in generator order,
    numpy or torch; returns (|G|, d, d) of the same kind (torch keeps the autograd graph).
    """
    is_torch = hasattr(generator_matrices, "detach") or (
        isinstance(generator_matrices, (list, tuple)) and generator_matrices
        and hasattr(generator_matrices[0], "detach"))
    if is_torch:
        import torch

        gens = generator_matrices if hasattr(generator_matrices, "detach") else torch.stack(
            list(generator_matrices))
        eye = torch.eye(gens.shape[-1], dtype=gens.dtype, device=gens.device)
        stack = torch.stack
    else:
        gens = np.asarray(generator_matrices)
        eye = np.eye(gens.shape[-1], dtype=gens.dtype if gens.size else np.float64)
        stack = np.stack
    if len(gens) != len(group.generators) or gens.ndim != 3 or gens.shape[1] != gens.shape[2]:
        raise GroupError(f"{group.name}: expected {len(group.generators)} square generator matrices "
                         f"(k, d, d), got shape {tuple(gens.shape)}")
    by_word = {(): eye}
    for word in sorted(set(group.words), key=len):  # BFS words: every prefix is a shorter word
        if word:
            by_word[word] = by_word[word[:-1]] @ gens[word[-1]]
    return stack([by_word[w] for w in group.words])


def homomorphism_error(group: FiniteGroup, matrices) -> float:
    """max over (g, h) of ‖M_g M_h − M_gh‖_F / ‖M_gh‖_F: 0 for a representation."""
    mats = _to_numpy(matrices)
    _check_shape(group, mats)
    norms = np.maximum(np.linalg.norm(mats, axis=(1, 2)), np.finfo(np.float64).tiny)
    worst = 0.0
    for g in range(group.order):
        products = np.einsum("ij,hjk->hik", mats[g], mats)
        targets = group.table[g]
        errors = np.linalg.norm(products - mats[targets], axis=(1, 2)) / norms[targets]
        worst = max(worst, float(errors.max()))
    return worst


def _check_shape(group: FiniteGroup, mats: np.ndarray) -> None:
    if mats.ndim != 3 or mats.shape[0] != group.order or mats.shape[1] != mats.shape[2]:
        raise GroupError(f"{group.name}: expected matrices of shape (|G| = {group.order}, d, d), "
                         f"got {mats.shape}")


@dataclass(frozen=True)
class Decomposition:
    """Multiplicities of the irreducibles in a set of matrices M_g (one per element).

    Per complex irreducible i (rows of the character table): `multiplicities` (real part of
    m_i = ⟨χ, χ_i⟩), `multiplicities_complex`, `max_imaginary` (max |Im m_i|), `nearest_integers`,
    `distance_to_integers` (max |m_i − round m_i|). Per real form f (`real_labels`, `real_dims`):
    `real_multiplicities` ⟨χ, φ_f⟩/⟨φ_f, φ_f⟩ and `real_nearest_integers`, `real_distance_to_integers`.
    `character` is tr M_g per element; `homomorphism_error` as in `homomorphism_error`.
    """

    group_name: str
    dimension: int
    labels: tuple[str, ...]
    dims: np.ndarray
    multiplicities: np.ndarray
    multiplicities_complex: np.ndarray
    max_imaginary: float
    nearest_integers: np.ndarray
    distance_to_integers: float
    real_labels: tuple[str, ...]
    real_dims: np.ndarray
    real_multiplicities: np.ndarray
    real_nearest_integers: np.ndarray
    real_distance_to_integers: float
    homomorphism_error: float
    character: np.ndarray

    def as_dict(self) -> dict:
        """Plain-Python summary (JSON-serialisable), keyed by irreducible / real-form label."""
        return {
            "group": self.group_name,
            "dimension": self.dimension,
            "multiplicities": {l: float(m) for l, m in zip(self.labels, self.multiplicities)},
            "nearest_integers": {l: int(m) for l, m in zip(self.labels, self.nearest_integers)},
            "distance_to_integers": self.distance_to_integers,
            "max_imaginary": self.max_imaginary,
            "real_multiplicities": {l: float(m) for l, m in zip(self.real_labels, self.real_multiplicities)},
            "real_nearest_integers": {l: int(m) for l, m in zip(self.real_labels, self.real_nearest_integers)},
            "real_distance_to_integers": self.real_distance_to_integers,
            "homomorphism_error": self.homomorphism_error,
        }


def decompose_character(group: FiniteGroup, character, table: CharacterTable | None = None):
    """(multiplicities per irreducible (complex), multiplicities per real form (real)) of a class
    function given per element (|G|,) — e.g. traces of matrices."""
    table = character_table(group) if table is None else table
    chi = np.asarray(character, dtype=np.complex128)
    if chi.shape != (group.order,):
        raise GroupError(f"{group.name}: expected a character of shape ({group.order},), got {chi.shape}")
    irreducible = table.per_element()
    m = chi @ irreducible.conj().T / group.order
    real = []
    for form in table.real_forms:
        phi = form.character[table.class_of]
        real.append((chi @ phi).real / (phi @ phi))
    return m, np.array(real)


def decompose(group: FiniteGroup, matrices, table: CharacterTable | None = None) -> Decomposition:
    """Decompose M_g (|G|, d, d), numpy or torch, real or complex, into irreducibles (module doc)."""
    mats = _to_numpy(matrices)
    _check_shape(group, mats)
    table = character_table(group) if table is None else table
    character = np.trace(mats, axis1=1, axis2=2).astype(np.complex128)
    m, real = decompose_character(group, character, table)
    nearest = np.round(m.real).astype(np.int64)
    real_nearest = np.round(real).astype(np.int64)
    return Decomposition(
        group_name=group.name,
        dimension=int(mats.shape[1]),
        labels=table.labels,
        dims=table.dims,
        multiplicities=m.real,
        multiplicities_complex=m,
        max_imaginary=float(np.abs(m.imag).max()),
        nearest_integers=nearest,
        distance_to_integers=float(np.abs(m.real - nearest).max()),
        real_labels=tuple(f.label for f in table.real_forms),
        real_dims=np.array([f.dim for f in table.real_forms], dtype=np.int64),
        real_multiplicities=real,
        real_nearest_integers=real_nearest,
        real_distance_to_integers=float(np.abs(real - real_nearest).max()),
        homomorphism_error=homomorphism_error(group, mats),
        character=character,
    )


# ---------------------------------------------------------------------------------------------
# Eigenvalues snapped to roots of unity (abelian C_n)
# ---------------------------------------------------------------------------------------------

def root_label(k: int, n: int) -> str:
    """"1", "i", "-1", "-i" where e^{2πik/n} is one of them, else "e^(2πi·k/n)"."""
    k %= n
    if (4 * k) % n == 0:
        return ("1", "i", "-1", "-i")[4 * k // n]
    return f"e^(2πi·{k}/{n})"


def snap_eigenvalues(matrix, n: int) -> dict:
    """Eigenvalues of a square matrix snapped to the nearest n-th roots of unity e^{2πik/n}.

    Returns {"n", "eigenvalues" (complex array), "roots" (complex (n,)), "labels" (root labels),
    "assignment" (k per eigenvalue), "distances" (|λ − root|), "counts" (list, index k),
    "counts_by_label" (dict), "max_distance" (max |λ − root|; large for a poorly trained matrix)}.
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    m = _to_numpy(matrix)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"expected a square matrix, got shape {m.shape}")
    eigenvalues = np.linalg.eigvals(m.astype(np.complex128))
    roots = np.exp(2j * np.pi * np.arange(n) / n)
    distances_all = np.abs(eigenvalues[:, None] - roots[None, :])
    assignment = np.argmin(distances_all, axis=1)
    distances = distances_all[np.arange(len(eigenvalues)), assignment]
    counts = np.bincount(assignment, minlength=n)
    labels = [root_label(k, n) for k in range(n)]
    return {
        "n": n,
        "eigenvalues": eigenvalues,
        "roots": roots,
        "labels": labels,
        "assignment": assignment,
        "distances": distances,
        "counts": [int(c) for c in counts],
        "counts_by_label": {label: int(c) for label, c in zip(labels, counts)},
        "max_distance": float(distances.max()) if len(distances) else 0.0,
    }
