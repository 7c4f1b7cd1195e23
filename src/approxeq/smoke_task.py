"""SMOKE autoregression (paper Section 6.3, appendix C.3) as an experiment of the shared trainer.

A sample is a window (simulation k, time t) into the stored velocity frames; the input is 10
frames × 2 components, the model predicts one frame at a time and is rolled out autoregressively.
The method's loss, with C4 acting on inputs and targets by rotating grid and vectors and on the
hidden×H×W latent by rotating the grid:

    L = w_task · MSE(rollout(x), y) + w_shift · MSE(F(g·x), g·y₁) + λ · MSE(E(g·x), rot_g E(x))

(w_shift on the first predicted frame only, as the authors' code). The augmented CNN of config.yaml
is this loss with λ = 0 (method.md; the authors' `--lambda_t=0`); `augment` instead trains the task
term on whole rotated windows (g·x, g·y); the plain CNN trains on (x, y).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .loss import LossWeights, method_loss
from .models import EncoderHead
from .smoke_data import RMSEAccumulator, rollout
from .velocity import rotate_grid, rotate_velocity

FRAME_CHANNELS = 2


@dataclass(frozen=True)
class SmokeWeights:
    task: float = 1.0
    shift: float = 0.0  # on the first predicted frame of g·x
    equivariance: float = 0.0  # λ
    augment: bool = False  # train the task term on randomly rotated windows


def smoke_objective(weights: SmokeWeights, targets_of, horizon: int):
    """The method's loss (loss.method_loss) on windows: `targets_of(windows, horizon)` gathers the
    target frames, the one-step prediction is rolled out to `horizon` frames, and the shifted term
    compares F(g·x) with the first rotated target frame."""
    method_weights = LossWeights(weights.task, weights.shift, weights.equivariance)

    def predict(model: EncoderHead, first: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        if horizon == 1:
            return first
        window = torch.cat([x[:, FRAME_CHANNELS:], first], 1)
        return torch.cat([first, rollout(model, window, horizon - 1)], 1)

    def objective(model: EncoderHead, x: torch.Tensor, windows: torch.Tensor, g: torch.Tensor):
        y = targets_of(windows, horizon)
        if weights.augment:  # the augmented CNN: the task term on randomly rotated windows
            x, y = rotate_velocity(x, g), rotate_velocity(y, g)
        # the ConvNet's latent turns with the grid; a baseline brings its latent's own action
        latent_action = getattr(model, "latent_action", rotate_grid)
        return method_loss(model, x, y, g, method_weights, F.mse_loss, rotate_velocity, latent_action,
                           rotate_velocity, predict=predict,
                           shift_target=lambda target: target[:, :FRAME_CHANNELS])
    return objective


@torch.no_grad()
def rollout_rmse(model: EncoderHead, windows: torch.Tensor, inputs_of, targets_of, horizon: int,
                 batch_size: int = 16) -> float:
    """RMSE of `horizon`-step rollouts over `windows` (protocols.md: per batch the mean over steps
    of the MSE, averaged over batches, then the square root)."""
    was_training = model.training
    model.eval()
    accumulator = RMSEAccumulator()
    for i in range(0, len(windows), batch_size):
        batch = windows[i:i + batch_size]
        accumulator.update(rollout(model, inputs_of(batch), horizon), targets_of(batch, horizon))
    model.train(was_training)
    return accumulator.value()
