"""Regular and latent representations: homomorphisms, characters, product indices, refusal of d < |G|."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.algebra.groups import (
    GroupError,
    cyclic,
    dihedral,
    direct_product,
    group_from_name,
)
from approxeq.algebra.representations import (
    apply_matrices,
    kron_representation,
    latent_representation,
    regular_representation,
)

groups = st.one_of(st.integers(1, 8).map(cyclic), st.integers(1, 5).map(dihedral),
                   st.sampled_from(["C4xC4", "D1xD1", "D2xC2"]).map(group_from_name))


def assert_homomorphism(group, rep):
    assert torch.equal(rep[group.identity], torch.eye(rep.shape[-1]))
    products = torch.einsum("aij,bjk->abik", rep, rep)  # ρ(a)ρ(b) for every pair
    assert torch.equal(products, rep[torch.tensor(group.table)])


@settings(max_examples=20, deadline=None)
@given(groups)
def test_regular_representation_is_a_homomorphism_with_regular_character(group):
    rep = regular_representation(group)
    assert_homomorphism(group, rep)
    traces = torch.einsum("gii->g", rep)
    expected = torch.zeros(group.order)
    expected[group.identity] = group.order
    assert torch.equal(traces, expected)  # χ_reg(e) = |G|, χ_reg(g ≠ e) = 0
    for g in range(group.order):  # M[gh, h] = 1
        for h in range(group.order):
            assert rep[g, group.table[g, h], h] == 1


@pytest.mark.parametrize("g_name, h_name", [("C4", "C4"), ("D1", "D1"), ("D4", "D2"), ("C2", "D4")])
def test_product_regular_representation_is_kronecker_product(g_name, h_name):
    g, h = group_from_name(g_name), group_from_name(h_name)
    product = direct_product(g, h)
    kron = kron_representation(regular_representation(g), regular_representation(h))
    assert torch.equal(kron, regular_representation(product))
    assert_homomorphism(product, kron)


@pytest.mark.parametrize("name, d, copies, trivial", [
    ("C4xC4", 66, 4, 2), ("D1xD1", 66, 16, 2), ("D4xD4", 66, 1, 2), ("C2", 42, 21, 0)])
def test_latent_representation_blocks(name, d, copies, trivial):
    group = group_from_name(name)
    rep = latent_representation(group, d)
    n = group.order
    assert rep.shape == (n, d, d)
    assert_homomorphism(group, rep)
    reg = regular_representation(group)
    for c in range(copies):
        block = slice(c * n, (c + 1) * n)
        assert torch.equal(rep[:, block, block], reg)
    assert torch.equal(rep[:, copies * n:, copies * n:], torch.eye(trivial).expand(n, trivial, trivial))
    # character = copies·χ_reg + trivial
    traces = torch.einsum("gii->g", rep)
    assert traces[group.identity] == d
    assert all(traces[g] == trivial for g in range(n) if g != group.identity)


def test_latent_dimension_smaller_than_group_is_refused():
    with pytest.raises(GroupError, match=r"latent dimension 60 is smaller than \|D4xD4\| = 64"):
        latent_representation(group_from_name("D4xD4"), 60)


def test_apply_matrices_batches_per_sample_elements():
    group = cyclic(4)
    rep = latent_representation(group, 9)
    z = torch.randn(5, 9)
    g = torch.tensor([0, 1, 2, 3, 1])
    out = apply_matrices(rep, g, z)
    for b in range(5):
        assert torch.allclose(out[b], rep[g[b]] @ z[b])
