"""The method as one loss, for any encoder/head pair (paper Section 5, method.md):

    L = w_task · ℓ(F(x), y) + w_shift · ℓ(F(g·x), g·y) + λ · MSE(E(g·x), ρ_Z(g) E(x))

The plain CNN is (w_shift = 0, λ = 0) and the augmented CNN is λ = 0 with augmented data or
w_shift > 0: settings of this same function, not separate models.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from .models import EncoderHead

Action = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# objective(model, x, y, g) -> (total loss, {term name: detached value})
Objective = Callable[[EncoderHead, torch.Tensor, torch.Tensor, torch.Tensor],
                     tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class LossWeights:
    task: float = 1.0
    shift: float = 0.0
    equivariance: float = 0.0  # λ

    @property
    def needs_transformed_input(self) -> bool:
        return self.shift > 0 or self.equivariance > 0


def method_loss(model: EncoderHead, x: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
                weights: LossWeights, task_loss: Callable, input_action: Action,
                latent_action: Action, output_action: Action,
                predict: Callable | None = None,
                shift_target: Callable | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return the total loss and its detached terms. `g` holds one element index per sample.

    x and g·x go through the network in separate calls, so with λ = 0 this is exactly the
    augmented baseline (BatchNorm statistics are never shared between the two batches).

    For multi-step tasks, `predict(model, head_output, x)` extends the network's one-step output to the
    full prediction compared with y (SMOKE: an autoregressive rollout), and `shift_target(y)` picks
    the part of y the shifted term compares F(g·x) with (SMOKE: the first predicted frame).
    """
    z = model.encoder(x)
    first = model.head(z)
    task = task_loss(predict(model, first, x) if predict else first, y)
    total = weights.task * task
    terms = {"task": task.detach()}
    if weights.needs_transformed_input:
        gz = model.encoder(input_action(x, g))
        if weights.shift > 0:
            target = shift_target(y) if shift_target else y
            shift = task_loss(model.head(gz), output_action(target, g))
            total = total + weights.shift * shift
            terms["shift"] = shift.detach()
        if weights.equivariance > 0:
            equivariance = F.mse_loss(gz, latent_action(z, g))
            total = total + weights.equivariance * equivariance
            terms["equivariance"] = equivariance.detach()
    return total, terms


def method_objective(weights: LossWeights, task_loss: Callable, input_action: Action,
                     latent_action: Action, output_action: Action) -> Objective:
    """The method's loss with everything but the batch fixed, for the trainer."""
    def objective(model, x, y, g):
        return method_loss(model, x, y, g, weights, task_loss, input_action, latent_action, output_action)
    return objective
