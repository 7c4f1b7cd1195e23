"""The octahedral group O ≅ S4 acting on volumes: exact voxel permutations that form a homomorphism
with the same multiplication table as the regular representation (pitfall 1)."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.algebra.actions import (
    PermutationAction,
    rot90_volume,
    rot90_words,
    volume_action,
    volume_permutations,
)
from approxeq.algebra.groups import (
    GroupError,
    dihedral,
    octahedral,
    octahedral_matrices,
)
from approxeq.algebra.representations import (
    apply_matrices,
    latent_representation,
    regular_representation,
)

O = octahedral()
MATS = octahedral_matrices()


def homomorphism_failures(action, x):
    """Pairs (g, h) with T(g)(T(h)x) != T(gh)x, all 24×24, batched over h."""
    n = O.order
    failures = []
    for g in range(n):
        hs = torch.arange(n)
        xs = x.expand(n, *x.shape[1:])
        left = action(action(xs, hs), torch.full((n,), g))
        right = action(xs, torch.tensor(O.table[g]))
        failures += [(g, h) for h in range(n) if not torch.equal(left[h], right[h])]
    return failures


@pytest.mark.parametrize("size", [28, 5])
def test_volume_action_is_a_homomorphism_for_all_pairs(size):
    action = volume_action(O, size)
    x = torch.rand(1, 2, size, size, size)
    assert homomorphism_failures(action, x) == []
    assert torch.equal(action(x, torch.tensor([O.identity])), x)


def test_an_anti_homomorphism_fails_the_same_test():
    """Reading v(M_g p) instead of v(M_g⁻¹ p) (affine_grid + grid_sample with R) composes as
    T(g)T(h) = T(hg): the test above must catch it."""
    anti = PermutationAction(volume_permutations(np.transpose(MATS, (0, 2, 1)), 6), (6, 6, 6))
    failures = homomorphism_failures(anti, torch.rand(1, 1, 6, 6, 6))
    assert len(failures) > 0
    non_commuting = [(g, h) for g in range(24) for h in range(24) if O.mul(g, h) != O.mul(h, g)]
    assert set(failures) == set(non_commuting)


@settings(max_examples=30, deadline=None)
@given(g=st.integers(0, 23), voxel=st.tuples(*(st.integers(0, 27),) * 3))
def test_a_bright_voxel_lands_where_the_matrix_sends_it(g, voxel):
    size, centre = 28, 13.5
    v = torch.zeros(1, 1, size, size, size)
    v[(0, 0) + voxel] = 1.0
    moved = volume_action(O, size)(v, torch.tensor([g]))
    expected = MATS[g] @ (np.array(voxel) - centre) + centre
    assert moved.sum() == 1
    assert tuple(torch.nonzero(moved[0, 0])[0].tolist()) == tuple(int(round(c)) for c in expected)


def test_generators_rotate_coordinates_as_named():
    """a = 90° about z: x → y; the volume's axes 0, 1, 2 hold x, y, z."""
    a = O.generators[0]
    assert O.elements[a] == "(y,-x,z)"
    v = torch.zeros(1, 1, 5, 5, 5)
    v[0, 0, 4, 2, 2] = 1.0  # +x
    moved = volume_action(O, 5)(v, torch.tensor([a]))
    assert moved[0, 0, 2, 4, 2] == 1.0  # +y


def test_rot90_compositions_agree_with_the_gather():
    words = rot90_words(MATS)
    x = torch.rand(3, 1, 7, 7, 7)
    action = volume_action(O, 7)
    for g, word in enumerate(words):
        assert torch.equal(rot90_volume(x, word), action(x, torch.full((3,), g)))
    assert max(len(w) for w in words) <= 4


def test_one_call_transforms_a_batch_with_one_element_per_sample():
    action = volume_action(O, 6)
    x = torch.rand(24, 1, 6, 6, 6)
    g = torch.randperm(24)
    out = action(x, g)
    for b in range(24):
        assert torch.equal(out[b:b + 1], action(x[b:b + 1], g[b:b + 1]))


def test_non_rotation_matrices_are_refused():
    with pytest.raises(GroupError, match="signed permutation"):
        volume_permutations(np.array([[[0.5, 0, 0], [0, 1, 0], [0, 0, 1]]]), 4)
    with pytest.raises(GroupError, match="no volume action"):
        volume_action(dihedral(4), 4)


def test_an_equivariant_map_commutes_with_the_action_and_the_regular_representation():
    """E(v)_h = f(T(h⁻¹)v) for a linear functional f maps volumes equivariantly into the regular
    representation: E(T(g)v) = ρ_reg(g)E(v). With the anti-homomorphic action it does not."""
    size = 6
    action = volume_action(O, size)
    f = torch.randn(size ** 3, dtype=torch.float64)
    inverses = torch.tensor(O.inverses)

    def encode(v, act):
        n = len(v)
        rows = [act(v, inverses[h].expand(n)).reshape(n, -1) @ f for h in range(O.order)]
        return torch.stack(rows, 1)

    v = torch.rand(4, 1, size, size, size, dtype=torch.float64)
    g = torch.tensor([3, 8, 19, 22])
    rep = regular_representation(O, torch.float64)
    assert torch.allclose(encode(action(v, g), action), apply_matrices(rep, g, encode(v, action)))
    anti = PermutationAction(volume_permutations(np.transpose(MATS, (0, 2, 1)), size), (size,) * 3)
    assert not torch.allclose(encode(anti(v, g), anti), apply_matrices(rep, g, encode(v, anti)))


def test_latent_representation_is_two_regular_copies():
    rep = latent_representation(O, 48)
    for g in range(24):
        for h in range(24):
            assert torch.equal(rep[g] @ rep[h], rep[O.mul(g, h)])
    assert torch.equal(rep[:, :24, :24], regular_representation(O))
    assert torch.equal(rep[:, 24:, 24:], regular_representation(O))
