"""What every escnn baseline shares: the optional import of escnn (with the message that says how to
install it), our groups as escnn gspaces, `Steerable`, an escnn module between plain tensors, and
the residual pathway prior's sum of two paths (`RPPSum`), its layer (`RPPBlock`) and prior
(`attach_rpp_prior`)."""
from __future__ import annotations

import types
import warnings

import torch
from torch import nn

from approxeq.algebra.symmetry import Symmetry, symmetry

INSTALL_HINT = ("escnn (the `baselines` extra) is not installed in this environment. Install it "
                "with `envs/install_baselines.sh` (./install.sh runs it; no Fortran compiler needed)")


class BaselineUnavailable(ImportError):
    """escnn is missing; the message says how to install it."""


def escnn_available() -> bool:
    """Whether escnn imports here (found and importable: a broken install counts as missing)."""
    import importlib.util

    if importlib.util.find_spec("escnn") is None:  # the common case without it, at no import cost
        return False
    try:
        _escnn()
    except BaselineUnavailable:
        return False
    return True


def _escnn():
    try:
        with warnings.catch_warnings():
            # Without py3nj (Fortran, optional: envs/install_baselines.sh) escnn warns on every import
            # that SO(3) Clebsch-Gordan coefficients are computed numerically; no planar baseline uses them.
            warnings.filterwarnings("ignore", message="`py3nj` package not found")
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


def as_symmetry(group: Symmetry | str) -> Symmetry:
    """A builder's group: the Symmetry a training job read from its run's group once, or a name (a
    library call, a test) read here into one; any subgroup of D4 acting on images."""
    return group if isinstance(group, Symmetry) else symmetry(group, "image")


def planar_gspace(group: Symmetry | str):
    """escnn's gspace of `group` (Symmetry.escnn_gspace: any subgroup of D4, our conventions)."""
    gspaces, _ = _escnn()
    builder, arguments = as_symmetry(group).escnn_gspace
    return getattr(gspaces, builder)(**arguments)


def trivial_subgroup_id(group: Symmetry | str):
    """escnn's id of the trivial subgroup of planar_gspace(group)'s fibre group
    (Symmetry.trivial_subgroup_id)."""
    return as_symmetry(group).trivial_subgroup_id


def gated(gs, fields: int, band_limit: int):
    """escnn's GatedNonLinearityUniform on `fields` fields, each the irreps of frequency up to
    `band_limit` preceded by one trivial gate per irrep: Veefkind & Cesa's fields
    (`_activation_and_out_type` in their networks/networks_cnn.py, lines 402-411 in 2D, 1678-1688
    in 3D). Its `in_type` is what the convolution before it outputs, `out_type` (gates dropped)
    what follows; its parameters are a bias per gate."""
    from escnn import group as egroup

    _, enn = _escnn()
    irreps = gs.fibergroup.bl_irreps(band_limit)
    field = egroup.directsum([gs.trivial_repr] * len(irreps) + [gs.irrep(*i) for i in irreps])
    return enn.GatedNonLinearityUniform(enn.FieldType(gs, fields * [field]))


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


class RPPSum(nn.Module):
    """Residual pathway prior (Finzi, Benton & Wilson): an equivariant path and an unconstrained
    path on the same input (plain tensors in and out, same output shape), summed, then `post` (an
    nn.Module on plain tensors; identity by default). `rpp_prior` weighs the two paths' parameters.
    Which module each path is depends on the model: one convolution (RPPBlock, the 2D baselines)
    or a whole residual block (the MedMNIST3D RPP, baselines.medmnist)."""

    def __init__(self, equivariant: nn.Module, conv: nn.Module, post: nn.Module | None = None):
        super().__init__()
        self.equivariant = equivariant
        self.conv = conv
        self.post = nn.Identity() if post is None else post

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.post(self.equivariant(x) + self.conv(x))


class RPPBlock(RPPSum):
    """One layer of a residual pathway prior network: an escnn R2Conv (equivariant path) and a
    plain Conv2d of the same shape (unconstrained path) on the same input, summed, then `post`.
    SMOKE (Wang et al.) follows the sum with a plain BatchNorm2d and ReLU, DDMNIST (Veefkind & Cesa)
    with escnn's equivariant BatchNorm and activation: the caller passes them."""

    def __init__(self, t_in, t_out, kernel: int, stride: int = 1, padding: int | None = None,
                 post: nn.Module | None = None, bias: bool = True):
        _, enn = _escnn()
        pad = (kernel - 1) // 2 if padding is None else padding
        super().__init__(
            Steerable(t_in, enn.R2Conv(t_in, t_out, kernel, stride=stride, padding=pad, bias=bias)),
            nn.Conv2d(t_in.size, t_out.size, kernel, stride=stride, padding=pad, bias=bias), post)


def rpp_prior(model: nn.Module, plain_weight: float, equivariant_weight: float = 0.0) -> torch.Tensor:
    """plain_weight × the squared L2 norm of the parameters of every RPPSum's unconstrained path
    (an RPPBlock's plain Conv2d), plus equivariant_weight × that of its equivariant path (an
    RPPBlock's R2Conv, weights and bias), over the RPPSums in `model`."""
    plain = equivariant = 0.0
    for block in model.modules():
        if isinstance(block, RPPSum):
            plain = plain + sum(p.pow(2).sum() for p in block.conv.parameters())
            equivariant = equivariant + sum(p.pow(2).sum() for p in block.equivariant.parameters())
    return plain_weight * plain + equivariant_weight * equivariant


def attach_rpp_prior(model: nn.Module, plain_weight: float, equivariant_weight: float = 0.0) -> nn.Module:
    """Give `model` the method `prior()` (rpp_prior with these weights), which loss.method_loss adds
    to the loss. Bound to the model, so a deep copy's prior reads the copy's weights."""
    model.prior = types.MethodType(lambda self: rpp_prior(self, plain_weight, equivariant_weight), model)
    return model
