"""Equivariant baselines of Tables 4 and 6, built with escnn (the library of the original code).

escnn is an optional extra (`envs/install_baselines.sh`); it is imported only when a baseline is
built, so the package works without it. Every builder returns the same `EncoderHead` as the
method's networks, so the baselines are trained and evaluated by the same trainer and evaluation.

DDMNIST SCNN (`ddmnist_scnn`): the appendix C.1 CNN (models.ddmnist_layers) with every convolution
an escnn `R2Conv` between regular fields of the column's group G (C4, D1 or D4), acting on the
WHOLE 56×56 canvas, group pooling after the last (1×1) convolution, then the CNN's head. The
data's symmetry is G×G (one element per digit); a network equivariant to G on the whole image is
how the paper's SCNN row is defined (hence its low accuracy: a quarter turn of the whole canvas
moves the digits above each other, a C4-invariant network cannot tell (a, b) from its turned
copy). Differences from the C.1 CNN, each needed for exact equivariance: the input is upsampled
56 → 57 bilinearly with align_corners=True (nearest-neighbour upsampling, the CNN's, does not
commute with a flip or quarter turn of the canvas); BatchNorm is escnn's InnerBatchNorm (one
statistic per field); average pooling is escnn's PointwiseAvgPool2D (the same pooling). Field
counts equal the CNN's channel counts (c, 2c, 4c, 6c, 6c, latent_dim).

SMOKE E2CNN (`smoke_e2cnn`): the C.3 ConvNet with C4-regular hidden fields; input the 10 frames of
velocity as 10 vector fields (C4's frequency-1 irrep), output one vector field, as
`E2CNN` in Wang, Walters & Yu's public code (models/model_rotation.py: kernel 3, 5 layers,
R2Conv + InnerBatchNorm + ReLU blocks). The encoder is the blocks (hidden regular fields), the head
the last R2Conv; the latent action on the encoder's output (`e2cnn_latent_action`) rotates the grid
and cyclically shifts each regular field, the field type's own action.

SMOKE RPP (`smoke_rpp`): Wang et al.'s `Rot_RPPNet`, an R2Conv and a plain Conv2d summed per layer,
with an L2 prior on the plain path (`model.prior()`, added to the loss by loss.method_loss).
"""
from __future__ import annotations

import torch
from torch import nn

# models.py registers these builders, so `.models` is imported inside them (no import cycle)

INSTALL_HINT = ("escnn (the optional `baselines` extra) is not installed. Install it with a Fortran "
                "compiler present: `apt-get install -y gfortran && envs/install_baselines.sh` (or "
                "rerun ./install.sh once gfortran is found)")


class BaselineUnavailable(ImportError):
    """escnn is missing; the message says how to install it."""


def escnn_available() -> bool:
    try:
        _escnn()
    except BaselineUnavailable:
        return False
    return True


def _escnn():
    try:
        from escnn import gspaces
        from escnn import nn as enn
        from escnn.group import _numerical
    except ImportError as error:
        raise BaselineUnavailable(f"{INSTALL_HINT} ({error})") from None
    # escnn 1.0.11 solves for intertwiners (D4's kernel basis) with sklearn's randomized_svd on an
    # np.matrix, which the pinned scikit-learn refuses (TypeError); without it escnn takes its own
    # fallback, scipy's exact SVD, for the same null space (k = min(shape): a full SVD either way).
    _numerical.randomized_svd = None
    return gspaces, enn


def planar_gspace(group: str):
    """escnn's gspace of `group` acting on the plane, with our conventions (groups.planar_elements,
    actions.image_action): element k of C4 is torch.rot90(x, k, dims=(-2, -1)); D1's reflection is
    torch.flip(x, (-2,)), the reflection of escnn's flip2dOnR2 with axis 0."""
    gspaces, _ = _escnn()
    builders = {"C4": lambda: gspaces.rot2dOnR2(4), "D1": lambda: gspaces.flip2dOnR2(axis=0.0),
                "D4": lambda: gspaces.flipRot2dOnR2(4, axis=0.0)}
    if group not in builders:
        raise ValueError(f"no steerable baseline for group {group!r}; known: {sorted(builders)}")
    return builders[group]()


class Steerable(nn.Module):
    """An escnn module between plain tensors: the input is read as a GeometricTensor of `in_type`,
    the output's `.tensor` is returned.

    escnn's R2Conv caches its expanded filter and bias as buffers, present or not depending on
    the train/eval mode it last entered. They are functions of the weights, so they are left out
    of the state dict, not expected when loading, and recomputed after a load in eval mode: a
    checkpoint saved in either mode loads into a model in either mode (tests/test_baselines.py)."""

    CACHES = ("filter", "expanded_bias")

    def __init__(self, in_type, module):
        super().__init__()
        self.in_type = in_type
        self.module = module
        self._register_state_dict_hook(Steerable._drop_caches)
        self.register_load_state_dict_post_hook(Steerable._after_load)

    @staticmethod
    def _is_cache(key: str) -> bool:
        return key.rsplit(".", 1)[-1] in Steerable.CACHES

    @staticmethod
    def _drop_caches(module, state_dict, prefix, local_metadata):
        for key in [k for k in state_dict if k.startswith(prefix) and Steerable._is_cache(k)]:
            del state_dict[key]
        return state_dict

    @staticmethod
    def _after_load(module, incompatible_keys):
        incompatible_keys.missing_keys[:] = [k for k in incompatible_keys.missing_keys
                                             if not Steerable._is_cache(k)]
        if not module.training:
            # escnn expands the filters only on a train → eval transition
            module.module.train(True).train(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, enn = _escnn()
        return self.module(enn.GeometricTensor(x, self.in_type)).tensor


def ddmnist_scnn(group: str, n_channels: int = 1, c: int = 6, latent_dim: int = 66,
                 n_classes: int = 100, upsample: int = 57, latent: str = "conv") -> EncoderHead:
    """SCNN for DDMNIST (module docstring); `latent` splits encoder and head exactly as in
    models.ddmnist_cnn (the group-pooled 1×1 conv output, after BatchNorm1d, or after its ELU)."""
    from .models import DDMNIST_PLACEMENTS, EncoderHead

    if latent not in DDMNIST_PLACEMENTS:
        raise ValueError(f"unknown DDMNIST latent placement {latent!r}; known: {sorted(DDMNIST_PLACEMENTS)}")
    _, enn = _escnn()
    gs = planar_gspace(group)

    def regular(n):
        return enn.FieldType(gs, n * [gs.regular_repr])

    def block(t_in, t_out, kernel, stride=1, padding=0):
        return [enn.R2Conv(t_in, t_out, kernel, stride=stride, padding=padding),
                enn.InnerBatchNorm(t_out), enn.ELU(t_out)]

    t_in = enn.FieldType(gs, n_channels * [gs.trivial_repr])
    t1, t2, t3, t4, t_latent = regular(c), regular(2 * c), regular(4 * c), regular(6 * c), regular(latent_dim)
    body = enn.SequentialModule(
        *block(t_in, t1, 7, padding=2),
        *block(t1, t2, 5, padding=2),
        enn.PointwiseAvgPool2D(t2, 5, stride=2, padding=1),
        *block(t2, t3, 3, stride=2, padding=2),
        enn.PointwiseAvgPool2D(t3, 5, stride=2, padding=1),
        *block(t3, t4, 3, stride=2, padding=0),
        *block(t4, t4, 3, padding=1),
        enn.PointwiseAvgPool2D(t4, 5, stride=1, padding=1),
        enn.R2Conv(t4, t_latent, 1),
        enn.GroupPooling(t_latent))
    layers = [nn.Upsample(size=(upsample, upsample), mode="bilinear", align_corners=True),
              Steerable(t_in, body), nn.Flatten(),
              nn.BatchNorm1d(latent_dim), nn.ELU(), nn.Linear(latent_dim, n_classes)]
    split = len(layers) - DDMNIST_PLACEMENTS[latent]
    return EncoderHead(nn.Sequential(*layers[:split]), nn.Sequential(*layers[split:]), latent_dim)


def smoke_e2cnn(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, kernel: int = 3,
                layers: int = 5) -> EncoderHead:
    """E2CNN for SMOKE (module docstring): in_frames vector fields → `layers − 1` blocks of
    `hidden` C4-regular fields → out_frames vector fields. Channels are (frame, component) pairs
    as in velocity.rotate_velocity."""
    from .models import EncoderHead

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
    from .velocity import rotate_grid

    batch, channels, height, width = z.shape
    g = torch.as_tensor(g, device=z.device).long() % 4
    fields = z.reshape(batch, channels // 4, 4, height, width)
    index = (torch.arange(4, device=z.device)[None, :] + g[:, None]) % 4  # new[j] = old[j + k]
    shifted = torch.gather(fields, 2, index.view(batch, 1, 4, 1, 1).expand(-1, channels // 4, -1, height, width))
    return rotate_grid(shifted.reshape(z.shape), g)


class RPPBlock(nn.Module):
    """One layer of a residual pathway prior network: an escnn R2Conv (equivariant path) and a
    plain Conv2d (unconstrained path) on the same input, summed; then BatchNorm2d and ReLU unless
    it is the last layer. As `RPPBlock` in Wang, Walters & Yu's models/model_rotation.py, including
    its plain (per-channel) BatchNorm2d."""

    def __init__(self, t_in, t_out, kernel: int, last: bool):
        super().__init__()
        _, enn = _escnn()
        pad = (kernel - 1) // 2
        self.equivariant = Steerable(t_in, enn.R2Conv(t_in, t_out, kernel, padding=pad))
        self.conv = nn.Conv2d(t_in.size, t_out.size, kernel, padding=pad)
        self.post = nn.Identity() if last else nn.Sequential(nn.BatchNorm2d(t_out.size), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.equivariant(x) + self.conv(x))


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
    from .models import EncoderHead

    _, enn = _escnn()
    gs = planar_gspace("C4")
    t_in = enn.FieldType(gs, in_frames * [gs.irrep(1)])
    t_hid = enn.FieldType(gs, hidden * [gs.regular_repr])
    t_out = enn.FieldType(gs, out_frames * [gs.irrep(1)])
    blocks = [RPPBlock(t_in, t_hid, kernel, last=False)]
    blocks += [RPPBlock(t_hid, t_hid, kernel, last=False) for _ in range(layers - 2)]
    encoder = nn.Sequential(SwapComponents(), *blocks)
    head = nn.Sequential(RPPBlock(t_hid, t_out, kernel, last=True), SwapComponents())
    model = EncoderHead(encoder, head, t_hid.size)
    model.latent_action = e2cnn_latent_action
    plain = [block.conv for block in [*blocks, head[0]]]

    def prior() -> torch.Tensor:
        return prior_weight * sum(p.pow(2).sum() for conv in plain for p in conv.parameters())

    model.prior = prior
    return model


BASELINE_BUILDERS = {"ddmnist_scnn": ddmnist_scnn, "smoke_e2cnn": smoke_e2cnn, "smoke_rpp": smoke_rpp}
