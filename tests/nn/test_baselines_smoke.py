"""The SMOKE baselines ported from Wang, Walters & Yu's models/model_rotation.py (RGroup, RSteer,
Lift, MLP): exact C4 equivariance where their relaxation is switched off and its failure where
it is not, parameter counts at the config sizes, priors in the loss, checkpoints across train/eval
mode, and the MLP's missing latent action.

RGroup and the MLP are plain PyTorch and are tested everywhere. RSteer and Lift need escnn (the
optional `baselines` extra): their tests are skipped where it is missing, except when
APPROXEQ_REQUIRE_BASELINES is set (CI installs the extra and sets it): there a missing escnn fails.
"""
import os

import pytest
import torch
import torch.nn.functional as F
from checkpoints import assert_checkpoints_load_across_train_and_eval_mode  # noqa: E402  (tests/ is on sys.path)

from approxeq.algebra.velocity import rotate_grid, rotate_velocity
from approxeq.method.loss import LossWeights, method_loss
from approxeq.nn.baselines import (
    BASELINE_BUILDERS,
    TORCH_BASELINE_BUILDERS,
    e2cnn_latent_action,
    escnn_available,
    smoke_mlp,
    smoke_rgroup,
)
from approxeq.nn.encoder_head import count_parameters
from approxeq.nn.registry import network_problem

if os.environ.get("APPROXEQ_REQUIRE_BASELINES"):
    import escnn  # noqa: F401  (CI: fail, do not skip)
needs_escnn = pytest.mark.skipif(not escnn_available(),
                                 reason="escnn (optional extra) not installed: envs/install_baselines.sh")

# Computed from the models at config.yaml's sizes (hidden 92; Lift encoder_hidden 32; 64×64 grid),
# next to the paper's Par (M): RGroup 1.88, RSteer 5.60, Lift 3.32, MLP 8.33.
RGROUP_PARAMETERS = 1_901_128   # +1.1 %
RSTEER_PARAMETERS = 5_595_442   # 5.60
LIFT_PARAMETERS = 3_299_132     # −0.6 %
MLP_PARAMETERS = 8_324_992      # −0.06 %


def assert_equal_to_float_tolerance(actual, expected, tolerance=1e-5):
    """Equal up to float32 rounding: max |difference| at most `tolerance` × max |expected|."""
    scale = expected.abs().max().item()
    assert scale > 1e-3, "a vanishing output cannot show equivariance"
    error = (actual - expected).abs().max().item()
    assert error <= tolerance * scale, f"max |difference| {error:.3g} vs scale {scale:.3g}"


def assert_equivariant(model, x):
    """F(g·x) = g·F(x) for every quarter turn (velocity.rotate_velocity: grid and vectors, rows
    running upward), and E(g·x) = ρ(g)E(x) with the latent's action (regular fields)."""
    with torch.no_grad():
        y, z = model(x), model.encoder(x)
        assert y.shape == (x.shape[0], 2, *x.shape[-2:])
        for k in range(4):
            g = torch.full((x.shape[0],), k)
            assert_equal_to_float_tolerance(model(rotate_velocity(x, g)), rotate_velocity(y, g))
            assert_equal_to_float_tolerance(model.encoder(rotate_velocity(x, g)), e2cnn_latent_action(z, g))
        # the grid alone is not the latent's action (regular fields also permute): the test can fail
        g = torch.ones(x.shape[0], dtype=torch.long)
        assert (model.encoder(rotate_velocity(x, g)) - rotate_grid(z, g)).abs().max() > 1e-3 * z.abs().max()


def equivariance_gap(model, x) -> float:
    with torch.no_grad():
        g = torch.ones(x.shape[0], dtype=torch.long)
        return ((model(rotate_velocity(x, g)) - rotate_velocity(model(x), g)).abs().max()
                / model(x).abs().max()).item()


def velocity(seed: int, size: int = 12) -> torch.Tensor:
    return torch.randn(2, 20, size, size, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------
# RGroup (plain PyTorch)
# ---------------------------------------------------------------------------------------------

def rgroup(equal_rows: bool, seed: int = 0):
    """An RGroup on random weights: random filter banks and random relaxed weights, whose rows
    (one per group element) are equal or not."""
    torch.manual_seed(seed)
    model = smoke_rgroup(hidden=3, banks=2)
    with torch.no_grad():
        for conv in [*model.encoder[2:], model.head[0]]:
            conv.weight.normal_()
            row = torch.rand(1, 2) + 0.5
            conv.relaxed_weights.copy_(row.expand(4, -1) if equal_rows else torch.rand(4, 2) + 0.5)
    return model.eval()


def test_rgroup_with_equal_relaxed_weights_is_exactly_equivariant():
    assert_equivariant(rgroup(equal_rows=True), velocity(1))


def test_rgroup_at_initialisation_is_equivariant_and_random_relaxed_weights_break_it():
    """Their initialisation (all relaxed weights 1/(4·banks)) is equivariant; unequal rows are not."""
    torch.manual_seed(0)
    model = smoke_rgroup(hidden=3).eval()
    x = velocity(2)
    assert all(torch.equal(c.relaxed_weights, torch.full((4, 2), 1 / 8))
               for c in [*model.encoder[2:], model.head[0]])
    with torch.no_grad():
        g = torch.full((2,), 3)
        torch.testing.assert_close(model(rotate_velocity(x, g)), rotate_velocity(model(x), g))
    assert equivariance_gap(rgroup(equal_rows=False), x) > 1e-2


def test_rgroup_is_plain_pytorch_and_has_no_prior():
    assert "smoke_rgroup" in TORCH_BASELINE_BUILDERS and "smoke_rgroup" not in BASELINE_BUILDERS
    assert network_problem("smoke_rgroup") is None  # whether or not escnn is installed
    assert not hasattr(smoke_rgroup(hidden=2), "prior")  # their code has no weight constraint


def test_rgroup_parameter_count():
    assert count_parameters(smoke_rgroup()) == RGROUP_PARAMETERS  # paper: 1.88 M


# ---------------------------------------------------------------------------------------------
# MLP (plain PyTorch)
# ---------------------------------------------------------------------------------------------

def test_mlp_has_no_latent_action_and_trains_without_one():
    """The MLP's latent (a hidden vector) carries no C4 action: latent_action is None, which the
    loss never calls with λ = 0 (the baselines' weights)."""
    assert "smoke_mlp" in TORCH_BASELINE_BUILDERS and network_problem("smoke_mlp") is None
    model = smoke_mlp(hidden=4, grid=8)
    assert model.latent_action is None
    x = torch.randn(3, 20, 8, 8)
    assert model(x).shape == (3, 2, 8, 8) and model.encoder(x).shape == (3, 4)
    total, terms = method_loss(model.train(), x, torch.zeros(3, 2, 8, 8), torch.zeros(3, dtype=torch.long),
                               LossWeights(1.0, 0.0, 0.0), F.mse_loss, rotate_velocity, model.latent_action,
                               rotate_velocity)
    assert set(terms) == {"task"} and torch.isfinite(total)


def test_mlp_parameter_count():
    assert count_parameters(smoke_mlp()) == MLP_PARAMETERS  # paper: 8.33 M


# ---------------------------------------------------------------------------------------------
# RSteer and Lift (escnn)
# ---------------------------------------------------------------------------------------------

def rsteer(relaxed: bool, seed: int = 0):
    """An RSteer on random weights. relaxed=False: every layer's relaxed weights equal over the
    filter positions and its (free, per-channel) bias constant on each regular field, zero on the
    vector output; relaxed=True: as built (random over positions and channels)."""
    from approxeq.nn.baselines import smoke_rsteer

    torch.manual_seed(seed)
    model = smoke_rsteer(hidden=3)
    if not relaxed:
        with torch.no_grad():
            for conv in [*model.encoder[1:], model.head[0]]:
                w = conv.relaxed_weights
                w.copy_(w[..., :1].expand_as(w))
                if conv.activation:
                    conv.bias.copy_(conv.bias.view(-1, 4)[:, :1].expand(-1, 4).reshape(-1))
                else:
                    conv.bias.zero_()
    return model.eval()


@needs_escnn
def test_rsteer_with_unrelaxed_weights_is_exactly_equivariant():
    assert_equivariant(rsteer(relaxed=False), velocity(3))


@needs_escnn
def test_rsteer_with_relaxed_weights_is_not_equivariant():
    assert equivariance_gap(rsteer(relaxed=True), velocity(3)) > 1e-2


@needs_escnn
def test_rsteer_basis_is_escnns_kernel_basis():
    """Expanding one-hot weights reads escnn's basis: as many elements as an R2Conv has weights
    (12 vector→regular, 24 regular→regular, 12 regular→vector for C4 at 3×3), and the relaxed
    filter with weights equal over positions is escnn's own expanded filter."""
    from approxeq.nn.baselines.common import _escnn, planar_gspace
    from approxeq.nn.baselines.smoke import steerable_basis

    _, enn = _escnn()
    gs = planar_gspace("C4")
    for a, b, count in ((gs.irrep(1), gs.regular_repr, 12), (gs.regular_repr, gs.regular_repr, 24),
                        (gs.regular_repr, gs.irrep(1), 12)):
        basis = steerable_basis(a, b, 3)
        assert basis.shape == (count, b.size, a.size, 3, 3)
    conv = enn.R2Conv(enn.FieldType(gs, [gs.regular_repr]), enn.FieldType(gs, [gs.regular_repr]), 3, bias=False)
    torch.nn.init.normal_(conv.weights)
    expected = conv.expand_parameters()[0]
    with torch.no_grad():
        ours = torch.einsum("b,bpqkl->pqkl", conv.weights, steerable_basis(gs.regular_repr, gs.regular_repr, 3))
    torch.testing.assert_close(ours, expected)


@needs_escnn
def test_rsteer_prior_is_their_weight_constraint_and_enters_the_loss():
    model = rsteer(relaxed=False).train()
    assert model.prior().item() == 0.0  # equal over positions: no penalty
    conv = model.head[0]
    with torch.no_grad():
        conv.relaxed_weights[..., 0] += 1.0  # one position differs from its neighbour by 1
    expected = 1e-5 * (conv.relaxed_weights.shape[:-1].numel() / conv.relaxed_weights[..., 1:].numel())
    assert model.prior().item() == pytest.approx(expected, rel=1e-5)
    x = torch.randn(2, 20, 8, 8)
    total, terms = method_loss(model, x, torch.zeros(2, 2, 8, 8), torch.zeros(2, dtype=torch.long),
                               LossWeights(1.0, 0.0, 0.0), F.mse_loss, rotate_velocity, e2cnn_latent_action,
                               rotate_velocity)
    assert terms["prior"].item() == pytest.approx(expected, rel=1e-5)
    assert total.item() == pytest.approx((terms["task"] + terms["prior"]).item())


@needs_escnn
def test_rsteer_parameter_count():
    from approxeq.nn.baselines import smoke_rsteer

    assert count_parameters(smoke_rsteer()) == RSTEER_PARAMETERS  # paper: 5.60 M


@needs_escnn
def test_lift_is_equivariant_without_its_mlp_and_not_with_it():
    """With the MLP's last layer zero, Lift is its equivariant backbone (InnerBatchNorm in eval
    mode, with its initial statistics); the MLP of the whole input breaks the symmetry."""
    from approxeq.nn.baselines import smoke_lift

    torch.manual_seed(0)
    model = smoke_lift(hidden=4, encoder_hidden=4, grid=12).eval()
    last = model.encoder.mlp[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    x = velocity(4)
    assert_equivariant(model, x)
    with torch.no_grad():
        last.weight.normal_()
        last.bias.normal_()
    assert equivariance_gap(model, x) > 1e-2


@needs_escnn
def test_lift_parameter_count_and_hidden_multiple_of_four():
    from approxeq.nn.baselines import smoke_lift

    assert count_parameters(smoke_lift()) == LIFT_PARAMETERS  # paper: 3.32 M
    with pytest.raises(ValueError, match="multiple of 4"):
        smoke_lift(hidden=6)


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------

def builders():
    plain = [pytest.param(lambda: smoke_rgroup(hidden=2), id="rgroup"),
             pytest.param(lambda: smoke_mlp(hidden=4, grid=8), id="mlp")]
    if not escnn_available():
        return plain
    from approxeq.nn.baselines import smoke_lift, smoke_rsteer

    return plain + [pytest.param(lambda: smoke_rsteer(hidden=2), id="rsteer"),
                    pytest.param(lambda: smoke_lift(hidden=4, encoder_hidden=4, grid=8), id="lift")]


@pytest.mark.parametrize("build", builders())
def test_checkpoints_load_across_train_and_eval_mode(build):
    """A state dict saved in either mode loads into a fresh model in either mode and evaluates
    identically (RSteer's sampled basis is a non-persistent buffer, rebuilt, not stored)."""
    torch.manual_seed(0)
    assert_checkpoints_load_across_train_and_eval_mode(build, torch.rand(4, 20, 8, 8))

@needs_escnn
@pytest.mark.parametrize("name", ["smoke_rsteer", "smoke_rpp"])
def test_a_copied_models_prior_reads_the_copys_weights(name):
    """The trainer may deep-copy a model; its prior() must then penalise the copy, not the original."""
    import copy

    torch.manual_seed(0)
    model = BASELINE_BUILDERS[name](hidden=2)
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for p in clone.parameters():
            p.add_(torch.randn_like(p))
    assert clone.prior().item() != model.prior().item()
    with torch.no_grad():
        for p, q in zip(clone.parameters(), model.parameters()):
            p.copy_(q)
    assert clone.prior().item() == model.prior().item()
