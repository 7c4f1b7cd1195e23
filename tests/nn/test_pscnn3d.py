"""Table 5's PSCNN (approxeq.nn.baselines.pscnn3d on so3_fourier): Veefkind & Cesa's 3D ResNet with
learnable equivariance over SO(3) and O(3). With every likelihood uniform (initialisation) its
logits and latent are invariant, to float precision, under the 24 rotations of the cube acting on
the 28³ grid by exact voxel permutation (our volume action), the O(3) model also under a reflection;
with the likelihoods moved they are not. The prior is 0 at initialisation, positive when moved, and
enters the loss; parameter counts at the paper's size pinned within 5 % of Table 5's; checkpoints
round-trip. The harmonic analysis (quadrature, intertwiners) is checked against escnn's irreps.

Skipped where escnn (the optional `baselines` extra) is missing, except when APPROXEQ_REQUIRE_BASELINES
is set. Tiny widths (c = 1) keep each test to seconds.
"""
import os

import numpy as np
import pytest
import scipy.linalg
import torch

if os.environ.get("APPROXEQ_REQUIRE_BASELINES"):
    import escnn  # noqa: F401  (CI: fail, do not skip)
else:
    pytest.importorskip("escnn", reason="escnn (optional extra) not installed: envs/install_baselines.sh")

from test_baselines import assert_equal_to_float_tolerance  # noqa: E402  (tests/ is on sys.path)
from test_baselines_medmnist import every_rotation, randomise, relative_change, volume  # noqa: E402

from approxeq.nn.baselines import so3_fourier  # noqa: E402
from approxeq.nn.baselines.pscnn import likelihoods  # noqa: E402
from approxeq.nn.baselines.pscnn3d import PartialR3Conv, medmnist_pscnn  # noqa: E402
from approxeq.nn.encoder_head import count_parameters  # noqa: E402
from approxeq.nn.registry import build_model  # noqa: E402

GROUPS = ["SO3", "O3"]
# Computed at the paper's size (c = 6, 48 latent fields, 2 classes, L = L_out = 2), beside Table 5's
# Par (M) 4.17 (SO(3)) and 3.51 (O(3)).
PARAMETERS = {"SO3": 4_166_339, "O3": 3_511_682}
PAPER_MILLIONS = {"SO3": 4.17, "O3": 3.51}


def uniform(model: torch.nn.Module) -> torch.nn.Module:
    with torch.no_grad():
        for likelihood in likelihoods(model):
            likelihood.theta.zero_()
            likelihood.theta[0] = 1.0
    return model


def pscnn(group: str) -> torch.nn.Module:
    """At their band limits (SO(3): 3, O(3): 2), c = 1; random BatchNorm statistics and biases (the
    likelihoods, which `randomise` also draws, set back to uniform)."""
    torch.manual_seed(0)
    model = randomise(medmnist_pscnn(group, c=1, latent_dim=8))
    with torch.no_grad():
        for conv in model.modules():
            if isinstance(conv, PartialR3Conv) and conv.bias is not None:
                conv.bias.uniform_(0.5, 1.0)
    return uniform(model)


def move(model: torch.nn.Module, scale: float = 0.3, seed: int = 1) -> torch.nn.Module:
    """Every likelihood's Fourier parameters moved away from uniform (random, fixed seed)."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for likelihood in likelihoods(model):
            likelihood.theta.add_(scale * torch.randn(likelihood.theta.shape, generator=generator))
    return model


def invariance_error(model, x: torch.Tensor, moved: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.no_grad():
        latent = model.encoder(torch.cat([x, moved]))
        logits = model.head(latent)
    return latent, logits


@pytest.fixture(scope="module", params=GROUPS)
def model(request):
    return request.param, pscnn(request.param)


def test_uniform_likelihood_is_invariant_to_every_rotation_of_the_cube_and_moved_is_not(model):
    group, network = model
    assert len(likelihoods(network)) == 3
    x = volume(11)
    invariant_at_uniform_and_not_when_moved(network, x, every_rotation(x))


def invariant_at_uniform_and_not_when_moved(network, x, transformed):
    """Latent and logits of every transformed volume equal those of x (the first row), then, with
    the likelihoods moved, they change; the network is restored afterwards."""
    latent, logits = invariance_error(network, x, transformed)
    assert_equal_to_float_tolerance(latent[1:], latent[:1].expand_as(latent[1:]))
    assert_equal_to_float_tolerance(logits[1:], logits[:1].expand_as(logits[1:]))
    state = {k: v.clone() for k, v in network.state_dict().items()}
    try:
        move(network)
        assert relative_change(network, x, transformed) > 1e-3
    finally:
        network.load_state_dict(state)


def test_o3_reflection_invariance_at_uniform_and_not_when_moved(model):
    """A mirror image is an element of O(3): the O(3) model at the uniform likelihood is invariant to
    it, and not once moved; the SO(3) model is not, even at uniform (its vector-to-vector kernels
    include the pseudo-vector coupling, as the SCNN's: test_baselines_medmnist)."""
    group, network = model
    x = volume(12)
    mirrored = torch.flip(x, (-1,))
    if group == "SO3":
        assert relative_change(network, x, mirrored) > 1e-5
        return
    invariant_at_uniform_and_not_when_moved(network, x, mirrored)


def test_prior_is_zero_at_uniform_positive_when_moved_and_enters_the_loss():
    """prior = 1 × KL(p_0 ‖ U)/3 + 1 × Σ KL(p_l ‖ p_(l−1))/3 + 5 × Σ alignment (their -kl_U, -kl, -align
    defaults), recomputed here from the likelihoods; method_loss adds it as terms["prior"]."""
    from approxeq.method.loss import LossWeights, method_loss

    network = medmnist_pscnn("SO3", c=1, latent_dim=8, band_limit=1)
    assert network.prior().item() == pytest.approx(0.0, abs=1e-6)
    move(network)
    p = likelihoods(network)
    expected = (p[0].kl_divergence(None) / 3 + (p[1].kl_divergence(p[0]) + p[2].kl_divergence(p[1])) / 3
                + 5 * sum(q.alignment() for q in p)).item()
    prior = network.prior().item()
    assert np.isfinite(prior) and prior > 1e-3 and prior == pytest.approx(expected, rel=1e-5)
    assert all(q.kl_divergence(None).item() > 0 for q in p)
    identity = lambda z, g: z  # noqa: E731
    total, terms = method_loss(network.train(), volume(4, batch=2), torch.arange(2),
                               torch.zeros(2, dtype=torch.long), LossWeights(1.0, 0.0, 0.0),
                               torch.nn.functional.cross_entropy, identity, identity, identity)
    assert terms["prior"].item() == pytest.approx(prior, rel=1e-5)
    assert total.item() == pytest.approx((terms["task"] + terms["prior"]).item(), rel=1e-5)
    total.backward()
    assert all(q.theta.grad is not None and q.theta.grad.abs().sum() > 0 for q in p)


def test_likelihood_quadrature_and_fourier_coefficients():
    """The quadrature integrates escnn's irreps of degree ≤ 7 exactly (∫ ψ = 0 for ψ ≠ trivial); the
    uniform likelihood's F(ψ) is 1 for the trivial irrep, 0 otherwise; a moved one is a density
    (∫ p = 1) whose F(ψ) are its averages of ψ."""
    for name in GROUPS:
        G = so3_fourier.group_of(name)
        elements, weights = so3_fourier.quadrature(name)
        for irrep in so3_fourier.band_limited_irreps(name, 7):
            integral = sum(w * G.irrep(*irrep)(g) for g, w in zip(elements, weights))
            assert np.abs(integral - (1.0 if irrep == G.trivial_representation.id else 0.0)).max() < 1e-12
        likelihood = so3_fourier.RotationLikelihood(name)
        for psi, F in likelihood.fourier().items():
            assert torch.allclose(F, torch.ones_like(F) if psi == G.trivial_representation.id
                                  else torch.zeros_like(F), atol=1e-6)
        with torch.no_grad():
            likelihood.theta.add_(0.5 * torch.randn(likelihood.theta.shape, generator=torch.Generator().manual_seed(3)))
        density = likelihood.log_density().exp().double()
        assert (likelihood.weights.double() * density).sum().item() == pytest.approx(1.0, abs=1e-5)
        psi = so3_fourier.band_limited_irreps(name, 2)[-1]
        expected = sum(w * d * G.irrep(*psi)(g) for g, w, d in zip(elements, weights, density.tolist()))
        assert np.abs(likelihood.fourier()[psi].detach().double().numpy() - expected).max() < 1e-5


def test_intertwiners_against_escnn_irreps():
    """Q maps irrep ψ into ρ_n ⊗ ρ_m ⊗ ρ_j equivariantly at random group elements (escnn's irreps, the
    harmonic's of O(3)), orthonormally, with as many copies as their count Σ_J [ψ ∈ J ⊗ j]."""
    so3, o3 = so3_fourier.group_of("SO3"), so3_fourier.group_of("O3")
    factors = (("SO3", (2,)), ("SO3", (1,)), ("O3", (1, 3)))
    for degree, copies in [(0, 1), (1, 2), (2, 3)]:  # J ∈ {1, 2, 3}; ψ ∈ J ⊗ 3
        Q = so3_fourier.intertwiners(factors, ("SO3", (degree,)))
        assert len(Q) == copies
        for _ in range(3):
            g = so3.sample()
            h = o3.element((0, g.to("Q")), "Q")
            rho = np.kron(np.kron(so3.irrep(2)(g), so3.irrep(1)(g)), o3.irrep(1, 3)(h))
            for q in Q:
                assert np.abs(rho @ q - q @ so3.irrep(degree)(g)).max() < 1e-8


def _harmonic_action(conv: PartialR3Conv, rotation) -> np.ndarray:
    """How the sampled harmonics of `conv` transform under a rotation (an O(3) element): block
    diagonal, O(3)'s irrep of each harmonic's degree once per ring."""
    o3 = so3_fourier.group_of("O3")
    blocks = [o3.irrep(degree % 2, degree)(rotation) for degree, rings, _ in conv.layout for _ in range(rings)]
    return scipy.linalg.block_diag(*blocks)


@pytest.mark.parametrize("group", GROUPS)
def test_filter_coefficients_are_the_likelihood_average_of_the_kernel_before_it(group):
    """At a moved likelihood p, a layer's kernel coefficients A equal ∫ p(g) (ρ_out ⊗ ρ_in ⊗ ρ_harm)(g) a dg
    computed directly from escnn's irreps on the quadrature grid, a the same weights' kernel before
    the average (every F(ψ) the identity): the layer's bookkeeping (copies, F(ψ), intertwiners,
    harmonic rows) against the definition."""
    network = move(medmnist_pscnn(group, c=1, latent_dim=8, band_limit=1), scale=0.5)
    conv = next(m for m in network.modules() if isinstance(m, PartialR3Conv))
    likelihood = conv.likelihood
    with torch.no_grad():
        before = conv.coefficients({psi: torch.eye(len(F)) for psi, F in likelihood.fourier().items()}).double()
        after = conv.coefficients().double()
        density = likelihood.log_density().exp().double().numpy()
    elements, weights = so3_fourier.quadrature(group)
    r_out, r_in = conv.out_type.representations[0], conv.in_type.representations[0]
    o3 = so3_fourier.group_of("O3")
    expected = np.zeros(after.shape)
    for g, w, p in zip(elements, weights, density):
        q = g.to("Q")
        rotation = o3.element((0, q) if group == "SO3" else (q[0], q[1]), "Q")
        out_g = r_out(r_out.group.element(q, "Q"))
        in_g = r_in(r_in.group.element(q, "Q"))
        expected += w * p * np.einsum("ab,cd,ef,uvbdf->uvace", out_g, in_g, _harmonic_action(conv, rotation),
                                      before.numpy(), optimize=True)
    assert np.abs(after.numpy() - expected).max() < 1e-5 * np.abs(expected).max()
    assert np.abs(after.numpy() - before.numpy()).max() > 0.1 * np.abs(expected).max()


def test_block_and_skip_share_one_likelihood_per_layer_id():
    """Six PartialR3Convs (block 2 and skip 1, block 4 and skip 2, block 6 and skip 3), each pair on
    one likelihood (their layer ids 0, 1, 2), in layer order."""
    network = medmnist_pscnn("O3", c=1, latent_dim=8)
    convs = [m for m in network.modules() if isinstance(m, PartialR3Conv)]
    assert len(convs) == 6
    assert [id(c.likelihood) for c in convs] == [id(p) for p in likelihoods(network) for _ in range(2)]


@pytest.mark.parametrize("group", GROUPS)
def test_parameter_counts_at_the_paper_size_within_5_percent_of_table_5(group):
    count = count_parameters(build_model("medmnist_pscnn", group=group, initialize=False))
    assert count == PARAMETERS[group]
    assert abs(count / 1e6 - PAPER_MILLIONS[group]) <= 0.05 * PAPER_MILLIONS[group]


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path):
    network = move(medmnist_pscnn("SO3", c=1, latent_dim=8, band_limit=1)).eval()
    x = volume(13, batch=2)
    with torch.no_grad():
        expected = network(x)
    torch.save(network.state_dict(), tmp_path / "model.pt")
    torch.manual_seed(5)
    fresh = medmnist_pscnn("SO3", c=1, latent_dim=8, band_limit=1).eval()
    with torch.no_grad():
        assert not torch.equal(fresh(x), expected)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt"))
    with torch.no_grad():
        assert torch.equal(fresh(x), expected)
