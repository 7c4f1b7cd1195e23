"""Learning the latent representation (paper Section 4, method.md "Exploratory experiments").

A learnable d×d matrix W_s per generator s of a presentation of G; W_g for any element is the
product along the group's word for g. The loss

    L = ℓ(D(E(x)), y) + λ_out ℓ(D(W_g E(x)), ρ_Y(g) y) + λ_in MSE(E(ρ_X(g) x), W_g E(x))
        + λ_W (algebra loss + regulariser)
(LossWeights: output_equivariance = λ_out, equivariance = λ_in, algebra = λ_W)

trains the network and the W_s together; the algebra loss is the mean over the presentation's
relations r = e of MSE(word_r(W), I). The regulariser is zero at a true representation but shapes
the landscape: for each generator s of order k, MSE(W_s^(k−1), W_s⁻¹), W_s⁻¹ from a linear solve
(C2: MSE(W, W⁻¹); C4: MSE(W³, W⁻¹), as method.md; D3: the same per generator).
"""
from __future__ import annotations

from functools import reduce
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from approxeq.algebra.groups import FiniteGroup
from approxeq.algebra.representations import apply_matrices
from approxeq.method.loss import Action, LossWeights, Objective

INITIALISATIONS = ("random", "orthogonal", "identity", "identity_noise")


class LearnedRepresentation(nn.Module):
    def __init__(self, group: FiniteGroup, dim: int, init: str = "random", generator=None):
        super().__init__()
        if not group.relations:
            raise ValueError(f"{group.name} has no presentation (relations) to build an algebra loss from")
        self.group, self.dim = group, dim
        self.generator_matrices = nn.Parameter(
            torch.stack([initial_matrix(dim, init, generator) for _ in group.generators]))

    def word(self, word: tuple[int, ...]) -> torch.Tensor:
        eye = torch.eye(self.dim, device=self.generator_matrices.device)
        return reduce(lambda m, s: m @ self.generator_matrices[s], word, eye)

    def element_matrices(self) -> torch.Tensor:
        """(|G|, d, d): W_g along the group's word for every element g."""
        return torch.stack([self.word(w) for w in self.group.words])

    def algebra_loss(self) -> torch.Tensor:
        eye = torch.eye(self.dim, device=self.generator_matrices.device)
        return torch.stack([F.mse_loss(self.word(r), eye) for r in self.group.relations]).mean()

    def regulariser(self) -> torch.Tensor:
        eye = torch.eye(self.dim, device=self.generator_matrices.device)
        terms = []
        for position, s in enumerate(self.group.generators):
            w = self.generator_matrices[position]
            k = self.group.order_of(s)
            inverse = torch.linalg.solve(w, eye)
            terms.append(F.mse_loss(self.word((position,) * (k - 1)), inverse))
        return torch.stack(terms).mean()


def initial_matrix(dim: int, init: str, generator=None) -> torch.Tensor:
    if init == "identity":
        return torch.eye(dim)
    if init == "identity_noise":
        return torch.eye(dim) + 0.1 * torch.randn(dim, dim, generator=generator) / dim ** 0.5
    if init == "orthogonal":
        q, r = torch.linalg.qr(torch.randn(dim, dim, generator=generator))
        return q * torch.sign(torch.diagonal(r))
    if init == "random":  # eigenvalues spread over the unit disc (circular law): an uneven start
        return torch.randn(dim, dim, generator=generator) / dim ** 0.5
    raise ValueError(f"unknown initialisation {init!r}; choose one of {INITIALISATIONS}")


def learned_objective(weights: LossWeights, task_loss: Callable, input_action: Action,
                      output_action: Action) -> Objective:
    def objective(model, x, y, g):
        representation: LearnedRepresentation = model.representation
        matrices = representation.element_matrices()
        z = model.encoder(x)
        task = task_loss(model.head(z), y)
        moved = apply_matrices(matrices, g, z)
        out = task_loss(model.head(moved), output_action(y, g))
        into = F.mse_loss(model.encoder(input_action(x, g)), moved)
        algebra = representation.algebra_loss()
        regulariser = representation.regulariser()
        total = (weights.task * task + weights.output_equivariance * out + weights.equivariance * into
                 + weights.algebra * (algebra + weights.regulariser * regulariser))
        terms = {"task": task, "equivariance_out": out, "equivariance_in": into,
                 "algebra": algebra, "regulariser": regulariser}
        return total, {k: v.detach() for k, v in terms.items()}
    return objective


@torch.no_grad()
def learned_metrics(model, x: torch.Tensor, y: torch.Tensor, group_order: int, task_loss: Callable,
                    input_action: Action, output_action: Action, prepare: Callable,
                    seed: int = 0, batch_size: int = 500) -> dict[str, float]:
    """Test-set means of the task loss and both equivariance losses, one seeded g per sample,
    plus the algebra loss and regulariser of the learned matrices."""
    was_training = model.training
    model.eval()
    g_all = torch.randint(group_order, (len(x),), generator=torch.Generator().manual_seed(seed)).to(x.device)
    matrices = model.representation.element_matrices()
    sums = {"task": 0.0, "equivariance_out": 0.0, "equivariance_in": 0.0}
    for i in range(0, len(x), batch_size):
        xb, yb, g = prepare(x[i:i + batch_size]), y[i:i + batch_size], g_all[i:i + batch_size]
        z = model.encoder(xb)
        moved = apply_matrices(matrices, g, z)
        n = len(xb)
        sums["task"] += task_loss(model.head(z), yb).item() * n
        sums["equivariance_out"] += task_loss(model.head(moved), output_action(yb, g)).item() * n
        sums["equivariance_in"] += F.mse_loss(model.encoder(input_action(xb, g)), moved).item() * n
    model.train(was_training)
    result = {k: v / len(x) for k, v in sums.items()}
    result["algebra"] = model.representation.algebra_loss().item()
    result["regulariser"] = model.representation.regulariser().item()
    return result


def eigenvalue_record(model, generator_position: int = 0) -> dict[str, list[float]]:
    """Eigenvalues of one learned generator matrix, for the per-epoch history (Figure 4)."""
    with torch.no_grad():
        w = model.representation.generator_matrices[generator_position].detach().double().cpu()
        eigenvalues = torch.linalg.eigvals(w)
    return {"eig_real": eigenvalues.real.tolist(), "eig_imag": eigenvalues.imag.tolist()}
