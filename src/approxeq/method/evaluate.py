"""Evaluation of a trained model: task metrics and the latent equivariance error."""
from __future__ import annotations

from typing import Callable

import torch

from approxeq.method.loss import Action
from approxeq.nn.encoder_head import EncoderHead


@torch.no_grad()
def batched(model_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
            prepare: Callable, batch_size: int = 1000) -> torch.Tensor:
    return torch.cat([model_fn(prepare(x[i:i + batch_size])) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def accuracy(model: EncoderHead, x: torch.Tensor, y: torch.Tensor, prepare: Callable = lambda t: t,
             batch_size: int = 1000) -> float:
    was_training = model.training
    model.eval()
    predictions = batched(model, x, prepare, batch_size).argmax(1)
    model.train(was_training)
    return (predictions == y).float().mean().item()


@torch.no_grad()
def latent_equivariance_error(model: EncoderHead, x: torch.Tensor, group_order: int,
                              input_action: Action, latent_action: Action,
                              prepare: Callable = lambda t: t, seed: int = 0,
                              batch_size: int = 1000) -> dict[str, float]:
    """For one seeded element g per sample: mean squared ‖E(g·x) − ρ_Z(g)E(x)‖ per latent
    coordinate (absolute), ‖E(g·x) − ρ_Z(g)E(x)‖ / ‖ρ_Z(g)E(x)‖ over the set (relative), and the
    mean ‖E(x)‖ per sample (the scale the absolute error depends on).

    The absolute error alone can be lowered by shrinking the latent; the relative one cannot. Two
    unrelated latents of equal norm and no common offset are √2 ≈ 1.41 apart in relative terms, so a
    value near √2 means "not equivariant at all" whatever the MSE says."""
    was_training = model.training
    model.eval()
    g_all = torch.randint(group_order, (len(x),), generator=torch.Generator().manual_seed(seed))
    g_all = g_all.to(x.device)
    squared_error = squared_norm = norm_sum = 0.0
    count = 0
    for i in range(0, len(x), batch_size):
        xb, g = prepare(x[i:i + batch_size]), g_all[i:i + batch_size]
        latent = model.encoder(xb)
        norm_sum += latent.flatten(1).norm(dim=1).sum().item()
        expected = latent_action(latent, g)
        difference = model.encoder(input_action(xb, g)) - expected
        squared_error += difference.pow(2).sum().item()
        squared_norm += expected.pow(2).sum().item()
        count += difference.numel()
    model.train(was_training)
    return {"latent_equivariance_mse": squared_error / count,
            "latent_equivariance_relative": (squared_error / max(squared_norm, 1e-30)) ** 0.5,
            "latent_norm_mean": norm_sum / len(x)}
