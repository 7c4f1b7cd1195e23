"""Learned latent representations: the algebra loss and regulariser vanish exactly on true
representations and not elsewhere; the Section 4 objective; eigenvalue records."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from approxeq.algebra.actions import image_action, trivial_action
from approxeq.algebra.characters import character_table
from approxeq.algebra.decomposition import decompose, element_matrices
from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import latent_representation
from approxeq.method.loss import LossWeights
from approxeq.method.learned import (
    LearnedRepresentation,
    eigenvalue_record,
    initial_matrix,
    learned_objective,
)
from approxeq.nn.encoder_head import EncoderHead


def set_generators(representation, group, rep):
    """Load the generator matrices of a known representation (|G|, d, d) into the module."""
    with torch.no_grad():
        representation.generator_matrices.copy_(torch.stack([rep[s] for s in group.generators]))


@pytest.mark.parametrize("name, d", [("C2", 42), ("C4", 64), ("D3", 30), ("O", 48)])
def test_losses_vanish_on_a_true_representation_and_not_off_it(name, d):
    group = group_from_name(name)
    module = LearnedRepresentation(group, d, "orthogonal", torch.Generator().manual_seed(0))
    rep = latent_representation(group, d)
    basis = torch.linalg.qr(torch.randn(d, d, generator=torch.Generator().manual_seed(1)))[0]
    conjugated = basis @ rep @ basis.T  # another basis: still a representation
    set_generators(module, group, conjugated)
    assert module.algebra_loss().item() < 1e-10
    assert module.regulariser().item() < 1e-10
    # element matrices follow the words: a homomorphism with the group's table
    mats = module.element_matrices().detach()
    assert torch.allclose(mats, conjugated, atol=1e-5)
    perturbed = conjugated + 0.05 * torch.randn(conjugated.shape, generator=torch.Generator().manual_seed(2))
    set_generators(module, group, perturbed)
    assert module.algebra_loss().item() > 1e-5


def test_decomposition_of_learned_matrices_recovers_the_regular_multiple():
    group = group_from_name("D3")
    module = LearnedRepresentation(group, 30, "orthogonal")
    set_generators(module, group, latent_representation(group, 30))
    result = decompose(group, element_matrices(group, module.generator_matrices.detach().double().numpy()))
    assert result.as_dict()["real_nearest_integers"] == {"trivial": 5, "sign": 5, "standard": 10}
    assert result.homomorphism_error < 1e-9
    assert len(character_table(group).labels) == 3


def test_training_only_the_algebra_loss_reaches_a_representation():
    group = group_from_name("C4")
    module = LearnedRepresentation(group, 16, "orthogonal", torch.Generator().manual_seed(0))
    optimizer = torch.optim.Adam(module.parameters(), lr=0.003)
    start = module.algebra_loss().item()
    for _ in range(300):
        loss = module.algebra_loss() + module.regulariser()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert module.algebra_loss().item() < 1e-4 * start
    result = decompose(group, element_matrices(group, module.generator_matrices.detach().double().numpy()))
    assert result.real_distance_to_integers < 0.05


def test_initialisations():
    g = torch.Generator().manual_seed(0)
    q = initial_matrix(8, "orthogonal", g)
    assert torch.allclose(q @ q.T, torch.eye(8), atol=1e-5)
    assert torch.equal(initial_matrix(5, "identity"), torch.eye(5))
    with pytest.raises(ValueError, match="unknown initialisation"):
        initial_matrix(5, "zeros")


def test_groups_without_presentation_are_refused():
    from approxeq.algebra.groups import FiniteGroup
    bare = FiniteGroup("C2bare", ("e", "a"), group_from_name("C2").table, generators=(1,))
    with pytest.raises(ValueError, match="no presentation"):
        LearnedRepresentation(bare, 4)


def test_objective_terms_and_eigenvalue_record():
    group = group_from_name("C4")
    d = 8
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(16, d))
    model = EncoderHead(encoder, nn.Linear(d, 3), d)
    model.representation = LearnedRepresentation(group, d, "orthogonal", torch.Generator().manual_seed(0))
    weights = LossWeights(output_equivariance=0.25, equivariance=0.25, algebra=1.0, regulariser=0.5)
    objective = learned_objective(weights, F.cross_entropy, image_action(group, 4), trivial_action)
    x, y, g = torch.randn(5, 1, 4, 4), torch.randint(3, (5,)), torch.randint(4, (5,))
    total, terms = objective(model, x, y, g)
    expected = (terms["task"] + 0.25 * terms["equivariance_out"] + 0.25 * terms["equivariance_in"]
                + 1.0 * (terms["algebra"] + 0.5 * terms["regulariser"]))
    assert torch.allclose(total.detach(), expected)
    total.backward()
    assert model.representation.generator_matrices.grad.abs().sum() > 0  # W is learned
    record = eigenvalue_record(model)
    assert len(record["eig_real"]) == len(record["eig_imag"]) == d
    eigenvalues = torch.complex(torch.tensor(record["eig_real"]), torch.tensor(record["eig_imag"]))
    assert torch.allclose(eigenvalues.abs(), torch.ones(d, dtype=torch.float32), atol=1e-4)  # orthogonal start
