"""Finite groups as data: element names, a multiplication table, generators and a word per element.

Every action (on images, latents, ...) indexes group elements by the row/column order of the
table held here, so an action and the representation it is compared with always share one
element ordering and one multiplication law.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


class GroupError(ValueError):
    """A table that is not a group, or a group that cannot serve the requested construction."""


@dataclass(frozen=True)
class FiniteGroup:
    """A finite group given by its multiplication table: `table[a, b]` is the index of `a·b`.

    `generators` are element indices; `words[g]` is a tuple of generator positions whose product,
    left to right, equals `g` (the empty word is the identity). Words are derived by breadth-first
    search over the Cayley graph, so they are shortest words.

    `relations` are words in generator positions that multiply out (left to right) to the
    identity: the relators of a presentation of the group, e.g. D3 with generators (r, s) has
    ((0, 0, 0), (1, 1), (1, 0, 1, 0)) for r³ = s² = (s r)² = e. Each is checked against the table on
    construction; `presentation_order` checks that they define the group (and not a larger one).
    """

    name: str
    elements: tuple[str, ...]
    table: np.ndarray
    generators: tuple[int, ...]
    relations: tuple[tuple[int, ...], ...] = ()
    identity: int = field(init=False)
    inverses: np.ndarray = field(init=False)
    words: tuple[tuple[int, ...], ...] = field(init=False)

    def __post_init__(self):
        table = np.asarray(self.table, dtype=np.int64)
        table.setflags(write=False)
        object.__setattr__(self, "table", table)
        identity = _check_axioms(self.name, table)
        object.__setattr__(self, "identity", identity)
        inverses = np.argmax(table == identity, axis=1)
        inverses.setflags(write=False)
        object.__setattr__(self, "inverses", inverses)
        if len(self.elements) != len(table):
            raise GroupError(f"{self.name}: {len(self.elements)} names for {len(table)} elements")
        object.__setattr__(self, "generators", tuple(int(s) for s in self.generators))
        object.__setattr__(self, "words", _shortest_words(self.name, table, identity, self.generators))
        relations = tuple(tuple(int(p) for p in r) for r in self.relations)
        object.__setattr__(self, "relations", relations)
        for relation in relations:
            if any(not 0 <= p < len(self.generators) for p in relation):
                raise GroupError(f"{self.name}: relation {relation} uses a generator position outside "
                                 f"0..{len(self.generators) - 1}")
            product = self.word_element(relation)
            if product != identity:
                raise GroupError(f"{self.name}: relation {relation} does not hold: it multiplies out to "
                                 f"{self.elements[product]!r}, not the identity")

    @property
    def order(self) -> int:
        return len(self.table)

    def __len__(self) -> int:
        return self.order

    def mul(self, a: int, b: int) -> int:
        return int(self.table[a, b])

    def index(self, name: str) -> int:
        try:
            return self.elements.index(name)
        except ValueError:
            raise GroupError(f"{self.name} has no element named {name!r}; elements: {self.elements}") from None

    def is_abelian(self) -> bool:
        return bool(np.array_equal(self.table, self.table.T))

    def word_element(self, word) -> int:
        """The element that a word in generator positions multiplies out to, left to right."""
        product = self.identity
        for position in word:
            product = int(self.table[product, self.generators[position]])
        return product

    def order_of(self, g: int) -> int:
        """The order of element `g`: the least k >= 1 with g^k = e."""
        k, power = 1, int(g)
        while power != self.identity:
            power = int(self.table[power, g])
            k += 1
        return k

    def generator_orders(self) -> tuple[int, ...]:
        """The order of each generator, by position."""
        return tuple(self.order_of(s) for s in self.generators)


def _check_axioms(name: str, table: np.ndarray) -> int:
    """Closure, identity, inverses (Latin square) and associativity; return the identity index."""
    n = len(table)
    if table.shape != (n, n) or n == 0:
        raise GroupError(f"{name}: multiplication table must be square and non-empty, got {table.shape}")
    if table.min() < 0 or table.max() >= n:
        raise GroupError(f"{name}: table entries must lie in 0..{n - 1}")
    rows_ok = all(len(set(row)) == n for row in table.tolist())
    cols_ok = all(len(set(col)) == n for col in table.T.tolist())
    if not (rows_ok and cols_ok):
        raise GroupError(f"{name}: table is not a Latin square (no inverses / cancellation fails)")
    identities = [e for e in range(n) if np.array_equal(table[e], np.arange(n))
                  and np.array_equal(table[:, e], np.arange(n))]
    if not identities:
        raise GroupError(f"{name}: no two-sided identity")
    # (ab)c == a(bc) for all triples, vectorised: table[table[a, b], c] vs table[a, table[b, c]]
    left = table[table[:, :, None], np.arange(n)[None, None, :]]
    right = table[np.arange(n)[:, None, None], table[None, :, :]]
    if not np.array_equal(left, right):
        a, b, c = np.argwhere(left != right)[0]
        raise GroupError(f"{name}: not associative at ({a}·{b})·{c}")
    return identities[0]


def _shortest_words(name, table, identity, generators) -> tuple[tuple[int, ...], ...]:
    n = len(table)
    words: list[tuple[int, ...] | None] = [None] * n
    words[identity] = ()
    queue = deque([identity])
    while queue:
        g = queue.popleft()
        for position, s in enumerate(generators):
            h = int(table[g, s])
            if words[h] is None:
                words[h] = words[g] + (position,)
                queue.append(h)
    if any(w is None for w in words):
        raise GroupError(f"{name}: generators {generators} do not generate the group")
    return tuple(words)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Constructors
# ---------------------------------------------------------------------------------------------

def cyclic(n: int) -> FiniteGroup:
    """C_n = <r | r^n = e>, element k is r^k (for images: k quarter turns when n = 4)."""
    if n < 1:
        raise GroupError(f"cyclic group order must be >= 1, got {n}")
    k = np.arange(n)
    table = (k[:, None] + k[None, :]) % n
    names = tuple("e" if i == 0 else f"r{i}" for i in range(n))
    if n == 1:
        return FiniteGroup("C1", names, table, generators=())
    return FiniteGroup(f"C{n}", names, table, generators=(1,), relations=((0,) * n,))


def dihedral(n: int) -> FiniteGroup:
    """D_n of order 2n: element `f·n + k` is r^k s^f (rotation after reflection when acting).

    (r^a s^f)(r^b s^h) = r^(a + (-1)^f b) s^(f + h). D_1 is the group of one reflection {e, s}.
    Presentation: generators (r, s), relations r^n = s² = (s r)² = e; D_1 = <s | s² = e>.
    """
    if n < 1:
        raise GroupError(f"dihedral group index must be >= 1, got {n}")
    order = 2 * n
    table = np.empty((order, order), dtype=np.int64)
    for g in range(order):
        f, a = divmod(g, n)
        for h in range(order):
            fh, b = divmod(h, n)
            k = (a + (b if f == 0 else -b)) % n
            table[g, h] = ((f + fh) % 2) * n + k
    names = tuple(
        ("e" if k == 0 else f"r{k}") if f == 0 else ("s" if k == 0 else f"r{k}s")
        for f in range(2) for k in range(n)
    )
    if n == 1:
        return FiniteGroup("D1", names, table, generators=(1,), relations=((0, 0),))
    relations = ((0,) * n, (1, 1), (1, 0, 1, 0))
    return FiniteGroup(f"D{n}", names, table, generators=(1, n), relations=relations)


def direct_product(g: FiniteGroup, h: FiniteGroup) -> FiniteGroup:
    """G × H with element (a, b) at index a·|H| + b, matching kron(ρ_G(a), ρ_H(b)).

    Generators: those of G (positions 0..k−1), then those of H (positions k..). Relations: each
    factor's relations, and the commutator a b a⁻¹ b⁻¹ = e of every generator a of G with every
    generator b of H, written a b a^(ord a − 1) b^(ord b − 1) since words use generators only.
    """
    ng, nh = g.order, h.order
    a = np.arange(ng * nh) // nh
    b = np.arange(ng * nh) % nh
    table = g.table[a[:, None], a[None, :]] * nh + h.table[b[:, None], b[None, :]]
    names = tuple(f"({x},{y})" for x in g.elements for y in h.elements)
    generators = tuple(s * nh + h.identity for s in g.generators) + tuple(
        g.identity * nh + t for t in h.generators)
    k = len(g.generators)
    relations = list(g.relations) + [tuple(p + k for p in r) for r in h.relations]
    for i, order_a in enumerate(g.generator_orders()):
        for j, order_b in enumerate(h.generator_orders()):
            relations.append((i, k + j) + (i,) * (order_a - 1) + (k + j,) * (order_b - 1))
    return FiniteGroup(f"{g.name}x{h.name}", names, table, generators=generators,
                       relations=tuple(relations))


def group_from_matrices(name: str, matrices, generators, relations=(), names=None) -> FiniteGroup:
    """The group of a closed set of invertible matrices: table[a, b] = index of M_a @ M_b.

    `matrices` (n, d, d) must be closed under products (exact equality after rounding, so integer
    or otherwise exactly representable matrices); `generators` are indices into it.
    """
    mats = np.asarray(matrices)
    n = len(mats)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2] or n == 0:
        raise GroupError(f"{name}: expected matrices of shape (n, d, d), got {mats.shape}")
    keys = {_matrix_key(m): i for i, m in enumerate(mats)}
    if len(keys) != n:
        raise GroupError(f"{name}: the matrices are not distinct")
    products = np.einsum("aij,bjk->abik", mats, mats)
    table = np.empty((n, n), dtype=np.int64)
    for a in range(n):
        for b in range(n):
            index = keys.get(_matrix_key(products[a, b]))
            if index is None:
                raise GroupError(f"{name}: the matrices are not closed under multiplication "
                                 f"(M_{a} @ M_{b} is not among them)")
            table[a, b] = index
    if names is None:
        names = tuple(f"g{i}" for i in range(n))
    return FiniteGroup(name, tuple(names), table, generators=tuple(generators),
                       relations=tuple(relations))


def _matrix_key(m: np.ndarray) -> bytes:
    return (np.round(np.asarray(m, dtype=np.float64), 9) + 0.0).tobytes()  # + 0.0: no −0.0


_AXES = "xyz"


def octahedral_matrices() -> np.ndarray:
    """The 24 rotations of the cube as signed 3×3 permutation matrices (det +1), int64 (24, 3, 3).

    Order: the identity first, then the others sorted lexicographically by the flattened matrix;
    the same order as the elements of `octahedral()`.
    """
    from itertools import permutations, product

    mats = []
    for perm in permutations(range(3)):
        for signs in product((1, -1), repeat=3):
            m = np.zeros((3, 3), dtype=np.int64)
            for row, (col, sign) in enumerate(zip(perm, signs)):
                m[row, col] = sign
            if round(np.linalg.det(m)) == 1:
                mats.append(m)
    eye = np.eye(3, dtype=np.int64)
    others = sorted((m for m in mats if not np.array_equal(m, eye)), key=lambda m: tuple(m.ravel()))
    return np.stack([eye] + others)


def _signed_permutation_name(m: np.ndarray) -> str:
    """Images of the axes: column j of M is M e_j, e.g. "(y,-x,z)" for 90° about z."""
    if np.array_equal(m, np.eye(3, dtype=m.dtype)):
        return "e"
    images = []
    for j in range(3):
        i = int(np.flatnonzero(m[:, j])[0])
        images.append(("-" if m[i, j] < 0 else "") + _AXES[i])
    return "(" + ",".join(images) + ")"


# a: 90° about z (x → y → −x), b: 120° about the body diagonal (1, 1, 1) (x → y → z → x)
_OCTAHEDRAL_A = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
_OCTAHEDRAL_B = np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])


def octahedral() -> FiniteGroup:
    """O ≅ S4, the 24 rotations of the cube, element i acting as `octahedral_matrices()[i]`.

    table[a, b] is the index of M_a @ M_b. Generators (a, b): a = 90° about the z axis, b = 120°
    about the body diagonal (1, 1, 1); presentation <a, b | a⁴ = b³ = (a b)² = e> (a b is a 180°
    rotation about the face diagonal (0, 1, 1)). Names give the images of x, y, z, e.g. a = "(y,-x,z)".
    """
    mats = octahedral_matrices()
    index = {_matrix_key(m): i for i, m in enumerate(mats)}
    generators = (index[_matrix_key(_OCTAHEDRAL_A)], index[_matrix_key(_OCTAHEDRAL_B)])
    relations = ((0, 0, 0, 0), (1, 1, 1), (0, 1, 0, 1))
    return group_from_matrices("O", mats, generators, relations,
                               names=tuple(_signed_permutation_name(m) for m in mats))


def symmetric3() -> FiniteGroup:
    """S3 under the name "S3": the table, elements, generators (r, s) and relations of D3."""
    d3 = dihedral(3)
    return FiniteGroup("S3", d3.elements, d3.table, generators=d3.generators, relations=d3.relations)


_CONSTRUCTORS = {"C": cyclic, "D": dihedral}
_NAMED = {"O": octahedral, "S3": symmetric3}


def _factor(name: str) -> FiniteGroup:
    if name in _NAMED:
        return _NAMED[name]()
    return _CONSTRUCTORS[name[0]](int(name[1:]))


def group_from_name(name: str) -> FiniteGroup:
    """Parse names like "C4", "D1", "D3", "S3" (D3's table named S3), "O" (octahedral rotations,
    ≅ S4) and products such as "C4xC4" (direct products left to right)."""
    factors = name.split("x")
    try:
        groups = [_factor(f) for f in factors]
    except (KeyError, ValueError, IndexError):
        raise GroupError(
            f"unknown group {name!r}: expected C<n>, D<n>, S3, O or a product like C4xC4") from None
    result = groups[0]
    for other in groups[1:]:
        result = direct_product(result, other)
    return result
