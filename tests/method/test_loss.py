"""The method's loss: the latent term vanishes exactly for equivariant encoders, and λ = 0 is the
augmented baseline."""
import pytest
import torch
import torch.nn.functional as F
from equivariant_model import setup  # tests/ is on sys.path

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.data.ddmnist import pair_action
from approxeq.method.loss import LossWeights, method_loss
from approxeq.nn.encoder_head import count_parameters
from approxeq.nn.networks import ddmnist_cnn


@pytest.mark.parametrize("group_name", ["C4", "D1", "D4"])
def test_latent_term_is_zero_for_an_equivariant_encoder(group_name):
    model, action, latent_action, x, y, g = setup(group_name)
    _, terms = method_loss(model, x, y, g, LossWeights(1, 0, 1), F.cross_entropy, action,
                           latent_action, trivial_action)
    assert terms["equivariance"] < 1e-10


def test_latent_term_is_positive_for_a_generic_encoder():
    group = group_from_name("C4xC4")
    model = ddmnist_cnn()
    rep = latent_representation(group, 66)
    x = torch.rand(8, 1, 56, 56)
    g = torch.arange(8) + 1  # no identity
    _, terms = method_loss(model, x, torch.zeros(8, dtype=torch.long), g, LossWeights(1, 0, 1),
                           F.cross_entropy, pair_action("C4"), lambda z, h: apply_matrices(rep, h, z),
                           trivial_action)
    assert terms["equivariance"] > 1e-6


def test_lambda_zero_is_the_augmented_baseline():
    model, action, latent_action, x, y, g = setup("D4")
    weights = LossWeights(task=0.5, shift=0.5, equivariance=0.0)
    total, terms = method_loss(model, x, y, g, weights, F.cross_entropy, action, latent_action,
                               trivial_action)
    expected = 0.5 * F.cross_entropy(model(x), y) + 0.5 * F.cross_entropy(model(action(x, g)), y)
    assert torch.equal(total, expected)
    assert "equivariance" not in terms


def test_plain_cnn_never_transforms_the_input():
    model, _, latent_action, x, y, g = setup("C4")

    def exploding_action(x, g):
        raise AssertionError("the plain CNN must not compute g·x")

    total, terms = method_loss(model, x, y, g, LossWeights(1, 0, 0), F.cross_entropy,
                               exploding_action, latent_action, trivial_action)
    assert torch.equal(total, F.cross_entropy(model(x), y))
    assert set(terms) == {"task"}


def test_gradients_flow_into_the_encoder_from_the_latent_term():
    model2 = ddmnist_cnn()
    rep = latent_representation(group_from_name("C4xC4"), 66)
    xs = torch.rand(4, 1, 56, 56)
    loss, _ = method_loss(model2, xs, torch.zeros(4, dtype=torch.long), torch.tensor([1, 2, 3, 5]),
                          LossWeights(0, 0, 1), F.cross_entropy, pair_action("C4"),
                          lambda z, h: apply_matrices(rep, h, z), trivial_action)
    loss.backward()
    assert model2.encoder[1][0].weight.grad.abs().sum() > 0
    # the latent term does not reach the head, and with task weight 0 the head is not even run
    assert model2.head[2].weight.grad is None


def test_a_term_of_weight_zero_costs_no_work():
    """task 0: no head pass, no task loss; task 0 and λ 0 (the shift term alone): no pass on x."""
    model = ddmnist_cnn(c=1)
    calls = {"encoder": 0, "head": 0}
    for part in calls:
        getattr(model, part).register_forward_hook(lambda *_, part=part: calls.__setitem__(part, calls[part] + 1))
    rep = latent_representation(group_from_name("C4xC4"), 66)
    x, y, g = torch.rand(4, 1, 56, 56), torch.zeros(4, dtype=torch.long), torch.tensor([1, 2, 3, 5])
    expected = {LossWeights(1, 0, 0): ({"task"}, 1, 1), LossWeights(0, 0, 1): ({"equivariance"}, 2, 0),
                LossWeights(0, 1, 0): ({"shift"}, 1, 1), LossWeights(1, 1, 1): ({"task", "shift", "equivariance"}, 2, 2)}
    for weights, (terms_expected, encoder_calls, head_calls) in expected.items():
        calls.update(encoder=0, head=0)
        _, terms = method_loss(model, x, y, g, weights, F.cross_entropy, pair_action("C4"),
                               lambda z, h: apply_matrices(rep, h, z), trivial_action)
        assert set(terms) == terms_expected
        assert (calls["encoder"], calls["head"]) == (encoder_calls, head_calls), weights
    with pytest.raises(ValueError, match="nothing to train"):
        method_loss(model, x, y, g, LossWeights(0, 0, 0), F.cross_entropy, pair_action("C4"),
                    lambda z, h: z, trivial_action)


def test_ddmnist_cnn_shapes_and_parameter_count():
    model = ddmnist_cnn()
    x = torch.rand(2, 1, 56, 56)
    assert model.encoder(x).shape == (2, 66)
    assert model(x).shape == (2, 100)
    assert 30_000 < count_parameters(model) < 40_000  # the paper's 0.03 M
