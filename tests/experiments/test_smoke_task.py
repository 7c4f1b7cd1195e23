"""The SMOKE objective is the method's loss on rolled-out windows; RMSE of rollouts."""
import torch
import torch.nn.functional as F

from approxeq.algebra.velocity import rotate_grid, rotate_velocity
from approxeq.data.smoke_data import gather_windows, rmse, rollout
from approxeq.experiments.smoke import rollout_rmse, smoke_objective
from approxeq.method.loss import LossWeights
from approxeq.nn.networks import smoke_convnet

H = 8


def setup():
    torch.manual_seed(0)
    frames = torch.randn(3, 30, 2, H, H)
    index_of_k = {1: 0, 2: 1, 3: 2}
    windows = torch.tensor([[1, 0], [2, 3], [3, 5], [1, 7]])

    def inputs_of(w):
        return gather_windows(frames, index_of_k, w, 2, 10)

    def targets_of(w, horizon):
        return gather_windows(frames, index_of_k, w, 12, horizon)

    model = smoke_convnet(hidden=6)
    model.eval()  # BatchNorm on running statistics: repeated forward passes agree exactly
    return model, windows, inputs_of, targets_of


def test_task_term_is_the_mse_of_the_rollout_and_augmentation_rotates_both_sides():
    model, windows, inputs_of, targets_of = setup()
    x, g = inputs_of(windows), torch.tensor([0, 1, 2, 3])
    total, terms = smoke_objective(LossWeights(), targets_of, 4)(model, x, windows, g)
    expected = F.mse_loss(rollout(model, x, 4), targets_of(windows, 4))
    assert torch.allclose(total, expected) and set(terms) == {"task"}
    total, _ = smoke_objective(LossWeights(), targets_of, 4, augment=True)(model, x, windows, g)
    rotated = F.mse_loss(rollout(model, rotate_velocity(x, g), 4), rotate_velocity(targets_of(windows, 4), g))
    assert torch.allclose(total, rotated)


def test_shift_and_latent_terms():
    model, windows, inputs_of, targets_of = setup()
    x, g = inputs_of(windows), torch.tensor([1, 1, 3, 2])
    weights = LossWeights(task=1.0, shift=0.5, equivariance=0.005)
    total, terms = smoke_objective(weights, targets_of, 3)(model, x, windows, g)
    gx = rotate_velocity(x, g)
    shift = F.mse_loss(model(gx), rotate_velocity(targets_of(windows, 1), g))
    latent = F.mse_loss(model.encoder(gx), rotate_grid(model.encoder(x), g))
    assert torch.allclose(terms["shift"], shift) and torch.allclose(terms["equivariance"], latent)
    assert torch.allclose(total, terms["task"] + 0.5 * shift + 0.005 * latent)


def test_rollout_rmse_matches_the_protocol_definition():
    model, windows, inputs_of, targets_of = setup()
    value = rollout_rmse(model, windows, inputs_of, targets_of, 5, batch_size=3)
    with torch.no_grad():
        batches = [windows[:3], windows[3:]]
        expected = rmse([rollout(model, inputs_of(b), 5) for b in batches], [targets_of(b, 5) for b in batches])
    assert abs(value - expected) < 1e-6
