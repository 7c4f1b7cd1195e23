"""SMOKE baselines of Table 6 (package docstring: what each is and where it comes from)."""
from __future__ import annotations

import torch
from torch import nn

from .common import RPPBlock, Steerable, _escnn, attach_rpp_prior, planar_gspace


def smoke_e2cnn(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, kernel: int = 3,
                layers: int = 5) -> EncoderHead:
    """E2CNN for SMOKE (module docstring): in_frames vector fields → `layers − 1` blocks of
    `hidden` C4-regular fields → out_frames vector fields. Channels are (frame, component) pairs
    as in velocity.rotate_velocity."""
    from ..models import EncoderHead

    _, enn = _escnn()
    gs = planar_gspace("C4")
    vector = gs.irrep(1)
    t_in = enn.FieldType(gs, in_frames * [vector])
    t_hid = enn.FieldType(gs, hidden * [gs.regular_repr])
    t_out = enn.FieldType(gs, out_frames * [vector])
    pad = (kernel - 1) // 2

    def block(t):
        return enn.SequentialModule(enn.R2Conv(t, t_hid, kernel, padding=pad),
                                    enn.InnerBatchNorm(t_hid), enn.ReLU(t_hid))

    blocks = [block(t_in)] + [block(t_hid) for _ in range(layers - 2)]
    encoder = nn.Sequential(SwapComponents(), Steerable(t_in, enn.SequentialModule(*blocks)))
    head = nn.Sequential(Steerable(t_hid, enn.R2Conv(t_hid, t_out, kernel, padding=pad)), SwapComponents())
    model = EncoderHead(encoder, head, hidden * gs.regular_repr.size)
    model.latent_action = e2cnn_latent_action  # the latent's own action (regular fields)
    return model


class SwapComponents(nn.Module):
    """(u_x, u_y) ↦ (u_y, u_x) in every (frame, component) pair of channels; its own inverse.

    Our velocity frames have rows running upward (velocity.py), so our counter-clockwise quarter
    turn k moves the grid as escnn's element −k does (torch.rot90(x, −k, dims=(−2, −1))), while it
    turns (u_x, u_y) by +k. The swap is a reflection, which conjugates a rotation by θ into one by
    −θ: escnn's frequency-1 irrep acting on (u_y, u_x) by −k is our action on (u_x, u_y) by +k.
    So our element k is escnn's element −k on input, hidden and output fields alike."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        return x.reshape(batch, channels // 2, 2, height, width).flip(2).reshape(x.shape)


def e2cnn_latent_action(z: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """Our C4 element k on the E2CNN's latent, a map of regular fields (B, 4n, H, W): escnn's
    element −k (SwapComponents), i.e. the grid turned by k of our quarter turns
    (velocity.rotate_grid) and each field's 4 channels shifted cyclically by −k (ρ_reg(−k))."""
    from ..velocity import rotate_grid

    batch, channels, height, width = z.shape
    g = torch.as_tensor(g, device=z.device).long() % 4
    fields = z.reshape(batch, channels // 4, 4, height, width)
    index = (torch.arange(4, device=z.device)[None, :] + g[:, None]) % 4  # new[j] = old[j + k]
    shifted = torch.gather(fields, 2, index.view(batch, 1, 4, 1, 1).expand(-1, channels // 4, -1, height, width))
    return rotate_grid(shifted.reshape(z.shape), g)


def smoke_rpp(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, kernel: int = 3,
              layers: int = 5, prior_weight: float = 1e-6) -> EncoderHead:
    """RPP for SMOKE (Wang et al.'s `Rot_RPPNet`): `layers` RPP blocks, vector fields in and out,
    `hidden` C4-regular fields between; the prior is prior_weight × the squared L2 norm of the
    plain convolutions' parameters (their `get_weight_constraint`, default 1e-6), added to the loss
    (loss.method_loss adds a model's `prior()`). Encoder = the first `layers − 1` blocks, head =
    the last; the latent (hidden×4 channels) is acted on as the E2CNN's (e2cnn_latent_action).

    With the plain path's weights at zero and the BatchNorms' affine parameters and statistics
    constant on each regular field (as at initialisation), the network is exactly the equivariant
    one (tests/test_baselines.py); otherwise it is only approximately equivariant, by design."""
    from ..models import EncoderHead

    _, enn = _escnn()
    gs = planar_gspace("C4")
    t_in = enn.FieldType(gs, in_frames * [gs.irrep(1)])
    t_hid = enn.FieldType(gs, hidden * [gs.regular_repr])
    t_out = enn.FieldType(gs, out_frames * [gs.irrep(1)])

    def block(t):  # as `RPPBlock` in their models/model_rotation.py: plain BatchNorm2d and ReLU
        return RPPBlock(t, t_hid, kernel, post=nn.Sequential(nn.BatchNorm2d(t_hid.size), nn.ReLU()))

    blocks = [block(t_in)] + [block(t_hid) for _ in range(layers - 2)]
    encoder = nn.Sequential(SwapComponents(), *blocks)
    head = nn.Sequential(RPPBlock(t_hid, t_out, kernel), SwapComponents())  # the last: no BN/ReLU
    model = EncoderHead(encoder, head, t_hid.size)
    model.latent_action = e2cnn_latent_action
    return attach_rpp_prior(model, plain_weight=prior_weight)


ESCNN_BUILDERS = {"smoke_e2cnn": smoke_e2cnn, "smoke_rpp": smoke_rpp}
TORCH_BUILDERS: dict = {}
