"""Characters of finite groups (decompositions of representations by them: decomposition.py).

Pure numpy. The character table is computed from the multiplication table alone by the
Burnside–Dixon method: the class constants c_ijk (C_i C_j = Σ_k c_ijk C_k) give commuting matrices
A_i[j, k] = c_ijk whose common eigenvectors are the central characters ω_χ(C_k) = |C_k| χ(g_k)/χ(e);
one random linear combination of the A_i has them as its eigenvectors. χ is then rescaled so that
Σ_g |χ(g)|² = |G| (χ(e) = dim χ).

`decompose` reads a representation off matrices given for every element (method.md, "Identifying
the learned representation"): multiplicities m_i = (1/|G|) Σ_g tr M_g · conj χ_i(g), per complex
irreducible and per real form (an irreducible real representation: a real-type irreducible, a
complex irreducible together with its conjugate, or twice a quaternionic one), normalised by
⟨φ, φ⟩ of the real form's character φ.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from approxeq.algebra.groups import FiniteGroup, GroupError

_SNAP = 1e-9  # character values within this of an integer (real or imaginary part) are snapped
_CHECK = 1e-8  # tolerance of the orthogonality checks on a computed table


# ---------------------------------------------------------------------------------------------
# Conjugacy classes and the character table
# ---------------------------------------------------------------------------------------------

def conjugacy_classes(group: FiniteGroup) -> list[tuple[int, ...]]:
    """Conjugacy classes as sorted tuples of element indices; the identity's class first, the
    others ordered by their smallest element."""
    n, t, inv = group.order, group.table, group.inverses
    seen = np.zeros(n, dtype=bool)
    classes = []
    for g in range(n):
        if seen[g]:
            continue
        members = np.unique(t[t[np.arange(n), g], inv])  # x g x⁻¹ for every x
        seen[members] = True
        classes.append(tuple(int(m) for m in members))
    classes.sort(key=lambda c: (group.identity not in c, c[0]))
    return classes


@dataclass(frozen=True)
class RealForm:
    """An irreducible real representation in terms of the complex irreducibles.

    kind "real": one irreducible with a real form (Frobenius–Schur indicator +1), dim = its dim;
    "complex": an irreducible with non-real character and its conjugate (indicator 0), character
    χ + conj χ, dim = 2·dim χ; "quaternionic" (indicator −1): character 2χ, dim = 2·dim χ.
    `character` is the real form's character per class.
    """

    label: str
    irreps: tuple[int, ...]
    kind: str
    dim: int
    character: np.ndarray


@dataclass(frozen=True)
class CharacterTable:
    """Irreducible characters of a group, one row per irreducible, one column per class.

    Rows: the trivial character first, then by dimension, then by the characters' values
    (argument in [0, 2π) of the value on each class, left to right). `class_of[g]` is the class
    index of element g. `indicators` are Frobenius–Schur indicators (+1 real, 0 complex,
    −1 quaternionic), `conjugates[i]` the row of conj χ_i.
    """

    group_name: str
    order: int
    classes: tuple[tuple[int, ...], ...]
    class_sizes: np.ndarray
    class_of: np.ndarray
    characters: np.ndarray
    dims: np.ndarray
    labels: tuple[str, ...]
    indicators: np.ndarray
    conjugates: np.ndarray
    real_forms: tuple[RealForm, ...] = field(default=())

    @property
    def n_irreps(self) -> int:
        return len(self.characters)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def per_element(self) -> np.ndarray:
        """(n_irreps, |G|) complex: χ_i(g) for every element g in table order."""
        return self.characters[:, self.class_of]

    def inner(self, a: np.ndarray, b: np.ndarray) -> complex:
        """⟨a, b⟩ = (1/|G|) Σ_g a(g) conj b(g) for class functions given per class."""
        return complex(np.sum(self.class_sizes * a * np.conj(b)) / self.order)


def _class_matrices(group: FiniteGroup, classes, class_of) -> np.ndarray:
    """A[i, j, k] = c_ijk = #{(x, y) ∈ C_i × C_j : x y = z} for a fixed z ∈ C_k."""
    r = len(classes)
    a = np.zeros((r, r, r))
    x = np.arange(group.order)
    for k, members in enumerate(classes):
        z = members[0]
        y = group.table[group.inverses[x], z]  # x y = z  ⇔  y = x⁻¹ z
        np.add.at(a, (class_of[x], class_of[y], k), 1)
    return a


def _snap(values: np.ndarray) -> np.ndarray:
    re, im = values.real.copy(), values.imag.copy()
    for part in (re, im):
        near = np.abs(part - np.round(part)) < _SNAP
        part[near] = np.round(part[near])
    return (re + 0.0) + 1j * (im + 0.0)  # + 0.0: no −0.0 in printed tables


def character_table(group: FiniteGroup, seed: int = 0, attempts: int = 8) -> CharacterTable:
    """Irreducible characters by Burnside–Dixon (see the module docstring), checked against both
    orthogonality relations, Σ dim² = |G| and #irreps = #classes; GroupError if no attempt passes."""
    classes = conjugacy_classes(group)
    r, n = len(classes), group.order
    sizes = np.array([len(c) for c in classes], dtype=np.int64)
    class_of = np.empty(n, dtype=np.int64)
    for k, members in enumerate(classes):
        class_of[list(members)] = k
    a = _class_matrices(group, classes, class_of)
    rng = np.random.default_rng(seed)
    problem = "no attempt"
    for _ in range(attempts):
        coefficients = rng.uniform(1.0, 2.0, size=r)
        combination = np.einsum("i,ijk->jk", coefficients, a)
        eigenvalues, vectors = np.linalg.eig(combination)
        gaps = np.abs(eigenvalues[:, None] - eigenvalues[None, :])
        np.fill_diagonal(gaps, np.inf)
        if r > 1 and gaps.min() < 1e-6 * max(1.0, np.abs(eigenvalues).max()):
            problem = "repeated eigenvalues of the combined class matrix"
            continue
        omega = vectors / vectors[0]  # ω(C_e) = 1; rows: classes, columns: irreducibles
        # each column must be a common eigenvector of every A_i with eigenvalue ω_i
        residual = np.einsum("ijk,kc->ijc", a, omega) - omega[:, None, :] * omega[None, :, :]
        if np.abs(residual).max() > 1e-6 * max(1.0, np.abs(omega).max() ** 2):
            problem = "eigenvectors are not common eigenvectors of the class matrices"
            continue
        dims = np.sqrt(n / np.sum(np.abs(omega) ** 2 / sizes[:, None], axis=0))
        if np.abs(dims - np.round(dims)).max() > 1e-6:
            problem = f"non-integral dimensions {dims}"
            continue
        dims = np.round(dims).astype(np.int64)
        chars = _snap((omega * dims[None, :] / sizes[:, None]).T)
        try:
            _check_table(chars, sizes, dims, n)
        except GroupError as error:
            problem = str(error)
            continue
        return _finish(group, classes, sizes, class_of, chars, dims)
    raise GroupError(f"{group.name}: Burnside–Dixon failed ({problem})")


def _check_table(chars: np.ndarray, sizes: np.ndarray, dims: np.ndarray, n: int) -> None:
    r = len(sizes)
    if len(chars) != r:
        raise GroupError(f"{len(chars)} irreducibles for {r} classes")
    if int(np.sum(dims ** 2)) != n:
        raise GroupError(f"Σ dim² = {int(np.sum(dims ** 2))} ≠ |G| = {n}")
    rows = (chars * sizes) @ chars.conj().T / n
    if np.abs(rows - np.eye(r)).max() > _CHECK:
        raise GroupError("first orthogonality relation fails")
    columns = chars.T @ chars.conj()
    if np.abs(columns - np.diag(n / sizes)).max() > _CHECK * n:
        raise GroupError("second orthogonality relation fails")


def _sort_key(chars_row: np.ndarray, dim: int):
    trivial = bool(np.allclose(chars_row, 1.0))
    values = []
    for v in chars_row:
        magnitude = abs(v)
        angle = float(np.angle(v)) % (2 * np.pi) if magnitude > 1e-6 else -1.0
        if angle > 2 * np.pi - 1e-6:
            angle = 0.0
        values.append((round(angle, 6), -round(magnitude, 6)))
    return (not trivial, dim, tuple(values))


def _finish(group, classes, sizes, class_of, chars, dims) -> CharacterTable:
    order = sorted(range(len(chars)), key=lambda i: _sort_key(chars[i], int(dims[i])))
    chars, dims = chars[order], dims[order]
    chars.setflags(write=False)
    n = group.order
    per_element = chars[:, class_of]
    squares = group.table[np.arange(n), np.arange(n)]
    indicators = np.round(per_element[:, squares].sum(axis=1).real / n).astype(np.int64)
    conj_rows = chars.conj()
    conjugates = np.array([int(np.argmin(np.abs(chars - c).max(axis=1))) for c in conj_rows])
    labels = _labels(group, chars, dims, class_of)
    table = CharacterTable(group.name, n, tuple(classes), sizes, class_of, chars, dims, labels,
                           indicators, conjugates)
    object.__setattr__(table, "real_forms", _real_forms(table))
    return table


def _labels(group: FiniteGroup, chars, dims, class_of) -> tuple[str, ...]:
    """χ_k (cyclic: r ↦ e^{2πik/n}) / χ_(k1,k2,..) (other abelian groups, one k per generator);
    trivial/sign/standard for S3 ≅ D3; "sign" for the only non-trivial ±1 character of a
    non-abelian group; otherwise "trivial" and "dim-d #j" (j counting from 1 within dimension d)."""
    r = len(chars)
    if group.is_abelian() and group.generators:
        labels = []
        for row in chars:
            ks = []
            for s in group.generators:
                order = group.order_of(s)
                ks.append(int(round(np.angle(row[class_of[s]]) * order / (2 * np.pi))) % order)
            labels.append(f"χ_{ks[0]}" if len(ks) == 1 else "χ_(" + ",".join(map(str, ks)) + ")")
        return tuple(labels)
    trivial = [bool(np.allclose(row, 1.0)) for row in chars]
    signs = [i for i in range(r) if not trivial[i] and dims[i] == 1
             and np.allclose(np.abs(chars[i].real), 1.0) and np.allclose(chars[i].imag, 0.0)]
    labels, counts = [], {}
    s3 = group.order == 6 and not group.is_abelian()
    for i in range(r):
        if trivial[i]:
            labels.append("trivial")
        elif len(signs) == 1 and i == signs[0]:
            labels.append("sign")
        elif s3 and dims[i] == 2:
            labels.append("standard")
        else:
            d = int(dims[i])
            counts[d] = counts.get(d, 0) + 1
            labels.append(f"dim-{d} #{counts[d]}")
    return tuple(labels)


def _real_forms(table: CharacterTable) -> tuple[RealForm, ...]:
    forms, done = [], set()
    for i in range(table.n_irreps):
        if i in done:
            continue
        label, dim, chi = table.labels[i], int(table.dims[i]), table.characters[i]
        if table.indicators[i] == 1:
            forms.append(RealForm(label, (i,), "real", dim, chi.real.copy()))
            done.add(i)
        elif table.indicators[i] == 0:
            j = int(table.conjugates[i])
            forms.append(RealForm(f"{label}⊕{table.labels[j]}", (i, j), "complex", 2 * dim,
                                  (chi + table.characters[j]).real))
            done.update((i, j))
        else:
            forms.append(RealForm(f"2·{label}", (i,), "quaternionic", 2 * dim, 2 * chi.real))
            done.add(i)
    return tuple(forms)
