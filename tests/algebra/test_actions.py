"""Every image action is a homomorphism with the group's own multiplication table."""
import pytest
import torch

from approxeq.algebra.actions import PermutationAction, image_action, planar_elements
from approxeq.algebra.groups import GroupError, group_from_name
from approxeq.algebra.rotations import rotate_bilinear
from approxeq.data.ddmnist import Canvas, pair_action, product_group


def assert_action_homomorphism(action, group, x):
    """T(g)(T(h)x) == T(gh)x for all pairs, and T(e) = id, exactly."""
    n = group.order
    batch = len(x)
    assert torch.equal(action(x, torch.full((batch,), group.identity)), x)
    for g in range(n):
        tg = torch.full((batch,), g)
        for h in range(n):
            th = torch.full((batch,), h)
            gh = torch.full((batch,), group.mul(g, h))
            assert torch.equal(action(action(x, th), tg), action(x, gh)), (g, h)


@pytest.mark.parametrize("name", ["C1", "C2", "C4", "D1", "D2", "D4"])
def test_planar_image_actions_are_homomorphisms(name):
    group = group_from_name(name)
    x = torch.rand(3, 2, 7, 7)  # odd size: the centre pixel is fixed, rotations still exact
    assert_action_homomorphism(image_action(group, 7), group, x)


@pytest.mark.parametrize("name", ["C4", "D1", "D4"])
def test_ddmnist_product_actions_are_homomorphisms(name):
    group = product_group(name)
    x = torch.rand(2, 1, 56, 56)
    assert_action_homomorphism(pair_action(name), group, x)


def test_generators_act_as_stated():
    x = torch.rand(1, 1, 5, 5)
    c4 = group_from_name("C4")
    assert torch.equal(image_action(c4, 5)(x, torch.tensor([1])), torch.rot90(x, 1, (-2, -1)))
    d1 = group_from_name("D1")
    assert torch.equal(image_action(d1, 5)(x, torch.tensor([1])), torch.flip(x, (-2,)))  # horizontal axis
    d4 = group_from_name("D4")
    assert planar_elements(d4) == [(0, 0), (1, 0), (2, 0), (3, 0), (0, 1), (1, 1), (2, 1), (3, 1)]


def test_action_acts_per_sample():
    group = group_from_name("D4")
    action = image_action(group, 6)
    x = torch.rand(8, 1, 6, 6)
    g = torch.arange(8)
    out = action(x, g)
    for b in range(8):
        assert torch.equal(out[b:b + 1], action(x[b:b + 1], g[b:b + 1]))


def test_pair_action_moves_each_digit_within_its_own_patch():
    canvas = Canvas()
    left, right = canvas.patches
    x = torch.zeros(1, 1, 56, 56)
    x[..., left[0], left[1]] = torch.rand(28, 28)
    x[..., right[0], right[1]] = torch.rand(28, 28)
    g = torch.tensor([1 * 4 + 2])  # (r, r²): left turned once, right twice
    out = pair_action("C4")(x, g)
    assert torch.equal(out[..., left[0], left[1]], torch.rot90(x[..., left[0], left[1]], 1, (-2, -1)))
    assert torch.equal(out[..., right[0], right[1]], torch.rot90(x[..., right[0], right[1]], 2, (-2, -1)))
    outside = torch.ones(56, 56, dtype=torch.bool)
    outside[left] = outside[right] = False
    assert torch.equal(out[..., outside], x[..., outside])


def test_canvas_geometry():
    canvas = Canvas()
    (ly, lx), (ry, rx) = canvas.patches
    assert (ly.start, ly.stop, lx.start, lx.stop) == (14, 42, 0, 28)
    assert (ry.start, ry.stop, rx.start, rx.stop) == (14, 42, 28, 56)
    with pytest.raises(ValueError, match="cannot hold"):
        Canvas(size=50).check()


def test_permutation_tables_must_be_bijections():
    with pytest.raises(GroupError, match="not a permutation"):
        PermutationAction.from_transforms([lambda s: s * 0], (3, 3))


def test_bilinear_rotation_agrees_with_exact_quarter_turns():
    x = torch.rand(4, 1, 28, 28)
    angles = torch.tensor([0.0, 90.0, 180.0, -90.0])
    expected = torch.stack([torch.rot90(x[i], k, (-2, -1)) for i, k in enumerate([0, 1, 2, 3])])
    assert torch.allclose(rotate_bilinear(x, angles), expected, atol=1e-4)
