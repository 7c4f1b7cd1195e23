"""Interpolated (inexact) image actions: rotation + scaling, the D3 action of the MNIST autoencoder,
and a measure of how far such an action is from a homomorphism.

An exact action (actions.PermutationAction: 90° turns, reflections) satisfies T(g)T(h) = T(gh)
bit for bit. A 120° rotation of a pixel grid cannot: it needs interpolation, so T(r)³ is a blurred
copy of x, and corners leave the frame. `homomorphism_error` quantifies that defect so that a
report can state it beside the equivariance errors it would otherwise be confused with.
"""
from __future__ import annotations

import math
from typing import Callable

import torch

from approxeq.algebra.groups import FiniteGroup, dihedral

__all__ = [
    "D3_ROTATION_DEGREES",
    "rotate_bilinear",
    "rotate_scale_bilinear",
    "d3_image_action",
    "homomorphism_error",
]

Action = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

# Paper Section 4.2: r is a rotation by 120°. Appendix B.2 and the public code say 60°, which is not
# of order 3 (pitfalls.md, item 5).
D3_ROTATION_DEGREES = 120.0


def rotate_scale_bilinear(x: torch.Tensor, degrees: torch.Tensor, scale: torch.Tensor | float = 1.0
                          ) -> torch.Tensor:
    """Rotate images (B, C, H, W) counter-clockwise by `degrees` and enlarge them by `scale`
    (per sample, or scalars), both about the image centre, bilinear, zeros outside.

    The same sense as torch.rot90 for 90° (rotate_bilinear is this at scale 1):
    affine_grid maps an output location p to the input location A·p, so enlarging by s means
    sampling the input at R·p / s.
    """
    batch = x.shape[0]
    degrees = torch.as_tensor(degrees, dtype=x.dtype, device=x.device).expand(batch)
    scale = torch.as_tensor(scale, dtype=x.dtype, device=x.device).expand(batch)
    if bool((scale <= 0).any()):
        raise ValueError(f"scale factors must be positive, got min {float(scale.min())}")
    radians = torch.deg2rad(degrees)
    cos, sin = torch.cos(radians) / scale, torch.sin(radians) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
    grid = torch.nn.functional.affine_grid(theta, list(x.shape), align_corners=False)
    return torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros",
                                           align_corners=False)


def rotate_bilinear(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate images (B, C, H, W) counter-clockwise by per-sample angles, bilinear, zeros outside;
    the same sense as `torch.rot90(x, 1, (-2, -1))` for 90°. Not exact, so never a group action
    where an exact one exists: used for DDMNIST's interpolation artefacts and the D3 action."""
    return rotate_scale_bilinear(x, degrees, 1.0)


def _check_order_three(rotation_degrees: float) -> None:
    residue = math.remainder(float(rotation_degrees), 360.0)  # in [-180, 180]
    if not math.isclose(abs(residue), 120.0, abs_tol=1e-9):
        raise ValueError(
            f"D3 needs a rotation of order 3 (±120° mod 360), got rotation_degrees="
            f"{rotation_degrees}: that rotation is not of order 3, so r³ = e fails and the D3 "
            f"multiplication table does not describe the action. In particular 60° (the paper's "
            f"appendix B.2 and public code) is not of order 3; use 120° (paper Section 4.2), or "
            f"model C6/D6 instead if 60° steps are wanted.")


def d3_image_action(rotation_degrees: float = D3_ROTATION_DEGREES) -> Action:
    """The D3 action on images of the MNIST autoencoder experiment, as `act(x, g)`.

    x: float tensor (B, C, H, W); g: (B,) element indices of groups.dihedral(3), where element
    f·3 + k is r^k s^f: reflect first if f = 1, then rotate by k·rotation_degrees
    counter-clockwise. s is the flip about the VERTICAL axis (columns reversed); r the bilinear
    rotation about the image centre (zeros outside). The reflection is exact; the rotation is not,
    so this is a homomorphism only up to interpolation (see `homomorphism_error`). The identity
    and pure reflections act exactly (no resampling).
    """
    _check_order_three(rotation_degrees)
    step = float(rotation_degrees)

    def act(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        g = torch.as_tensor(g, device=x.device).long().reshape(-1)
        if g.shape[0] != x.shape[0]:
            raise ValueError(f"{g.shape[0]} group elements for a batch of {x.shape[0]}")
        if bool(((g < 0) | (g >= 6)).any()):
            raise ValueError(f"D3 element indices must lie in 0..5, got {g.tolist()}")
        flip, turns = torch.div(g, 3, rounding_mode="floor"), g % 3
        reflected = torch.where((flip == 1)[:, None, None, None], torch.flip(x, dims=(-1,)), x)
        if not bool((turns > 0).any()):
            return reflected
        rotated = rotate_bilinear(reflected, turns.to(x.dtype) * step)
        # k = 0 keeps the exactly reflected (or untouched) image: T(e) is the identity, bit for bit.
        return torch.where((turns == 0)[:, None, None, None], reflected, rotated)

    act.group = dihedral(3)  # type: ignore[attr-defined]
    act.rotation_degrees = step  # type: ignore[attr-defined]
    return act


@torch.no_grad()
def homomorphism_error(act: Action, group: FiniteGroup, x: torch.Tensor) -> dict:
    """How far `act` is from a homomorphism of `group`, measured on the batch `x`.

    For every pair (g, h): ‖T(g)T(h)x − T(gh)x‖ / ‖T(gh)x‖ (Frobenius norms over the whole
    batch); returns its mean and max over the |G|² pairs, the worst pair, the full |G|×|G| table
    (nested lists, row g, column h), and ‖T(e)x − x‖ / ‖x‖ as "identity". Exact actions give 0.
    """
    n, batch = group.order, x.shape[0]
    x = x.float()

    def element(e: int) -> torch.Tensor:
        return torch.full((batch,), int(e), dtype=torch.long, device=x.device)

    single = [act(x, element(e)) for e in range(n)]
    table = torch.zeros(n, n, dtype=torch.float64)
    for h in range(n):
        for g in range(n):
            composed = act(single[h], element(g))
            target = single[group.mul(g, h)]
            denom = torch.linalg.vector_norm(target.double())
            table[g, h] = torch.linalg.vector_norm((composed - target).double()) / denom.clamp_min(1e-300)
    identity = torch.linalg.vector_norm((single[group.identity] - x).double()) / \
        torch.linalg.vector_norm(x.double()).clamp_min(1e-300)
    worst = divmod(int(torch.argmax(table)), n)
    return {"mean": float(table.mean()), "max": float(table.max()), "worst_pair": worst,
            "identity": float(identity), "pairs": n * n, "per_pair": table.tolist()}
