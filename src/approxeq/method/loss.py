"""The method as one loss, for any encoder/head pair (paper Section 5, method.md):

    L = w_task · ℓ(F(x), y) + w_shift · ℓ(F(g·x), g·y) + λ · MSE(E(g·x), ρ_Z(g) E(x))

The plain CNN is (w_shift = 0, λ = 0) and the augmented CNN is λ = 0 with augmented data or
w_shift > 0: settings of this same function, not separate models.

The latent term has two forms (`penalty`): "mse" as the paper writes it, and "normalised", the same
MSE divided by the latent's batch variance. Plain MSE can be lowered by shrinking the latent when the
next layer (a BatchNorm) undoes the scale for free; the normalised form is invariant to that.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from approxeq.nn.encoder_head import EncoderHead

Action = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# objective(model, x, y, g) -> (total loss, {term name: detached value})
Objective = Callable[[EncoderHead, torch.Tensor, torch.Tensor, torch.Tensor],
                     tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class LossWeights:
    """The weights of every experiment's loss, one name per idea (the config's `weights`).

    The method (method.md): task ℓ(F(x), y), shift ℓ(F(g·x), g·y), equivariance λ·‖E(g·x) − ρ_Z(g)E(x)‖.
    Section 4, where ρ_Z = W is learned: equivariance is the paper's λ_in (E(g·x) vs W_g E(x)),
    output_equivariance λ_out (D(W_g E(x)) vs g·y), algebra λ_W (the algebra loss plus
    `regulariser` × the regulariser)."""

    task: float = 1.0
    shift: float = 0.0
    equivariance: float = 0.0  # λ
    output_equivariance: float = 0.0
    algebra: float = 0.0
    regulariser: float = 0.0

    @property
    def needs_transformed_input(self) -> bool:
        return self.shift > 0 or self.equivariance > 0


PENALTIES = ("mse", "normalised")


def equivariance_penalty(transformed: torch.Tensor, expected: torch.Tensor, latent: torch.Tensor,
                         form: str = "mse") -> torch.Tensor:
    """The latent term between E(g·x) (`transformed`) and ρ_Z(g)E(x) (`expected`).

    "mse": mean squared difference per coordinate.
    "normalised": that MSE divided by the mean per-coordinate variance of E(x) (`latent`) over the
    batch. Scaling the latent by any c > 0 scales both by c², so the ratio is unchanged and, because
    the denominator is NOT detached, its gradient has no component along the scale direction (Euler:
    f(cz) = f(z) ⇒ ∇f·z = 0). A detached denominator would leave the gradient of the MSE, which still
    points towards shrinking the latent. Offsets do not help either: the variance ignores them, and
    an offset that ρ_Z moves adds to the MSE.
    """
    mse = F.mse_loss(transformed, expected)
    if form == "mse":
        return mse
    if form == "normalised":
        if latent.shape[0] < 2:
            raise ValueError("the normalised penalty needs a batch of at least 2 samples (a variance)")
        variance = latent.flatten(1).var(0, unbiased=False).mean()
        # the tiny floor only guards 0/0 for a latent constant over the batch; float32 latents of any
        # useful scale have variances many orders above it, so scale invariance holds in practice
        return mse / (variance + 1e-20)
    raise ValueError(f"unknown equivariance penalty {form!r}; known: {list(PENALTIES)}")


def method_loss(model: EncoderHead, x: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
                weights: LossWeights, task_loss: Callable, input_action: Action,
                latent_action: Action, output_action: Action,
                predict: Callable | None = None,
                shift_target: Callable | None = None,
                penalty: str = "mse", gx: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Return the total loss and its detached terms. `g` holds one element index per sample.

    x and g·x go through the network in separate calls, so with λ = 0 this is exactly the
    augmented baseline (BatchNorm statistics are never shared between the two batches).

    For multi-step tasks, `predict(model, head_output, x)` extends the network's one-step output to the
    full prediction compared with y (SMOKE: an autoregressive rollout), and `shift_target(y)` picks
    the part of y the shifted term compares F(g·x) with (SMOKE: the first predicted frame).
    `penalty` is the form of the latent term (see equivariance_penalty). `gx`: the second view of
    each sample where the data provide it (DDMNIST as the authors form the pair: a fresh element
    with its own interpolation artefacts, `g` its element), else g·x = input_action(x, g).

    With the latent after a BatchNorm (DDMNIST placement "bn"), that BatchNorm, like every
    BatchNorm inside the encoder, normalises E(x) and E(g·x) each with its own batch statistics in
    training mode. For a G-invariant data distribution and random g per sample the two batches have
    the same statistics up to sampling noise, so the term compares like with like; at test time
    (running statistics) the BatchNorm is a fixed affine map per coordinate.
    """
    # No work on a term whose weight is 0: a `task: 0` run skips the head and the task loss (and
    # the encoder pass on x too when no latent term needs E(x)). The skipped pass would also have
    # updated the BatchNorm running statistics it goes through, so such a run's eval-mode numbers
    # differ from those of the code that computed it anyway; no configured run has `task: 0`.
    if not (weights.task > 0 or weights.needs_transformed_input):
        raise ValueError(f"every loss weight is 0 ({weights}): there is nothing to train")
    total = torch.zeros((), device=x.device)
    terms = {}
    z = model.encoder(x) if weights.task > 0 or weights.equivariance > 0 else None
    if weights.task > 0:
        first = model.head(z)
        task = task_loss(predict(model, first, x) if predict else first, y)
        total = weights.task * task
        terms["task"] = task.detach()
    if weights.needs_transformed_input:
        gz = model.encoder(input_action(x, g) if gx is None else gx)
        if weights.shift > 0:
            target = shift_target(y) if shift_target else y
            shift = task_loss(model.head(gz), output_action(target, g))
            total = total + weights.shift * shift
            terms["shift"] = shift.detach()
        if weights.equivariance > 0:
            equivariance = equivariance_penalty(gz, latent_action(z, g), z, penalty)
            total = total + weights.equivariance * equivariance
            terms["equivariance"] = equivariance.detach()
    if hasattr(model, "prior"):  # a baseline's own prior on its weights (RPP: L2 on the plain path)
        prior = model.prior()
        total = total + prior
        terms["prior"] = prior.detach()
    return total, terms


def method_objective(weights: LossWeights, task_loss: Callable, input_action: Action,
                     latent_action: Action, output_action: Action, penalty: str = "mse") -> Objective:
    """The method's loss with everything but the batch fixed, for the trainer."""
    if penalty not in PENALTIES:
        raise ValueError(f"unknown equivariance penalty {penalty!r}; known: {list(PENALTIES)}")

    def objective(model, x, y, g, gx=None):
        return method_loss(model, x, y, g, weights, task_loss, input_action, latent_action, output_action,
                           penalty=penalty, gx=gx)
    return objective
