"""Table 4's configured SCNN, RPP and Restriction (approxeq.nn.baselines.ddmnist_gated): Veefkind &
Cesa's networks with gated band-limited fields. The SCNN, and the RPP with its plain path zeroed,
are invariant to every element of G acting on the whole canvas (our image action) and the RPP is
not with its plain path; the Restriction is G-equivariant up to the restriction and not invariant
as a whole; the RPP prior enters the loss; parameter counts within 5 % of Table 4's Par (M)
(pinned); placements; checkpoints across train/eval mode.

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
from test_baselines import assert_equal_to_float_tolerance, randomise  # noqa: E402  (tests/ is on sys.path)
from test_baselines_ddmnist import escnn_element  # noqa: E402  (tests/ is on sys.path)

from approxeq.algebra.actions import image_action  # noqa: E402
from approxeq.algebra.groups import group_from_name  # noqa: E402
from approxeq.nn.baselines import RPPBlock, ddmnist_restriction, ddmnist_rpp, ddmnist_scnn  # noqa: E402
from approxeq.nn.encoder_head import count_parameters  # noqa: E402
from approxeq.nn.networks import DDMNIST_PLACEMENTS, ddmnist_latent_encoder  # noqa: E402
from approxeq.nn.registry import build_model  # noqa: E402

GROUPS = ["C4", "D1", "D4"]
BUILDERS = {"ddmnist_scnn": ddmnist_scnn, "ddmnist_rpp": ddmnist_rpp, "ddmnist_restriction": ddmnist_restriction}
# Computed from the models at the paper's size (c = 6, 100 classes) with the configured 66 latent
# fields, and with their 48 (Veefkind & Cesa's 8c), beside Table 4's Par (M).
PARAMETERS_66 = {"ddmnist_scnn": {"C4": 119_116, "D1": 30_616, "D4": 148_120},
                 "ddmnist_rpp": {"C4": 798_772, "D1": 81_472, "D4": 1_739_776},
                 "ddmnist_restriction": {"C4": 126_676, "D1": 35_800, "D4": 172_312}}
PARAMETERS_48 = {"ddmnist_scnn": {"C4": 116_632, "D1": 28_132, "D4": 145_636},
                 "ddmnist_rpp": {"C4": 793_696, "D1": 78_340, "D4": 1_733_404},
                 "ddmnist_restriction": {"C4": 124_192, "D1": 33_316, "D4": 169_828}}
PAPER_MILLIONS = {"ddmnist_scnn": {"C4": 0.12, "D1": 0.03, "D4": 0.15},
                  "ddmnist_rpp": {"C4": 0.79, "D1": 0.08, "D4": 1.73},
                  # the paper prints 0.33 for D1: a typo for 0.03 (their network counts 0.033 M)
                  "ddmnist_restriction": {"C4": 0.12, "D1": 0.03, "D4": 0.17}}


def canvas(seed: int, batch: int = 3) -> torch.Tensor:
    return torch.rand(batch, 1, 56, 56, generator=torch.Generator().manual_seed(seed))


def moved_by_every_element(x: torch.Tensor, group: str) -> torch.Tensor:
    """x moved by each non-identity element of G, stacked: (|G| − 1, B, ...)."""
    action = image_action(group_from_name(group), 56)
    return torch.stack([action(x, torch.full((len(x),), g)) for g in range(1, group_from_name(group).order)])


def latents_and_logits(model, x: torch.Tensor, moved: torch.Tensor):
    """(latent, logits) of x and of every moved copy, in one batch (eval mode: batch-independent)."""
    with torch.no_grad():
        latent = model.encoder(torch.cat([x, moved.flatten(0, 1)]))
        logits = model.head(latent)
    split = lambda t: (t[:len(x)], t[len(x):].unflatten(0, moved.shape[:2]))  # noqa: E731
    return split(latent), split(logits)


def assert_invariant(model, x, moved) -> None:
    for reference, copies in latents_and_logits(model, x, moved):
        assert_equal_to_float_tolerance(copies, reference.expand_as(copies))


def relative_changes(model, x, moved) -> torch.Tensor:
    """Per element: max |F(g·x) − F(x)| / max |F(x)| over the logits."""
    _, (logits, copies) = latents_and_logits(model, x, moved)
    return (copies - logits).flatten(1).abs().amax(1) / logits.abs().max()


@pytest.mark.parametrize("group", GROUPS)
def test_scnn_is_invariant_to_every_element_on_the_whole_canvas(group):
    """Logits and latent unchanged to float tolerance (R2Upsampling, the disc mask, antialiased
    pooling and every stride keep the canvas's symmetry)."""
    torch.manual_seed(0)
    model = randomise(ddmnist_scnn(group, c=1, latent_dim=8))
    x = canvas(1)
    assert_invariant(model, x, moved_by_every_element(x, group))


@pytest.mark.parametrize("group", GROUPS)
def test_rpp_is_not_invariant_and_is_with_its_plain_path_zeroed(group):
    """randomise sets every R2Conv's coefficients to [0.5, 1], which drowns the plain path at its
    default initialisation: its weights are drawn from N(0, 1) here."""
    torch.manual_seed(0)
    model = randomise(ddmnist_rpp(group, c=1, latent_dim=8))
    plain = [block.conv for block in model.modules() if isinstance(block, RPPBlock)]
    x = canvas(2)
    moved = moved_by_every_element(x, group)
    with torch.no_grad():
        for conv in plain:
            torch.nn.init.normal_(conv.weight)
    assert (relative_changes(model, x, moved) > 1e-3).all()
    with torch.no_grad():
        for conv in plain:
            for parameter in conv.parameters():
                parameter.zero_()
    assert_invariant(model, x, moved)


@pytest.mark.parametrize("group", GROUPS)
def test_restriction_is_equivariant_up_to_the_restriction_and_not_invariant(group):
    """Before the RestrictionModule the features transform by their field type's action (each our
    element matched with escnn's by its action on the upsampled canvas); the whole network is not
    invariant to any non-identity element."""
    from escnn import nn as enn

    torch.manual_seed(0)
    model = randomise(ddmnist_restriction(group, c=1, latent_dim=8))
    stages = list(model.encoder)
    cut = next(i for i, s in enumerate(stages)
               if isinstance(getattr(s, "module", None), enn.SequentialModule)
               and isinstance(s.module[0], enn.RestrictionModule))
    assert cut == 7  # upsampling and mask, blocks 1-4, two poolings
    upsample, before, t_cut = stages[0], torch.nn.Sequential(*stages[1:cut]), stages[cut].in_type
    x = canvas(3)
    moved = moved_by_every_element(x, group)
    with torch.no_grad():
        x_up = upsample(x)
        features = enn.GeometricTensor(before(x_up), t_cut)
        for gx in moved:
            element = escnn_element(group, x_up, upsample(gx), stages[0].in_type)
            assert_equal_to_float_tolerance(before(upsample(gx)), features.transform(element).tensor)
    assert (relative_changes(model, x, moved) > 1e-3).all()


def test_rpp_prior_is_the_weighted_l2_of_both_paths_and_enters_the_loss():
    """prior = 1e-5 × ‖R2Convs‖² + 1e-3 × ‖Conv2ds‖² (their RPPConv_L2), added by method_loss."""
    from approxeq.method.loss import LossWeights, method_loss

    model = randomise(ddmnist_rpp("D1", c=1, latent_dim=4))
    blocks = [b for b in model.modules() if isinstance(b, RPPBlock)]
    assert len(blocks) == 6
    expected = sum(1e-5 * p.pow(2).sum().item() for b in blocks for p in b.equivariant.parameters()) + \
        sum(1e-3 * p.pow(2).sum().item() for b in blocks for p in b.conv.parameters())
    assert model.prior().item() == pytest.approx(expected)
    identity = lambda z, g: z  # noqa: E731  (no shift, no latent term: actions unused)
    total, terms = method_loss(model.train(), canvas(4, batch=4), torch.arange(4),
                               torch.zeros(4, dtype=torch.long), LossWeights(1.0, 0.0, 0.0),
                               torch.nn.functional.cross_entropy, identity, identity, identity)
    assert terms["prior"].item() == pytest.approx(expected)
    assert total.item() == pytest.approx((terms["task"] + terms["prior"]).item())


def test_parameter_counts_at_the_paper_size_against_table_4():
    """Table 4's Par (M) counts their network (8c = 48 latent fields): each of the nine matches the
    printed value to its two decimals or within 5 %. The configured 66 fields (the paper's Section
    6.1 widening) add 2.5-6.4 k parameters (1×1 conv and head; Restriction C4 0.127 M, RPP C4
    0.799 M: docs/baselines.md)."""
    def count(name, group, **kwargs):  # escnn's weight initialisation skipped where offered: counts only
        fast = {"initialize": False} if name != "ddmnist_rpp" else {}
        return count_parameters(build_model(name, group=group, **fast, **kwargs))

    counts = {name: {g: count(name, g) for g in GROUPS} for name in BUILDERS}
    assert counts == PARAMETERS_66
    theirs = {name: {g: count(name, g, latent_dim=48) for g in GROUPS} for name in BUILDERS}
    assert theirs == PARAMETERS_48
    for name, papers in PAPER_MILLIONS.items():
        for group, paper in papers.items():
            millions = theirs[name][group] / 1e6
            assert round(millions, 2) == paper or abs(millions - paper) <= 0.05 * paper, (name, group)


def test_every_subgroup_of_d4_builds_and_placements_split_one_network():
    for group in ("C1", "C2", "C4", "D1", "D2", "D4"):
        with torch.no_grad():
            assert ddmnist_scnn(group, c=1, latent_dim=4).eval()(canvas(5, batch=2)).shape == (2, 100)
    torch.manual_seed(0)
    model = randomise(ddmnist_restriction("C4", c=1, latent_dim=8, latent="conv"))
    x = canvas(6, batch=4)
    with torch.no_grad():
        for placement in DDMNIST_PLACEMENTS:
            view = ddmnist_latent_encoder(model, placement).eval()
            assert view.encoder(x).shape == (4, 8)
            torch.testing.assert_close(view(x), model(x))


def test_checkpoints_load_across_train_and_eval_mode():
    """escnn caches expanded filters in eval mode; the disc mask is a buffer, not a parameter
    (RPPBlock's round trip: test_baselines_ddmnist.py)."""
    build = lambda: ddmnist_scnn("C4", c=1, latent_dim=4)  # noqa: E731
    assert not any("mask" in name for name, _ in build().named_parameters())
    assert_checkpoints_load_across_train_and_eval_mode(build, canvas(7, batch=2))
