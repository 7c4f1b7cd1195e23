"""The escnn baselines (approxeq.nn.baselines): equivariance by construction on random weights under
every group element, parameter counts, checkpoints across train/eval mode, and the setup of
the experiments that train them.

Skipped where escnn (the optional `baselines` extra) is missing, except when
APPROXEQ_REQUIRE_BASELINES is set (CI installs the extra and sets it): there a missing escnn fails.
"""
import os

import pytest
import torch

if os.environ.get("APPROXEQ_REQUIRE_BASELINES"):
    import escnn  # noqa: F401  (CI: fail, do not skip)
else:
    pytest.importorskip("escnn", reason="escnn (optional extra) not installed: envs/install_baselines.sh")

from checkpoints import assert_checkpoints_load_across_train_and_eval_mode  # noqa: E402  (tests/ is on sys.path)

from approxeq.algebra.actions import image_action  # noqa: E402
from approxeq.algebra.groups import group_from_name  # noqa: E402
from approxeq.algebra.velocity import rotate_grid, rotate_velocity  # noqa: E402
from approxeq.nn.baselines import (
    INSTALL_HINT,
    ddmnist_scnn_regular,
    e2cnn_latent_action,
    smoke_e2cnn,
    smoke_rpp,
)
from approxeq.nn.encoder_head import count_parameters
from approxeq.nn.networks import DDMNIST_PLACEMENTS, ddmnist_latent_encoder
from approxeq.nn.registry import build_model, network_problem

GROUPS = ["C4", "D1", "D4"]
# Computed from the models at the paper's sizes (c = 6, 66 latent fields; hidden 92), next to the
# paper's Par (M) column: C4 0.12, D1 0.03, D4 0.15 (Table 4); E2CNN 0.62 (Table 6).
SCNN_PARAMETERS = {"C4": 78_772, "D1": 43_060, "D4": 150_196}
E2CNN_PARAMETERS = 622_656
RPP_PARAMETERS = 4_355_650  # paper: 4.36


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random weights: the builders' random initialisation (seeded by the caller) of the filters,
    and random biases, BatchNorm affine parameters and running statistics (instead of 0 and 1),
    so that no layer is the identity; eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point() and tensor.ndim == 1:
                low = 1.0 if name.endswith("running_var") else 0.5  # no layer amplifies much
                tensor.copy_(low + torch.rand(tensor.shape, generator=generator) * 0.5)
    return model.eval()


def assert_equal_to_float_tolerance(actual, expected, tolerance=1e-5):
    """Equal up to float32 rounding: max |difference| at most `tolerance` × max |expected|."""
    scale = expected.abs().max().item()
    assert scale > 1e-3, "a vanishing output cannot show equivariance"
    error = (actual - expected).abs().max().item()
    assert error <= tolerance * scale, f"max |difference| {error:.3g} vs scale {scale:.3g}"


@pytest.fixture(scope="module", params=GROUPS)
def scnn(request):
    torch.manual_seed(0)
    return request.param, randomise(ddmnist_scnn_regular(request.param, c=2, latent_dim=8))


def test_scnn_is_invariant_to_every_element_acting_on_the_whole_canvas(scnn):
    """Logits and latent unchanged, to float tolerance, when the 56×56 canvas is transformed by
    every element of G (our own image action, so escnn's conventions are checked against ours)."""
    group, model = scnn
    x = torch.rand(3, 1, 56, 56, generator=torch.Generator().manual_seed(1))
    action = image_action(group_from_name(group), 56)
    with torch.no_grad():
        logits, latent = model(x), model.encoder(x)
        for g in range(group_from_name(group).order):
            gx = action(x, torch.full((3,), g))
            assert not torch.equal(gx, x) or g == 0
            assert_equal_to_float_tolerance(model(gx), logits)
            assert_equal_to_float_tolerance(model.encoder(gx), latent)


def test_scnn_is_not_invariant_to_one_digit_alone():
    """The data's G×G is not the SCNN's symmetry: turning one digit changes the output."""
    from approxeq.data.ddmnist import pair_action

    torch.manual_seed(0)
    model = randomise(ddmnist_scnn_regular("C4", c=2, latent_dim=8))
    x = torch.rand(2, 1, 56, 56, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        moved = model(pair_action("C4").to("cpu")(x, torch.tensor([4, 4])))  # (quarter turn, identity)
        assert (moved - model(x)).abs().max() > 1e-4


@pytest.mark.parametrize("group", GROUPS)
def test_scnn_parameter_counts_at_the_paper_size(group):
    assert count_parameters(build_model("ddmnist_scnn_regular", group=group)) == SCNN_PARAMETERS[group]


def test_scnn_placements_split_one_network():
    """Encoder/head split as the C.1 CNN's (models.DDMNIST_PLACEMENTS): the same function at every
    placement, the latent of the configured width, and ddmnist_latent_encoder works on it."""
    torch.manual_seed(0)
    model = randomise(ddmnist_scnn_regular("D1", c=2, latent_dim=8, latent="conv"))
    x = torch.rand(4, 1, 56, 56)
    with torch.no_grad():
        for placement in DDMNIST_PLACEMENTS:
            view = ddmnist_latent_encoder(model, placement).eval()
            assert view.encoder(x).shape == (4, 8)
            torch.testing.assert_close(view(x), model(x))


def test_e2cnn_is_equivariant_to_every_rotation_of_velocity():
    """F(g·x) = g·F(x) with g the SMOKE action (velocity.rotate_velocity: grid and vectors, rows
    running upward), and E(g·x) = ρ(g)E(x) with the latent's own action."""
    torch.manual_seed(0)
    model = randomise(smoke_e2cnn(hidden=3))
    x = torch.randn(2, 20, 12, 12, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        y, z = model(x), model.encoder(x)
        assert y.shape == (2, 2, 12, 12) and z.shape == (2, 12, 12, 12)
        for k in range(4):
            g = torch.full((2,), k)
            assert_equal_to_float_tolerance(model(rotate_velocity(x, g)), rotate_velocity(y, g))
            assert_equal_to_float_tolerance(model.encoder(rotate_velocity(x, g)), e2cnn_latent_action(z, g))
        # the grid alone is not the latent's action (regular fields also permute): the test can fail
        g = torch.ones(2, dtype=torch.long)
        assert (model.encoder(rotate_velocity(x, g)) - rotate_grid(z, g)).abs().max() > 1e-3


def rpp_with_equivariant_path_alone(seed: int = 0):
    """An RPP on random weights whose plain path is zero; BatchNorm as at initialisation (its
    per-channel affine map is then constant on each regular field)."""
    torch.manual_seed(seed)
    model = smoke_rpp(hidden=3)
    with torch.no_grad():
        for block in [*model.encoder[1:], model.head[0]]:
            block.conv.weight.zero_()
            block.conv.bias.zero_()
    return model.eval()


def test_rpp_with_its_equivariant_path_alone_is_equivariant():
    model = rpp_with_equivariant_path_alone()
    x = torch.randn(2, 20, 12, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        y, z = model(x), model.encoder(x)
        for k in range(4):
            g = torch.full((2,), k)
            assert_equal_to_float_tolerance(model(rotate_velocity(x, g)), rotate_velocity(y, g))
            assert_equal_to_float_tolerance(model.encoder(rotate_velocity(x, g)), e2cnn_latent_action(z, g))
        # the plain path breaks equivariance as soon as it is not zero
        torch.nn.init.normal_(model.head[0].conv.weight)
        g = torch.ones(2, dtype=torch.long)
        assert (model(rotate_velocity(x, g)) - rotate_velocity(model(x), g)).abs().max() > 1e-3


def test_rpp_prior_is_the_l2_of_the_plain_path_and_enters_the_loss():
    from approxeq.method.loss import LossWeights, method_loss

    model = rpp_with_equivariant_path_alone()
    assert model.prior().item() == 0.0
    conv = model.head[0].conv
    with torch.no_grad():
        conv.weight.fill_(1.0)
    assert model.prior().item() == pytest.approx(1e-6 * conv.weight.numel())
    x = torch.randn(2, 20, 8, 8)
    total, terms = method_loss(model.train(), x, torch.zeros(2, 2, 8, 8), torch.zeros(2, dtype=torch.long),
                               LossWeights(1.0, 0.0, 0.0), torch.nn.functional.mse_loss,
                               rotate_velocity, e2cnn_latent_action, rotate_velocity)
    assert terms["prior"].item() == pytest.approx(1e-6 * conv.weight.numel())
    assert total.item() == pytest.approx((terms["task"] + terms["prior"]).item())


def test_rpp_parameter_count_matches_the_paper():
    assert count_parameters(smoke_rpp()) == RPP_PARAMETERS


def test_e2cnn_latent_action_is_a_homomorphism():
    z = torch.randn(1, 8, 5, 5)
    for a in range(4):
        for b in range(4):
            ga, gb = torch.tensor([a]), torch.tensor([b])
            torch.testing.assert_close(e2cnn_latent_action(e2cnn_latent_action(z, gb), ga),
                                       e2cnn_latent_action(z, torch.tensor([(a + b) % 4])))


def test_e2cnn_parameter_count_matches_the_paper():
    assert count_parameters(smoke_e2cnn()) == E2CNN_PARAMETERS  # paper: 0.62 M


@pytest.mark.parametrize("build, shape", [(lambda: smoke_e2cnn(hidden=2), (2, 20, 8, 8)),
                                          (lambda: smoke_rpp(hidden=2), (2, 20, 8, 8)),
                                          (lambda: ddmnist_scnn_regular("C4", c=1, latent_dim=4), (2, 1, 56, 56))])
def test_checkpoints_load_across_train_and_eval_mode(build, shape):
    """escnn caches expanded filters in eval mode; a state dict saved in either mode loads into a
    fresh model in either mode and evaluates identically."""
    torch.manual_seed(0)
    assert_checkpoints_load_across_train_and_eval_mode(build, torch.rand(shape))


def test_network_problem_names_unknown_networks():
    assert network_problem("ddmnist_scnn_regular") is None and network_problem("smoke_e2cnn") is None
    assert "unknown network 'nope'" in network_problem("nope")
    assert "envs/install_baselines.sh" in INSTALL_HINT
