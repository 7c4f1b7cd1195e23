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
    """

    name: str
    elements: tuple[str, ...]
    table: np.ndarray
    generators: tuple[int, ...]
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
        object.__setattr__(self, "words", _shortest_words(self.name, table, identity, self.generators))

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
    return FiniteGroup(f"C{n}", names, table, generators=(1,) if n > 1 else ())


def dihedral(n: int) -> FiniteGroup:
    """D_n of order 2n: element `f·n + k` is r^k s^f (rotation after reflection when acting).

    (r^a s^f)(r^b s^h) = r^(a + (-1)^f b) s^(f + h). D_1 is the group of one reflection {e, s}.
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
    generators = (1, n) if n > 1 else (n,)
    return FiniteGroup(f"D{n}", names, table, generators=generators)


def direct_product(g: FiniteGroup, h: FiniteGroup) -> FiniteGroup:
    """G × H with element (a, b) at index a·|H| + b, matching kron(ρ_G(a), ρ_H(b))."""
    ng, nh = g.order, h.order
    a = np.arange(ng * nh) // nh
    b = np.arange(ng * nh) % nh
    table = g.table[a[:, None], a[None, :]] * nh + h.table[b[:, None], b[None, :]]
    names = tuple(f"({x},{y})" for x in g.elements for y in h.elements)
    generators = tuple(s * nh + h.identity for s in g.generators) + tuple(
        g.identity * nh + t for t in h.generators)
    return FiniteGroup(f"{g.name}x{h.name}", names, table, generators=generators)


_CONSTRUCTORS = {"C": cyclic, "D": dihedral}


def group_from_name(name: str) -> FiniteGroup:
    """Parse names like "C4", "D1", "C4xC4" (direct products left to right)."""
    factors = name.split("x")
    try:
        groups = [_CONSTRUCTORS[f[0]](int(f[1:])) for f in factors]
    except (KeyError, ValueError, IndexError):
        raise GroupError(
            f"unknown group {name!r}: expected C<n>, D<n> or a product like C4xC4") from None
    result = groups[0]
    for other in groups[1:]:
        result = direct_product(result, other)
    return result
