"""The C4 action on velocity fields (SMOKE) and the discrete operators that check it.

Layout. A stored velocity frame is an array (component, y, x): component 0 is u_x, component 1 is
u_y; the column index x increases to the right and the ROW INDEX y INCREASES UPWARD (row 0 is the
bottom of the box). That is the physical plane with the usual orientation, but it is the vertical
mirror image of how an image is displayed (row 0 on top), which reverses the sense of rotation.

rot90 convention. Element k of `groups.cyclic(4)` is k counter-clockwise quarter turns in the
physical plane, R: (x, y) ↦ (−y, x). A rotated scalar field is φ'(p) = φ(R⁻¹p). With centred
indices on an N×N grid, R⁻¹(x', y') = (y', −x'), so in array terms

    φ'[i, j] = φ[N−1−j, i]        (i = row = y, j = column = x).

`torch.rot90(a, 1, dims=(-2, -1))` gives a'[i, j] = a[j, N−1−i], which is the INVERSE map (a
clockwise physical turn when rows run upward, although it looks counter-clockwise on a displayed
image with row 0 on top). The counter-clockwise physical turn is therefore

    torch.rot90(a, k, dims=(-1, -2))  ==  torch.rot90(a, -k, dims=(-2, -1)).

A velocity field is a vector field, v'(p) = R v(R⁻¹p): the grid moves as above AND each vector turns
by the same angle; one counter-clockwise quarter turn maps (u_x, u_y) ↦ (−u_y, u_x).
(Using `rot90(k)` on dims (-2, -1) with that component map gives the NEGATED field for odd k:
pitfall 2 of the reference notes; `tests/test_velocity.py` shows the gradient test catching it.)

Both actions are exact permutations (and sign flips) of the entries, applied to a whole batch with
one `gather` per call, following `actions.PermutationAction`: no Python per sample, no host sync.
`rotate_grid` is also the latent action of the SMOKE model on feature maps (B, C, H, W): every
channel is rotated, channels are not permuted.
"""
from __future__ import annotations

import torch

from approxeq.algebra.actions import PermutationAction

QUARTER_TURNS = 4

# Component map of k counter-clockwise quarter turns: new component c = SIGN[k, c] · old[SOURCE[k, c]].
# k=0: (u_x, u_y); k=1: (−u_y, u_x); k=2: (−u_x, −u_y); k=3: (u_y, −u_x).
_SOURCE = torch.tensor([[0, 1], [1, 0], [0, 1], [1, 0]])
_SIGN = torch.tensor([[1, 1], [-1, 1], [-1, -1], [1, -1]])

_GRID_ACTIONS: dict[tuple[int, str], PermutationAction] = {}


def ccw_quarter_turns(x: torch.Tensor, k: int) -> torch.Tensor:
    """k counter-clockwise physical quarter turns of the last two axes (y up, x right), one k for all."""
    return torch.rot90(x, int(k) % QUARTER_TURNS, dims=(-1, -2))


def _grid_action(size: int, device: torch.device) -> PermutationAction:
    key = (size, str(device))
    action = _GRID_ACTIONS.get(key)
    if action is None:
        transforms = [lambda a, k=k: ccw_quarter_turns(a, k) for k in range(QUARTER_TURNS)]
        action = PermutationAction.from_transforms(transforms, (size, size)).to(device)
        _GRID_ACTIONS[key] = action
    return action


def _check_batch(x: torch.Tensor, g: torch.Tensor, min_dim: int) -> torch.Tensor:
    if x.dim() < min_dim:
        raise ValueError(f"expected a tensor of at least {min_dim} dimensions (B, ..., H, W), got {tuple(x.shape)}")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"quarter turns of a batch need a square grid, got H×W = {x.shape[-2]}×{x.shape[-1]}")
    g = torch.as_tensor(g, device=x.device).long()
    if g.shape != (x.shape[0],):
        raise ValueError(f"g must have shape (B,) = ({x.shape[0]},), got {tuple(g.shape)}")
    return g % QUARTER_TURNS


def rotate_grid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Rotate the (y, x) grid of x (B, ..., H, W), H = W, by g[b] counter-clockwise quarter turns.

    Everything between the batch and the grid axes (channels, frames, components) is carried along
    unchanged: this is the scalar-field action, and the latent action on feature maps (B, C, H, W).
    Equal to `torch.rot90(x[b], g[b], dims=(-1, -2))` per sample, done as one batched gather.
    """
    g = _check_batch(x, g, 3)
    batch, size = x.shape[0], x.shape[-1]
    flat = x.reshape(batch, -1, size, size)
    return _grid_action(size, x.device)(flat, g).reshape(x.shape)


def rotate_velocity(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Rotate velocity fields v (B, F·2, H, W), channels (frame, component) flattened, by g[b] ccw quarter turns.

    The grid turns as in `rotate_grid` and each vector (u_x, u_y) turns by the same angle, so that
    rotate_velocity(v, g)(p) = R_g v(R_g⁻¹ p). A homomorphism of `groups.cyclic(4)`.
    """
    g = _check_batch(v, g, 4)
    batch, channels, height, width = v.shape
    if channels % 2:
        raise ValueError(f"velocity channels must be (frame, component) pairs, got {channels} channels")
    pairs = v.reshape(batch, channels // 2, 2, height, width)
    source = _SOURCE.to(v.device)[g].view(batch, 1, 2, 1, 1).expand(-1, channels // 2, -1, height, width)
    sign = _SIGN.to(device=v.device, dtype=v.dtype)[g].view(batch, 1, 2, 1, 1)
    turned = torch.gather(pairs, 2, source) * sign
    return rotate_grid(turned.reshape(v.shape), g)


# ---------------------------------------------------------------------------------------------
# Discrete operators: cell-centred grid, unit spacing, periodic central differences.
#
# Periodic central differences (via torch.roll) commute exactly with rot90 on a square grid: a
# rotation maps the stencil of each cell onto the stencil of its image, and the only arithmetic
# difference is the sign of a subtraction (a − b versus −(b − a)), which is exact in floating point.
# They are for tests and checks only (the SMOKE box is closed, not periodic).
# ---------------------------------------------------------------------------------------------

def _d_dx(f: torch.Tensor) -> torch.Tensor:
    return (torch.roll(f, -1, dims=-1) - torch.roll(f, 1, dims=-1)) / 2


def _d_dy(f: torch.Tensor) -> torch.Tensor:  # rows increase upward: +y is row + 1
    return (torch.roll(f, -1, dims=-2) - torch.roll(f, 1, dims=-2)) / 2


def gradient(phi: torch.Tensor) -> torch.Tensor:
    """∇φ of a scalar field φ (..., H, W) as (..., 2, H, W), components (∂φ/∂x, ∂φ/∂y)."""
    return torch.stack([_d_dx(phi), _d_dy(phi)], dim=-3)


def divergence(v: torch.Tensor) -> torch.Tensor:
    """∂u_x/∂x + ∂u_y/∂y of v (..., 2, H, W), as (..., H, W)."""
    return _d_dx(v[..., 0, :, :]) + _d_dy(v[..., 1, :, :])


def curl(v: torch.Tensor) -> torch.Tensor:
    """The scalar curl ∂u_y/∂x − ∂u_x/∂y of v (..., 2, H, W), as (..., H, W)."""
    return _d_dx(v[..., 1, :, :]) - _d_dy(v[..., 0, :, :])
