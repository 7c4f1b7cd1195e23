"""Presentations (relations) of the groups, element orders, and the octahedral group O ≅ S4."""
from collections import Counter

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
    group_from_matrices,
    group_from_name,
    octahedral,
    octahedral_matrices,
    symmetric3,
)
from approxeq.algebra.presentations import presentation_order

NAMES = ["C1", "C2", "C4", "D1", "D2", "D3", "S3", "D4", "O", "C4xC4", "D1xD1", "D4xD4", "D3xC2"]

small_groups = st.one_of(st.integers(1, 8).map(cyclic), st.integers(1, 6).map(dihedral))


def multiply_out(group: FiniteGroup, word) -> int:
    product = group.identity
    for position in word:
        product = group.table[product, group.generators[position]]
    return int(product)


@pytest.mark.parametrize("name", NAMES)
def test_relations_hold_and_present_the_group(name):
    group = group_from_name(name)
    for relation in group.relations:
        assert multiply_out(group, relation) == group.identity
        assert group.word_element(relation) == group.identity
    # Todd–Coxeter: the relations define a group of exactly this order (a complete presentation)
    assert presentation_order(len(group.generators), group.relations) == group.order


@settings(max_examples=15, deadline=None)
@given(small_groups, small_groups)
def test_direct_product_presentations(g, h):
    product = direct_product(g, h)
    assert product.generator_orders() == g.generator_orders() + h.generator_orders()
    assert presentation_order(len(product.generators), product.relations) == product.order


def test_known_presentations():
    assert cyclic(4).relations == ((0, 0, 0, 0),)
    assert cyclic(1).relations == ()
    assert dihedral(3).relations == ((0, 0, 0), (1, 1), (1, 0, 1, 0))
    assert dihedral(1).relations == ((0, 0),)
    assert octahedral().relations == ((0, 0, 0, 0), (1, 1, 1), (0, 1, 0, 1))
    c2c4 = direct_product(cyclic(2), cyclic(4))
    assert c2c4.relations == ((0, 0), (1, 1, 1, 1), (0, 1, 0, 1, 1, 1))


def test_wrong_relations_are_refused():
    c4 = cyclic(4)
    with pytest.raises(GroupError, match="does not hold"):
        FiniteGroup("C4", c4.elements, c4.table, generators=(1,), relations=((0, 0),))
    d3 = dihedral(3)
    with pytest.raises(GroupError, match="does not hold"):
        FiniteGroup("D3", d3.elements, d3.table, generators=d3.generators, relations=((0, 1, 0, 1, 0, 1),))
    with pytest.raises(GroupError, match="position"):
        FiniteGroup("C4", c4.elements, c4.table, generators=(1,), relations=((1, 1),))
    # relations that hold but leave the group too large: Todd–Coxeter does not terminate in the limit
    with pytest.raises(GroupError, match="cosets"):
        presentation_order(2, [(0, 0), (1, 1)], max_cosets=500)  # infinite dihedral group
    assert presentation_order(2, [(0, 0, 0, 0), (1, 1), (1, 0, 1, 0)]) == 8  # D4
    assert presentation_order(2, [(0, 0, 0, 0), (1, 1), (1, 0, 1, 0), (0, 0)]) == 4  # collapses to D2


def test_element_and_generator_orders():
    c6 = cyclic(6)
    assert [c6.order_of(g) for g in range(6)] == [1, 6, 3, 2, 3, 6]
    assert c6.generator_orders() == (6,)
    assert dihedral(5).generator_orders() == (5, 2)
    assert dihedral(1).generator_orders() == (2,)
    assert cyclic(1).generator_orders() == ()


def test_named_groups_s3_and_o():
    s3, d3 = group_from_name("S3"), group_from_name("D3")
    assert s3.name == "S3" and d3.name == "D3"
    assert np.array_equal(s3.table, d3.table) and s3.generators == d3.generators
    assert s3.relations == d3.relations and s3.elements == d3.elements
    assert symmetric3().name == "S3"
    o = group_from_name("O")
    assert o.name == "O" and o.order == 24
    assert group_from_name("OxC2").order == 48
    with pytest.raises(GroupError, match="unknown group"):
        group_from_name("S4")


def test_octahedral_group_is_s4():
    o = octahedral()
    assert o.order == 24 and not o.is_abelian()
    assert o.identity == 0 and o.elements[0] == "e"
    assert len(set(o.elements)) == 24
    orders = Counter(o.order_of(g) for g in range(24))
    assert orders == {1: 1, 2: 9, 3: 8, 4: 6}
    assert o.generator_orders() == (4, 3)
    a, b = o.generators
    assert o.elements[a] == "(y,-x,z)"  # 90° about z: x → y, y → −x
    assert o.elements[b] == "(y,z,x)"   # 120° about (1, 1, 1): x → y → z → x
    assert o.order_of(o.mul(a, b)) == 2
    # centre of S4 is trivial
    centre = [g for g in range(24) if all(o.mul(g, h) == o.mul(h, g) for h in range(24))]
    assert centre == [o.identity]


def test_octahedral_matrices():
    mats = octahedral_matrices()
    assert mats.shape == (24, 3, 3) and np.issubdtype(mats.dtype, np.integer)
    assert len({m.tobytes() for m in mats}) == 24
    for m in mats:
        assert np.array_equal(m @ m.T, np.eye(3, dtype=int))
        assert round(np.linalg.det(m)) == 1
        assert sorted(np.abs(m).sum(axis=0)) == [1, 1, 1]  # signed permutation
    assert np.array_equal(mats[0], np.eye(3, dtype=int))
    rest = [tuple(m.ravel()) for m in mats[1:]]
    assert rest == sorted(rest)
    o = octahedral()
    for a in range(24):
        for b in range(24):
            assert np.array_equal(mats[a] @ mats[b], mats[o.table[a, b]])
    # the generator matrices, and every element's word multiplies out to its matrix
    assert np.array_equal(mats[o.generators[0]], [[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    assert np.array_equal(mats[o.generators[1]], [[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    for g, word in enumerate(o.words):
        product = np.eye(3, dtype=int)
        for position in word:
            product = product @ mats[o.generators[position]]
        assert np.array_equal(product, mats[g])


def test_group_from_matrices():
    rotation = np.array([[0, -1], [1, 0]])
    mats = np.stack([np.linalg.matrix_power(rotation, k) for k in range(4)])
    group = group_from_matrices("C4", mats, generators=(1,), relations=((0, 0, 0, 0),))
    assert np.array_equal(group.table, cyclic(4).table)
    with pytest.raises(GroupError, match="not closed"):
        group_from_matrices("bad", mats[:3], generators=(1,))
    with pytest.raises(GroupError, match="does not hold"):
        group_from_matrices("C4", mats, generators=(1,), relations=((0, 0),))
