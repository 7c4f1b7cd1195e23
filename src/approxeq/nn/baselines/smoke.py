"""SMOKE baselines of Table 6 (package docstring: what each is and where it comes from)."""
from __future__ import annotations

import functools
import types

import torch
import torch.nn.functional as F
from torch import nn

from approxeq.nn.baselines.common import (
    RPPBlock,
    Steerable,
    _escnn,
    attach_rpp_prior,
    planar_gspace,
)
from approxeq.nn.encoder_head import EncoderHead


def smoke_e2cnn(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, kernel: int = 3,
                layers: int = 5) -> EncoderHead:
    """E2CNN for SMOKE (module docstring): in_frames vector fields → `layers − 1` blocks of
    `hidden` C4-regular fields → out_frames vector fields. Channels are (frame, component) pairs
    as in velocity.rotate_velocity."""

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
    from approxeq.algebra.velocity import rotate_grid

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




# ---------------------------------------------------------------------------------------------
# Relaxed group convolution (RGroup), plain PyTorch.
# ---------------------------------------------------------------------------------------------

QUARTER_TURNS = 4
# (cos θ_n, sin θ_n) for θ_n = n·90°, exact: their `lift_coefs` (cos/sin in float, equal up to
# rounding) map a vector to C4's regular representation and back.
_LIFT = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]])


class VectorToRegular(nn.Module):
    """Frames of vectors (B, 2F, H, W), components (c0, c1), to F regular fields (B, 4F, H, W):
    channel (f, n) = cos θ_n c0 + sin θ_n c1, the projection on the direction θ_n = n·90°. As the
    `lift_coefs` step of `RelaxedGroupEquivariantCNN.forward` (vel_inp) in Wang, Walters & Yu's
    models/model_rotation.py. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        pairs = x.reshape(batch, channels // 2, 2, height, width)
        lifted = torch.einsum("bfvhw,nv->bfnhw", pairs, _LIFT.to(x))
        return lifted.reshape(batch, channels * 2, height, width)


class RegularToVector(nn.Module):
    """The way back: F regular fields (B, 4F, H, W) to F vectors, (c0, c1) = Σ_n out_n (cos θ_n,
    sin θ_n) (their `lift_coefs` applied to the output). No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        fields = x.reshape(batch, channels // QUARTER_TURNS, QUARTER_TURNS, height, width)
        vectors = torch.einsum("bfnhw,nv->bfvhw", fields, _LIFT.to(x))
        return vectors.reshape(batch, channels // 2, height, width)


class RelaxedGroupConv(nn.Module):
    """Relaxed C4 group convolution between regular fields (B, 4·in, H, W) → (B, 4·out, H, W), as
    `Relaxed_GroupConv` in Wang, Walters & Yu's models/model_rotation.py: `banks` filter banks
    W_a (out, in, 4, k, k) and relaxed weights c (4 × banks, one row per group element n); the
    filter of output element n is Σ_a c[n, a] W_a turned by n quarter turns and shifted cyclically
    by n along the input's group axis. No bias (theirs has none).

    Conventions (module SwapComponents): this layer sits after SwapComponents, where our element k
    is escnn's s = −k, acting on a regular field by new[m] = old[m − s] and on the grid by
    torch.rot90(·, s, dims=(−2, −1)). The filter of output n at input element m is then
    torch.rot90(W, n)[…, (m − n) mod 4, …], which makes the layer exactly equivariant whenever the
    rows of c are equal (at initialisation: c = 1/(4·banks), their init). Their filters are turned
    by grid_sample (bilinear, which at multiples of 90° is the same permutation up to rounding);
    torch.rot90 here is exact.

    `activation`: their constructor takes `activation=True` for every layer but the last, yet
    their forward never applies it (the network as published is linear); we apply the ReLU that
    the flag names (their previous version, `Relaxed_Reg_GroupConv`, applied F.relu).
    `activation=False` everywhere gives the published forward literally."""

    def __init__(self, in_fields: int, out_fields: int, kernel: int, banks: int, activation: bool):
        super().__init__()
        bound = (1.0 / (in_fields * kernel * kernel)) ** 0.5  # their stdv
        self.weight = nn.Parameter(torch.empty(banks, out_fields, in_fields, QUARTER_TURNS, kernel, kernel)
                                   .uniform_(-bound, bound))
        self.relaxed_weights = nn.Parameter(torch.full((QUARTER_TURNS, banks), 1.0 / (banks * QUARTER_TURNS)))
        self.activation = activation
        self.padding = (kernel - 1) // 2

    def filters(self) -> torch.Tensor:
        mixed = torch.einsum("na,aoimkl->noimkl", self.relaxed_weights, self.weight)
        per_element = [torch.rot90(mixed[n], n, dims=(-2, -1)).roll(n, dims=2) for n in range(QUARTER_TURNS)]
        bank = torch.stack(per_element, dim=1)  # (out, n, in, m, k, k)
        out, _, fields_in, _, kernel, _ = bank.shape
        return bank.reshape(out * QUARTER_TURNS, fields_in * QUARTER_TURNS, kernel, kernel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.filters(), padding=self.padding)
        return F.relu(out) if self.activation else out


def smoke_rgroup(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, kernel: int = 3,
                 layers: int = 5, banks: int = 2, activation: bool = True) -> EncoderHead:
    """RGroup for SMOKE: Wang et al.'s `RelaxedGroupEquivariantCNN` (vel_inp=True) with C4:
    velocity frames lifted to regular fields (VectorToRegular), `layers` relaxed group
    convolutions (in_frames → hidden → … → hidden → out_frames regular fields), projected back to
    vectors (RegularToVector). Their forward rolls out `target_length` steps itself; ours predicts
    one frame and the task rolls out (smoke_task), as for every SMOKE model.

    Encoder = SwapComponents, the lift and the first `layers − 1` convolutions (hidden regular
    fields, the latent, acted on by e2cnn_latent_action); head = the last convolution, the
    projection and SwapComponents. Exactly C4-equivariant when every layer's relaxed weights have
    equal rows (tests/test_baselines_smoke.py); their code has no penalty on the relaxed weights
    (no `get_weight_constraint`), so the model has no prior."""

    convs = [RelaxedGroupConv(in_frames, hidden, kernel, banks, activation)]
    convs += [RelaxedGroupConv(hidden, hidden, kernel, banks, activation) for _ in range(layers - 2)]
    encoder = nn.Sequential(SwapComponents(), VectorToRegular(), *convs)
    head = nn.Sequential(RelaxedGroupConv(hidden, out_frames, kernel, banks, activation=False),
                         RegularToVector(), SwapComponents())
    model = EncoderHead(encoder, head, hidden * QUARTER_TURNS)
    model.latent_action = e2cnn_latent_action
    return model


# ---------------------------------------------------------------------------------------------
# Relaxed steerable convolution (RSteer), escnn for the kernel basis only.
# ---------------------------------------------------------------------------------------------

def steerable_basis(in_repr, out_repr, kernel: int) -> torch.Tensor:
    """The steerable kernel basis between one field of `in_repr` and one of `out_repr`, sampled on
    the k×k filter grid, as (basis, out_size, in_size, k, k).

    Wang et al. build it with e2cnn internals (`compute_basis_params(kernel_size)`, then
    `gspace.build_kernel_basis(..., maximum_frequency=5)` and `block_basisexpansion(...)
    .sampled_basis`). escnn 1.0.11 keeps `compute_basis_params` with the same defaults (rings,
    sigma, frequency cut-off) and builds the same band-limited basis inside R2Conv (their
    maximum_frequency=5 is cut back by that band limit, so the elements are the same); escnn's
    names and internals differ. We read the basis off an escnn R2Conv between single fields: its
    expanded filter is linear in its weights, so expanding one-hot weights gives the basis
    elements one by one, whatever escnn's internals are called. Cached per (field types, kernel):
    a copy is returned."""
    return _steerable_basis(in_repr.name, out_repr.name, kernel).clone()


@functools.lru_cache(maxsize=None)
def _steerable_basis(in_name: str, out_name: str, kernel: int) -> torch.Tensor:
    _, enn = _escnn()
    gs = planar_gspace("C4")
    reprs = {r.name: r for r in (gs.irrep(1), gs.regular_repr, gs.trivial_repr)}
    conv = enn.R2Conv(enn.FieldType(gs, [reprs[in_name]]), enn.FieldType(gs, [reprs[out_name]]), kernel,
                      bias=False)
    elements = []
    with torch.no_grad():
        for b in range(conv.weights.numel()):
            conv.weights.zero_()
            conv.weights[b] = 1.0
            elements.append(conv.expand_parameters()[0].clone())
    return torch.stack(elements)


class RelaxedSteerableConv(nn.Module):
    """Relaxed steerable convolution, as `Relaxed_Rot_SteerConv` in Wang, Walters & Yu's
    models/model_rotation.py: the filter between input field i and output field o is
    Σ_b w[o, b, i, s] · basis_b[:, :, s] at every filter position s, i.e. one coefficient per basis
    element AND per position (`relaxed_weights`, out × basis × in × k²); equal over s it is the
    steerable (exactly equivariant) filter. A free bias per output channel (theirs; it is not
    constrained to the fields, so exact equivariance also needs it constant on each regular field
    and zero on vector fields). ReLU after every layer but the last; their InnerBatchNorm is built
    but not applied (`#self.norm(` in their forward), so it is left out here."""

    def __init__(self, basis: torch.Tensor, in_fields: int, out_fields: int, activation: bool):
        super().__init__()
        n_basis, out_size, in_size, kernel, _ = basis.shape
        self.register_buffer("basis", basis.flatten(-2), persistent=False)  # (basis, p, q, k²)
        bound = (1.0 / (in_fields * kernel * kernel)) ** 0.5  # their stdv
        self.relaxed_weights = nn.Parameter(torch.empty(out_fields, n_basis, in_fields, kernel * kernel)
                                            .uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_fields * out_size).uniform_(-bound, bound))
        self.kernel = kernel
        self.activation = activation

    def filters(self) -> torch.Tensor:
        filters = torch.einsum("bpqs,obis->opiqs", self.basis, self.relaxed_weights)
        out, p, fields_in, q, _ = filters.shape
        return filters.reshape(out * p, fields_in * q, self.kernel, self.kernel)

    def constraint(self) -> torch.Tensor:
        """Their `get_weight_constraint`: mean |w[..., s] − w[..., s+1]| over neighbouring filter
        positions in row-major order."""
        w = self.relaxed_weights
        return (w[..., :-1] - w[..., 1:]).abs().mean()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.conv2d(x, self.filters(), self.bias, padding=(self.kernel - 1) // 2)
        return F.relu(out) if self.activation else out


def smoke_rsteer(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, kernel: int = 3,
                 layers: int = 5, alpha: float = 1e-5) -> EncoderHead:
    """RSteer for SMOKE: Wang et al.'s `Relaxed_Rot_SteerConvNet` (N = 4): vector fields in and
    out, `hidden` C4-regular fields between, `layers` relaxed steerable convolutions; prior =
    alpha × Σ_layers of their weight constraint (`get_weight_constraint`; run.sh's rotation run:
    alpha 1e-5, hidden 92, 5 layers, lr 1e-3; kernel 3 in run_model.py), added to the loss by
    loss.method_loss. Encoder = SwapComponents and the first `layers − 1` convolutions (regular
    fields, acted on by e2cnn_latent_action); head = the last convolution and SwapComponents."""

    gs = planar_gspace("C4")
    vector, regular = gs.irrep(1), gs.regular_repr
    first = RelaxedSteerableConv(steerable_basis(vector, regular, kernel), in_frames, hidden, True)
    middle_basis = steerable_basis(regular, regular, kernel)
    middle = [RelaxedSteerableConv(middle_basis, hidden, hidden, True) for _ in range(layers - 2)]
    last = RelaxedSteerableConv(steerable_basis(regular, vector, kernel), hidden, out_frames, False)
    encoder = nn.Sequential(SwapComponents(), first, *middle)
    head = nn.Sequential(last, SwapComponents())
    model = EncoderHead(encoder, head, hidden * regular.size)
    model.latent_action = e2cnn_latent_action
    # bound to the model (as attach_rpp_prior), so a deep copy's prior reads the copy's weights
    model.prior = types.MethodType(
        lambda self: alpha * sum(m.constraint() for m in self.modules() if isinstance(m, RelaxedSteerableConv)),
        model)
    return model


# ---------------------------------------------------------------------------------------------
# Lift expansion (Lift), escnn.
# ---------------------------------------------------------------------------------------------

class LiftEncoder(nn.Module):
    """The encoder of Wang et al.'s `Lift_Rot_Expansion` (models/model_rotation.py): an MLP of
    the whole (flattened) input gives `hidden` numbers, repeated over the grid and appended to the
    output of two equivariant blocks as hidden/4 extra regular fields (the symmetry-breaking
    "lift"); two more equivariant blocks follow. Output: `hidden` regular fields (the latent)."""

    def __init__(self, mlp: nn.Module, first: nn.Module, second: nn.Module):
        super().__init__()
        self.mlp = mlp
        self.swap = SwapComponents()
        self.first = first
        self.second = second

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.mlp(x.flatten(1))
        features = self.first(self.swap(x))
        code = code[:, :, None, None].expand(-1, -1, *features.shape[-2:])
        return self.second(torch.cat([features, code], 1))


def smoke_lift(in_frames: int = 10, out_frames: int = 1, hidden: int = 92, encoder_hidden: int = 32,
               kernel: int = 3, grid: int = 64) -> EncoderHead:
    """Lift for SMOKE: Wang et al.'s `Lift_Rot_Expansion` (N = 4). MLP: Linear(in_frames·2·grid²,
    encoder_hidden), BatchNorm1d, ReLU, Linear(encoder_hidden, encoder_hidden), BatchNorm1d, ReLU,
    Linear(encoder_hidden, hidden). Equivariant part: R2Conv blocks (R2Conv, InnerBatchNorm, ReLU)
    vector → hidden → hidden regular fields, the MLP's output appended as hidden/4 regular
    fields, blocks (hidden + hidden/4) → hidden → hidden, then an R2Conv to out_frames vector
    fields (the head). Their MLP reads a hard-wired 62×23 grid (another data set's); it reads our
    grid² here (`grid`, set by the SMOKE setup). Sizes: hidden 92 as their other rotation models
    (run.sh), encoder_hidden 32 chosen (their code gives none) — with it the count is 3.30 M at
    64×64 against the paper's 3.32 M.

    Encoder = LiftEncoder (latent: the hidden regular fields, acted on by e2cnn_latent_action,
    equivariant only up to the MLP's contribution, by design); head = the last R2Conv and
    SwapComponents. With the MLP's last layer zero the network is exactly equivariant."""

    if hidden % 4:
        raise ValueError(f"Lift appends hidden/4 regular fields: hidden must be a multiple of 4, got {hidden}")
    _, enn = _escnn()
    gs = planar_gspace("C4")
    t_in = enn.FieldType(gs, in_frames * [gs.irrep(1)])
    t_hid = enn.FieldType(gs, hidden * [gs.regular_repr])
    t_cat = enn.FieldType(gs, (hidden + hidden // 4) * [gs.regular_repr])
    t_out = enn.FieldType(gs, out_frames * [gs.irrep(1)])
    pad = (kernel - 1) // 2

    def block(t):
        return [enn.R2Conv(t, t_hid, kernel, padding=pad), enn.InnerBatchNorm(t_hid), enn.ReLU(t_hid)]

    mlp = nn.Sequential(nn.Linear(in_frames * 2 * grid * grid, encoder_hidden), nn.BatchNorm1d(encoder_hidden),
                        nn.ReLU(), nn.Linear(encoder_hidden, encoder_hidden), nn.BatchNorm1d(encoder_hidden),
                        nn.ReLU(), nn.Linear(encoder_hidden, hidden))
    first = Steerable(t_in, enn.SequentialModule(*block(t_in), *block(t_hid)))
    second = Steerable(t_cat, enn.SequentialModule(*block(t_cat), *block(t_hid)))
    head = nn.Sequential(Steerable(t_hid, enn.R2Conv(t_hid, t_out, kernel, padding=pad)), SwapComponents())
    model = EncoderHead(LiftEncoder(mlp, first, second), head, t_hid.size)
    model.latent_action = e2cnn_latent_action
    return model


# ---------------------------------------------------------------------------------------------
# MLP, plain PyTorch.
# ---------------------------------------------------------------------------------------------

def smoke_mlp(in_channels: int = 20, out_channels: int = 2, hidden: int = 92, layers: int = 5,
              grid: int = 64) -> EncoderHead:
    """MLP for SMOKE: Wang et al.'s `MLPNet` (models/model_rotation.py): the flattened frames
    (in_channels·grid²) → `layers − 1` blocks Linear + BatchNorm1d + ReLU of width `hidden` → a
    Linear to out_channels·grid², reshaped to a frame. Hidden 92 as their rotation runs (run.sh);
    8.32 M parameters at 64×64 against the paper's 8.33 M. `grid` is set by the SMOKE setup.

    Encoder = the blocks, head = the last Linear (and the reshape). The latent, a `hidden`-vector,
    carries no action of C4 (rotating the input does not permute or transform it in any defined
    way), so the model's `latent_action` is None: no latent equivariance is measured for it
    (experiments.evaluate_experiment) and Table 6 shows "–" there."""

    def block(n_in):
        return [nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU()]

    layers_ = block(in_channels * grid * grid)
    for _ in range(layers - 2):
        layers_ += block(hidden)
    encoder = nn.Sequential(nn.Flatten(), *layers_)
    head = nn.Sequential(nn.Linear(hidden, out_channels * grid * grid), nn.Unflatten(1, (out_channels, grid, grid)))
    model = EncoderHead(encoder, head, hidden)
    model.latent_action = None
    return model


ESCNN_BUILDERS = {"smoke_e2cnn": smoke_e2cnn, "smoke_rpp": smoke_rpp, "smoke_rsteer": smoke_rsteer,
                  "smoke_lift": smoke_lift}
TORCH_BUILDERS = {"smoke_rgroup": smoke_rgroup, "smoke_mlp": smoke_mlp}
