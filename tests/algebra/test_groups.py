"""Finite groups as data: axioms, words, and the constructors."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.algebra.groups import (
    FiniteGroup,
    GroupError,
    cyclic,
    dihedral,
    direct_product,
    group_from_name,
)

small_groups = st.one_of(
    st.integers(1, 8).map(cyclic),
    st.integers(1, 6).map(dihedral),
)


def assert_group(group: FiniteGroup) -> None:
    n, t, e = group.order, group.table, group.identity
    assert all(t[e, g] == g == t[g, e] for g in range(n))
    assert all(t[g, group.inverses[g]] == e == t[group.inverses[g], g] for g in range(n))
    for a in range(n):
        for b in range(n):
            assert np.array_equal(t[t[a, b]], t[a][t[b]])  # (ab)c == a(bc) for every c
    for g, word in enumerate(group.words):  # each word multiplies out to its element
        product = e
        for position in word:
            product = t[product, group.generators[position]]
        assert product == g


@settings(max_examples=25, deadline=None)
@given(small_groups)
def test_constructed_groups_satisfy_axioms(group):
    assert_group(group)


@settings(max_examples=15, deadline=None)
@given(small_groups, small_groups)
def test_direct_products_satisfy_axioms_and_index_convention(g, h):
    product = direct_product(g, h)
    assert_group(product)
    assert product.order == g.order * h.order
    for a in range(g.order):
        for b in range(h.order):
            for c in range(g.order):
                for d in range(h.order):
                    assert product.table[a * h.order + b, c * h.order + d] == (
                        g.table[a, c] * h.order + h.table[b, d])


@pytest.mark.parametrize("name, order, abelian", [
    ("C1", 1, True), ("C2", 2, True), ("C4", 4, True), ("D1", 2, True), ("D3", 6, False),
    ("D4", 8, False), ("C4xC4", 16, True), ("D1xD1", 4, True), ("D4xD4", 64, False)])
def test_named_groups(name, order, abelian):
    group = group_from_name(name)
    assert group.order == order
    assert group.is_abelian() == abelian


def test_dihedral_relations():
    n = 4
    group = dihedral(n)
    r, s = group.generators
    power = group.identity
    for _ in range(n):
        power = group.mul(power, r)
    assert power == group.identity
    assert group.mul(s, s) == group.identity
    srs = group.mul(group.mul(s, r), s)
    assert srs == group.inverses[r]  # s r s = r^-1


def test_non_groups_are_refused():
    with pytest.raises(GroupError, match="Latin square"):
        FiniteGroup("bad", ("a", "b"), np.array([[0, 0], [1, 1]]), generators=(1,))
    # a Latin square with identity that is not associative (order-5 loop)
    loop = np.array([[0, 1, 2, 3, 4], [1, 0, 3, 4, 2], [2, 4, 0, 1, 3], [3, 2, 4, 0, 1], [4, 3, 1, 2, 0]])
    with pytest.raises(GroupError, match="not associative"):
        FiniteGroup("loop", tuple("abcde"), loop, generators=(1, 2))
    with pytest.raises(GroupError, match="do not generate"):
        FiniteGroup("C4", ("e", "r", "r2", "r3"), cyclic(4).table, generators=(2,))
    with pytest.raises(GroupError, match="unknown group"):
        group_from_name("Q8")
