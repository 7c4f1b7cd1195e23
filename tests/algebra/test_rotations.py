"""Interpolated image actions: rotation + scale, the D3 action (pitfall 5), homomorphism error."""
import numpy as np
import pytest
import torch

from approxeq.algebra.actions import image_action
from approxeq.algebra.groups import dihedral, group_from_name
from approxeq.algebra.rotations import (
    d3_image_action,
    homomorphism_error,
    rotate_bilinear,
    rotate_scale_bilinear,
)
from approxeq.data.mnist_synthetic import synthetic_mnist


def smooth_images(n=8, size=28, seed=0):
    """Sums of wide Gaussian bumps well inside the frame: smooth, so bilinear resampling is
    accurate, and nothing near the corners that a 120° turn would cut off."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = np.zeros((n, 1, size, size))
    for i in range(n):
        for _ in range(4):
            cy, cx = rng.uniform(size * 0.3, size * 0.7, 2)
            images[i, 0] += rng.uniform(0.3, 1) * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18)
    return torch.from_numpy(images).float()


def test_rotate_scale_rotates_like_rot90_and_scales_about_the_centre():
    x = torch.rand(3, 2, 28, 28)
    # 90° agrees with the exact quarter turn (same sense as torch.rot90 / rotate_bilinear)
    assert torch.allclose(rotate_scale_bilinear(x, 90.0), torch.rot90(x, 1, (-2, -1)), atol=1e-4)
    # enlarging by 2 moves a point at distance d from the centre to distance 2d
    dot = torch.zeros(1, 1, 29, 29)
    dot[0, 0, 14, 18] = 1.0  # 4 px right of the centre pixel (14, 14)
    big = rotate_scale_bilinear(dot, 0.0, 2.0)[0, 0]
    cols = (big.sum(0) * torch.arange(29)).sum() / big.sum()
    rows = (big.sum(1) * torch.arange(29)).sum() / big.sum()
    assert float(cols) == pytest.approx(22.0, abs=1e-3) and float(rows) == pytest.approx(14.0, abs=1e-3)
    with pytest.raises(ValueError, match="positive"):
        rotate_scale_bilinear(x, torch.zeros(3), torch.tensor([1.0, 0.0, 1.0]))


def test_d3_generators_act_as_stated():
    act = d3_image_action()
    x = torch.rand(2, 1, 28, 28)

    def at(e):
        return act(x, torch.full((2,), e))

    assert torch.equal(at(0), x)  # identity exactly, no resampling
    assert torch.equal(at(3), torch.flip(x, dims=(-1,)))  # s: flip about the VERTICAL axis, exact
    assert torch.equal(at(1), rotate_bilinear(x, torch.full((2,), 120.0)))  # r: 120° ccw
    assert torch.equal(at(2), rotate_bilinear(x, torch.full((2,), 240.0)))
    # element f·3 + k = r^k s^f: reflect first, then rotate
    assert torch.equal(at(4), rotate_bilinear(torch.flip(x, (-1,)), torch.full((2,), 120.0)))
    assert dihedral(3).elements == ("e", "r1", "r2", "s", "r1s", "r2s")


def test_d3_acts_per_sample_in_one_batch():
    act = d3_image_action()
    x = torch.rand(12, 2, 16, 16)
    g = torch.arange(12) % 6
    out = act(x, g)
    for b in range(12):
        assert torch.allclose(out[b:b + 1], act(x[b:b + 1], g[b:b + 1]), atol=1e-6)


@pytest.mark.parametrize("degrees", [60.0, 90.0, 0.0, 360.0, 119.0, -60.0])
def test_rotations_not_of_order_three_are_refused(degrees):
    with pytest.raises(ValueError, match="not of order 3") as info:
        d3_image_action(degrees)
    assert str(degrees) in str(info.value)
    assert "60°" in str(info.value) and "C6/D6" in str(info.value)


@pytest.mark.parametrize("degrees", [120.0, -120.0, 240.0, 480.0])
def test_rotations_of_order_three_are_accepted(degrees):
    act = d3_image_action(degrees)
    assert act.rotation_degrees == degrees


@pytest.mark.parametrize("name,size", [("C4", 28), ("D4", 9), ("D1", 28)])
def test_exact_actions_have_zero_homomorphism_error(name, size):
    group = group_from_name(name)
    result = homomorphism_error(image_action(group, size), group, torch.rand(4, 1, size, size))
    assert result["mean"] == 0.0 and result["max"] == 0.0 and result["identity"] == 0.0
    assert result["pairs"] == group.order ** 2


def test_d3_homomorphism_error_is_small_but_nonzero():
    group = dihedral(3)
    result = homomorphism_error(d3_image_action(), group, smooth_images())
    print(f"\nD3 (120°, bilinear) on smooth images: mean {result['mean']:.4f}, "
          f"max {result['max']:.4f} at {result['worst_pair']}, identity {result['identity']}")
    assert result["identity"] == 0.0
    assert 0.0 < result["mean"] < 0.05 and result["max"] < 0.1
    # pairs that involve no rotation (e, s) compose exactly
    table = np.array(result["per_pair"])
    for g, h in [(0, 0), (0, 3), (3, 0), (3, 3)]:
        assert table[g, h] == 0.0


def test_d3_homomorphism_error_on_mnist_like_digits():
    digits = synthetic_mnist(n_train=64, n_test=0, seed=0)["train_images"]
    x = torch.from_numpy(digits).float().unsqueeze(1) / 255
    result = homomorphism_error(d3_image_action(), dihedral(3), x)
    print(f"\nD3 (120°, bilinear) on synthetic MNIST digits: mean {result['mean']:.4f}, "
          f"max {result['max']:.4f} at {result['worst_pair']}")
    assert 0.0 < result["mean"] < 0.25 and result["max"] < 0.4


def test_homomorphism_error_detects_a_wrong_composition_order():
    """Rotating first and reflecting second is the anti-homomorphism of pitfall 1 for D3: the
    measure must tell it apart from interpolation blur."""
    def rotate_then_reflect(x, g):
        flip, turns = g // 3, g % 3
        rotated = torch.where((turns == 0)[:, None, None, None], x,
                              rotate_bilinear(x, turns.float() * 120.0))
        return torch.where((flip == 1)[:, None, None, None], torch.flip(rotated, (-1,)), rotated)

    x = smooth_images()
    wrong = homomorphism_error(rotate_then_reflect, dihedral(3), x)
    right = homomorphism_error(d3_image_action(), dihedral(3), x)
    assert wrong["max"] > 0.3 > 10 * right["max"]
