"""Groups as objects: a name read once for a domain; every subgroup of O acts on volumes exactly."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.algebra.actions import PLANAR_GROUPS, image_action, volume_action
from approxeq.algebra.groups import GroupError, octahedral, octahedral_matrices
from approxeq.algebra.symmetry import VOLUME_GROUPS, symmetry

# order, abelian, the orders of the elements (a fingerprint of the isomorphism type)
VOLUME_TYPES = {
    "C1": (1, True, [1]),
    "C2": (2, True, [1, 2]),
    "C3": (3, True, [1, 3, 3]),
    "C4": (4, True, [1, 2, 4, 4]),
    "D2": (4, True, [1, 2, 2, 2]),  # Klein four: not cyclic
    "D3": (6, False, [1, 2, 2, 2, 3, 3]),
    "D4": (8, False, [1, 2, 2, 2, 2, 2, 4, 4]),
    "T": (12, False, [1, 2, 2, 2] + [3] * 8),  # A4: no element of order 4 or 6
    "O": (24, False, [1] + [2] * 9 + [3] * 8 + [4] * 6),
}


@pytest.mark.parametrize("name", VOLUME_GROUPS)
def test_every_subgroup_of_o_has_its_isomorphism_type(name):
    acting = symmetry(name, "volume")
    order, abelian, element_orders = VOLUME_TYPES[name]
    assert acting.order == order and acting.group.is_abelian() == abelian
    assert sorted(acting.group.order_of(g) for g in range(order)) == element_orders
    # its matrices are rotations of the cube, closed under products as its table says
    keys = {m.tobytes() for m in octahedral_matrices()}
    assert all(m.tobytes() in keys for m in acting.matrices)
    for a in range(order):
        for b in range(order):
            assert np.array_equal(acting.matrices[a] @ acting.matrices[b],
                                  acting.matrices[acting.group.table[a, b]])


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(VOLUME_GROUPS), data=st.data())
def test_volume_action_is_a_homomorphism(name, data):
    acting = symmetry(name, "volume")
    g = data.draw(st.integers(0, acting.order - 1))
    h = data.draw(st.integers(0, acting.order - 1))
    act = acting.action(5)  # odd side: the centre is a voxel
    x = torch.randn(1, 2, 5, 5, 5)
    one = lambda k: torch.tensor([k])  # noqa: E731
    assert torch.equal(act(act(x, one(h)), one(g)), act(x, one(int(acting.group.table[g, h]))))


def test_o_on_volumes_is_the_medmnist_action_and_table():
    acting = symmetry("O", "volume")
    assert np.array_equal(acting.group.table, octahedral().table)
    assert torch.equal(acting.action(6).table, volume_action(octahedral(), 6).table)


@pytest.mark.parametrize("name", PLANAR_GROUPS)
def test_image_groups_are_the_planar_actions(name):
    acting = symmetry(name, "image")
    assert torch.equal(acting.action(8).table, image_action(acting.group, 8).table)


def test_the_domain_decides_what_a_name_means():
    image, volume = symmetry("C4", "image"), symmetry("C4", "volume")
    assert image.order == volume.order == 4
    assert image.action(4).shape == (4, 4) and volume.action(4).shape == (4, 4, 4)


@pytest.mark.parametrize("name, domain, message", [
    ("C3", "image", "does not act exactly on square images"),
    ("C8", "image", "C1, C2, C4, D1, D2, D4"),
    ("D1", "volume", "does not act exactly on cubic volumes"),
    ("C6", "volume", "C1, C2, C3, C4, D2, D3, D4, T, O"),
    ("C4", "sphere", "unknown domain"),
])
def test_a_group_that_does_not_act_exactly_is_refused_with_what_does(name, domain, message):
    with pytest.raises(GroupError, match=message):
        symmetry(name, domain)


@pytest.mark.parametrize("name, gspace, trivial", [
    ("C1", ("rot2dOnR2", {"N": 1}), 1), ("C2", ("rot2dOnR2", {"N": 2}), 1),
    ("C4", ("rot2dOnR2", {"N": 4}), 1), ("D1", ("flip2dOnR2", {"axis": 0.0}), 1),
    ("D2", ("flipRot2dOnR2", {"N": 2, "axis": 0.0}), (None, 1)),
    ("D4", ("flipRot2dOnR2", {"N": 4, "axis": 0.0}), (None, 1)),
])
def test_a_planar_group_owns_its_escnn_gspace_and_trivial_subgroup(name, gspace, trivial):
    acting = symmetry(name, "image")
    assert acting.escnn_gspace == gspace and acting.trivial_subgroup_id == trivial
    assert acting.rotations == gspace[1].get("N", 1)


def test_a_volume_group_has_no_planar_gspace():
    with pytest.raises(GroupError, match="planar groups only"):
        symmetry("O", "volume").escnn_gspace
