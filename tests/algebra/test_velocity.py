"""The C4 action on velocity fields: homomorphism, physical orientation, and pitfall 2 (sign of the
vector rotation) caught by the gradient / divergence / curl tests."""
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.algebra.groups import cyclic
from approxeq.algebra.velocity import (
    ccw_quarter_turns,
    curl,
    divergence,
    gradient,
    rotate_grid,
    rotate_velocity,
)

C4 = cyclic(4)
ELEMENTS = range(4)


def full(batch, g):
    return torch.full((batch,), g, dtype=torch.long)


def naive_rotate_velocity(v, g):
    """The defect of pitfall 2: rot90 with k > 0 on (y, x) and (u0, u1) → (−u1, u0) per turn."""
    out = v
    for _ in range(int(g) % 4):
        out = torch.rot90(out, 1, dims=(-2, -1))
        pairs = out.reshape(out.shape[0], -1, 2, *out.shape[-2:])
        out = torch.stack([-pairs[:, :, 1], pairs[:, :, 0]], dim=2).reshape(out.shape)
    return out


@pytest.mark.parametrize("act,shape", [(rotate_grid, (3, 5, 6, 6)), (rotate_grid, (3, 7, 7)),
                                       (rotate_velocity, (3, 20, 8, 8)), (rotate_velocity, (2, 2, 5, 5))])
def test_actions_are_homomorphisms_of_c4(act, shape):
    x = torch.randn(shape)
    batch = shape[0]
    assert torch.equal(act(x, full(batch, C4.identity)), x)
    for g in ELEMENTS:
        for h in ELEMENTS:
            assert torch.equal(act(act(x, full(batch, h)), full(batch, g)),
                               act(x, full(batch, C4.mul(g, h)))), (g, h)


def test_batched_elements_match_per_sample():
    x = torch.randn(8, 6, 10, 10)
    g = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    grid = rotate_grid(x, g)
    vel = rotate_velocity(x, g)
    for b in range(len(x)):
        assert torch.equal(grid[b], ccw_quarter_turns(x[b], int(g[b])))
        assert torch.equal(vel[b:b + 1], rotate_velocity(x[b:b + 1], g[b:b + 1]))
    # the latent action on feature maps does not permute channels
    for c in range(x.shape[1]):
        assert torch.equal(rotate_grid(x[:, c:c + 1], g)[:, 0], grid[:, c])


def test_physical_orientation():
    """One ccw quarter turn: +x becomes +y; the cell at (x = right edge, y = middle) goes to (x = middle, y = top)."""
    n = 9
    mid = n // 2
    v = torch.zeros(1, 2, n, n)
    v[0, 0] = 1.0  # u = (1, 0) everywhere
    turned = rotate_velocity(v, full(1, 1))
    assert torch.equal(turned[0, 0], torch.zeros(n, n))
    assert torch.equal(turned[0, 1], torch.ones(n, n))
    # four turns of the basis vectors: +x → +y → −x → −y
    expected = [(1, 0), (0, 1), (-1, 0), (0, -1)]
    for g, (ux, uy) in enumerate(expected):
        out = rotate_velocity(v, full(1, g))
        assert torch.equal(out[0, :, 0, 0], torch.tensor([float(ux), float(uy)]))

    phi = torch.zeros(1, n, n)
    phi[0, mid, n - 1] = 1.0  # row = y = middle, column = x = right edge
    turned = rotate_grid(phi, full(1, 1))
    assert turned[0, n - 1, mid] == 1.0  # row = y = top (largest row index: rows run upward), x = middle
    assert turned.sum() == 1.0


def test_rotation_is_a_physical_rotation_of_coordinates():
    """A linear field φ = a·x + b·y becomes φ'(p) = φ(R⁻¹p) = a·y − b·x (centred coordinates)."""
    n = 8
    c = torch.arange(n, dtype=torch.float64) - (n - 1) / 2
    y, x = torch.meshgrid(c, c, indexing="ij")  # rows are y, columns x
    a, b = 2.0, 3.0
    phi = (a * x + b * y)[None]
    assert torch.allclose(rotate_grid(phi, full(1, 1))[0], a * y - b * x)
    # and the rotated velocity of the uniform field (a, b) is R(a, b) = (−b, a)
    v = torch.stack([torch.full((n, n), a), torch.full((n, n), b)])[None]
    out = rotate_velocity(v, full(1, 1))
    assert torch.equal(out[0, 0], torch.full((n, n), -b)) and torch.equal(out[0, 1], torch.full((n, n), a))


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 12), seed=st.integers(0, 2**31 - 1), frames=st.integers(1, 3))
def test_gradient_commutes_with_rotation(n, seed, frames):
    """Pitfall 2: R(∇φ) == ∇(rot φ) for every element, exactly (central differences commute with rot90)."""
    gen = torch.Generator().manual_seed(seed)
    phi = torch.randn(2, frames, n, n, generator=gen)
    for g in ELEMENTS:
        gg = full(2, g)
        lhs = rotate_velocity(gradient(phi).reshape(2, frames * 2, n, n), gg)
        rhs = gradient(rotate_grid(phi, gg)).reshape(2, frames * 2, n, n)
        assert torch.equal(lhs, rhs), g


@settings(max_examples=25, deadline=None)
@given(n=st.integers(3, 12), seed=st.integers(0, 2**31 - 1))
def test_divergence_and_curl_commute_with_rotation(n, seed):
    gen = torch.Generator().manual_seed(seed)
    v = torch.randn(3, 2, n, n, generator=gen)
    for g in ELEMENTS:
        gg = full(3, g)
        rotated = rotate_velocity(v, gg)
        # exact: the same differences, some with the operands swapped and negated
        assert torch.equal(divergence(rotated), rotate_grid(divergence(v), gg))
        assert torch.equal(curl(rotated), rotate_grid(curl(v), gg))  # curl keeps its sign


def test_operators_on_known_fields():
    n = 6
    phi = torch.randn(n, n, dtype=torch.float64)
    assert torch.allclose(curl(gradient(phi)), torch.zeros(n, n, dtype=torch.float64), atol=1e-12)
    # a rigid ccw rotation field (−y, x) has curl 2 and divergence 0 away from the periodic seam
    c = torch.arange(n, dtype=torch.float64)
    y, x = torch.meshgrid(c, c, indexing="ij")
    v = torch.stack([-y, x])
    inner = (slice(1, -1), slice(1, -1))
    assert torch.allclose(curl(v)[inner], torch.full((n - 2, n - 2), 2.0, dtype=torch.float64))
    assert torch.allclose(divergence(v)[inner], torch.zeros(n - 2, n - 2, dtype=torch.float64))
    # gradient components are (∂/∂x, ∂/∂y) with y = row index
    assert torch.allclose(gradient(x)[0][inner], torch.ones(n - 2, n - 2, dtype=torch.float64))
    assert torch.allclose(gradient(x)[1][inner], torch.zeros(n - 2, n - 2, dtype=torch.float64))
    assert torch.allclose(gradient(y)[1][inner], torch.ones(n - 2, n - 2, dtype=torch.float64))


def test_naive_rotation_fails_the_gradient_test():
    """The defective convention still composes like C4 (R⁴ = I, R(a)R(b) = R(a+b)) ..."""
    x = torch.randn(2, 4, 8, 8)
    for g in ELEMENTS:
        for h in ELEMENTS:
            assert torch.equal(naive_rotate_velocity(naive_rotate_velocity(x, h), g),
                               naive_rotate_velocity(x, (g + h) % 4))
    # ... but is the negated field for odd rotations, which the gradient test catches: its own grid
    # rotation (rot90 with k = g on dims (y, x)) does not commute with its vector rotation.
    phi = torch.randn(2, 8, 8)
    for g in ELEMENTS:
        naive = naive_rotate_velocity(gradient(phi), g)
        correct = gradient(torch.rot90(phi, g, dims=(-2, -1)))
        if g % 2:
            assert not torch.allclose(naive, correct)
            assert torch.equal(naive, -correct)
        else:
            assert torch.equal(naive, correct)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="square"):
        rotate_grid(torch.zeros(1, 1, 4, 5), full(1, 1))
    with pytest.raises(ValueError, match="pairs"):
        rotate_velocity(torch.zeros(1, 3, 4, 4), full(1, 1))
    with pytest.raises(ValueError, match="shape"):
        rotate_grid(torch.zeros(2, 1, 4, 4), full(3, 1))
