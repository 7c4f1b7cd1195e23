"""The MedMNIST3D baselines of Table 5 (approxeq.nn.baselines.medmnist): Veefkind & Cesa's SCNN and
RPP 3D ResNets for SO(3) and O(3). Their logits and latent are invariant, to float precision, under
the 24 rotations of the cube acting on the 28³ grid by exact voxel permutation (our volume action),
the O(3) models also under a reflection of the grid; RPP only while its plain path is zero. The
RPP prior enters the loss; parameter counts at the paper's size (pinned, within 5 % of Table 5);
checkpoints across train/eval mode.

Skipped where escnn (the optional `baselines` extra) is missing, except when
APPROXEQ_REQUIRE_BASELINES is set (CI installs the extra and sets it): there a missing escnn fails.
Tiny widths (c = 1; RPP at band limit 1) keep each test to seconds.
"""
import os

import pytest
import torch

if os.environ.get("APPROXEQ_REQUIRE_BASELINES"):
    import escnn  # noqa: F401  (CI: fail, do not skip)
else:
    pytest.importorskip("escnn", reason="escnn (optional extra) not installed: envs/install_baselines.sh")

from checkpoints import assert_checkpoints_load_across_train_and_eval_mode  # noqa: E402  (tests/ is on sys.path)
from test_baselines import assert_equal_to_float_tolerance  # noqa: E402  (tests/ is on sys.path)

from approxeq.algebra.actions import volume_action  # noqa: E402
from approxeq.algebra.groups import octahedral  # noqa: E402
from approxeq.nn.baselines import RPPSum, medmnist_rpp, medmnist_scnn, rpp_prior  # noqa: E402
from approxeq.nn.encoder_head import count_parameters  # noqa: E402
from approxeq.nn.registry import build_model  # noqa: E402

GROUPS = ["SO3", "O3"]
SIDE = 28  # MedMNIST3D's grid (even: no voxel on a rotation axis is special)
# Computed from the models at the paper's size (c = 6, 48 latent fields, 2 classes), beside
# Table 5's Par (M): SCNN 0.13 / 0.19, RPP 18.30 / 29.30 (SO(3) / O(3)).
PARAMETERS = {("medmnist_scnn", "SO3"): 128_450, ("medmnist_scnn", "O3"): 192_800,
              ("medmnist_rpp", "SO3"): 18_263_786, ("medmnist_rpp", "O3"): 29_292_200}
PAPER_MILLIONS = {("medmnist_scnn", "SO3"): 0.13, ("medmnist_scnn", "O3"): 0.19,
                  ("medmnist_rpp", "SO3"): 18.30, ("medmnist_rpp", "O3"): 29.30}


def randomise(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random biases, BatchNorm affine parameters and running statistics (test_baselines.randomise),
    but escnn's expansion coefficients (`weights`) kept at their He initialisation: set to
    [0.5, 1] as there, seven 3D convolutions give latents of 1e6 in which the effects tested
    here (a reflection, the plain path) vanish below float rounding. Eval mode."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point() and tensor.ndim == 1 and not name.endswith(".weights"):
                low = 1.0 if name.endswith("running_var") else 0.5
                tensor.copy_(low + torch.rand(tensor.shape, generator=generator) * 0.5)
    return model.eval()


def volume(seed: int, batch: int = 1) -> torch.Tensor:
    return torch.rand(batch, 1, SIDE, SIDE, SIDE, generator=torch.Generator().manual_seed(seed))


def every_rotation(x: torch.Tensor) -> torch.Tensor:
    """The one volume x (1, C, 28, 28, 28) moved by each of the 24 elements of O (our exact voxel
    permutation), as a batch of 24; element 0 is the identity."""
    moved = volume_action(octahedral(), SIDE)(x.expand(24, *x.shape[1:]).contiguous(), torch.arange(24))
    distinct = (moved[1:] - x).flatten(1).abs().amax(1)
    assert (distinct > 0.1).all(), "every non-identity rotation moves the test volume"
    return moved


def assert_invariant(model, x: torch.Tensor, moved: torch.Tensor) -> None:
    """Latent and logits of every volume in `moved` equal those of x, to float tolerance."""
    with torch.no_grad():
        latent = model.encoder(torch.cat([x, moved]))
        logits = model.head(latent)
    assert_equal_to_float_tolerance(latent[1:], latent[:1].expand_as(latent[1:]))
    assert_equal_to_float_tolerance(logits[1:], logits[:1].expand_as(logits[1:]))


def relative_change(model, x: torch.Tensor, moved: torch.Tensor) -> float:
    """max |E(moved) − E(x)| / max |E(x)| over the latent (float rounding alone: about 1e-7)."""
    with torch.no_grad():
        latent = model.encoder(torch.cat([x, moved]))
    return ((latent[1:] - latent[:1]).abs().max() / latent[:1].abs().max()).item()


@pytest.fixture(scope="module", params=GROUPS)
def scnn(request):
    torch.manual_seed(0)
    return request.param, randomise(medmnist_scnn(request.param, c=1, latent_dim=8))


def test_scnn_is_invariant_to_every_rotation_of_the_cube(scnn):
    """Their band limits (SO(3): 3, O(3): 2): escnn's steerable basis sampled on a grid each
    rotation of the cube permutes, with strides and paddings that keep the grid's symmetry."""
    _, model = scnn
    x = volume(1)
    assert_invariant(model, x, every_rotation(x))


def test_o3_scnn_is_invariant_to_a_reflection_of_the_grid_and_so3_scnn_is_not(scnn):
    """A mirror image (one axis flipped) is an element of O(3), not of SO(3): the SO(3) network's
    kernels between vector fields include the pseudo-vector (cross product) coupling, which a
    reflection turns round. At random weights its effect is small (about 1e-4 of the latent),
    still a hundred times float rounding."""
    group, model = scnn
    x = volume(2)
    mirrored = torch.flip(x, (-1,))
    if group == "O3":
        assert_invariant(model, x, mirrored)
    else:
        assert relative_change(model, x, mirrored) > 1e-5


def rpp(group: str) -> torch.nn.Module:
    """An RPP on random weights (randomise above), at band limit 1 (its equivariant residual
    blocks are the SCNN's, tested above at their band limits)."""
    torch.manual_seed(0)
    return randomise(medmnist_rpp(group, c=1, latent_dim=8, band_limit=1))


@pytest.mark.parametrize("group", GROUPS)
def test_rpp_is_not_invariant_and_is_with_its_plain_path_zeroed(group):
    """The plain residual blocks break the invariance; with every parameter of theirs zero
    (convolutions and BatchNorms: the path outputs zero) the RPP is the SCNN, invariant."""
    x = volume(3)
    moved = every_rotation(x)
    model = rpp(group)
    assert relative_change(model, x, moved) > 1e-4
    with torch.no_grad():
        for block in model.modules():
            if isinstance(block, RPPSum):
                for parameter in block.conv.parameters():
                    parameter.zero_()
    assert_invariant(model, x, moved)


def test_rpp_prior_is_the_weighted_l2_of_both_paths_and_enters_the_loss():
    """prior = 1e-5 × ‖equivariant residual blocks‖² + 1e-3 × ‖plain residual blocks‖² (their
    RPPConv_L2 with conv_wd, basic_wd), BatchNorm parameters included; method_loss adds it."""
    from approxeq.method.loss import LossWeights, method_loss

    model = rpp("SO3")
    blocks = [b for b in model.modules() if isinstance(b, RPPSum)]
    assert len(blocks) == 3
    equivariant = sum(p.pow(2).sum().item() for b in blocks for p in b.equivariant.parameters())
    plain = sum(p.pow(2).sum().item() for b in blocks for p in b.conv.parameters())
    expected = 1e-5 * equivariant + 1e-3 * plain
    assert plain > 0 and equivariant > 0
    assert model.prior().item() == pytest.approx(expected)
    assert rpp_prior(model, 1e-3, 1e-5).item() == pytest.approx(expected)
    identity = lambda z, g: z  # noqa: E731  (no shift, no latent term: actions unused)
    total, terms = method_loss(model.train(), volume(4, batch=2), torch.arange(2),
                               torch.zeros(2, dtype=torch.long), LossWeights(1.0, 0.0, 0.0),
                               torch.nn.functional.cross_entropy, identity, identity, identity)
    assert terms["prior"].item() == pytest.approx(expected)
    assert total.item() == pytest.approx((terms["task"] + terms["prior"]).item())


def test_parameter_counts_at_the_paper_size_within_5_percent_of_table_5():
    counts = {(name, group): count_parameters(build_model(name, group=group, initialize=False))
              for name, group in PARAMETERS}
    assert counts == PARAMETERS
    for key, paper in PAPER_MILLIONS.items():
        assert abs(counts[key] / 1e6 - paper) <= 0.05 * paper, key


def test_builders_by_name_and_their_groups():
    model = build_model("medmnist_rpp", group="O3", c=1, latent_dim=8, band_limit=1, n_classes=11)
    with torch.no_grad():
        assert model.eval()(volume(5, batch=2)).shape == (2, 11)
    with pytest.raises(ValueError, match="unknown group"):
        medmnist_scnn("O", c=1)


def test_checkpoints_load_across_train_and_eval_mode():
    """escnn caches expanded filters in eval mode (every R3Conv, inside the residual blocks): a
    state dict saved in either mode loads into a fresh model in either mode. The SCNN holds every
    escnn module of the RPP, whose plain path adds plain PyTorch layers only."""
    assert_checkpoints_load_across_train_and_eval_mode(
        lambda: medmnist_scnn("SO3", c=1, latent_dim=8, band_limit=1), volume(6, batch=2))
