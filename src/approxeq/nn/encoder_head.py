"""The one network shape every experiment uses: an encoder E (input → the latent on which ρ_Z acts)
and a head D (latent → output)."""
from __future__ import annotations

import torch
from torch import nn


class EncoderHead(nn.Module):
    """F = D ∘ E, with the latent exposed for the equivariance term of the method."""

    def __init__(self, encoder: nn.Module, head: nn.Module, latent_dim: int):
        super().__init__()
        self.encoder = encoder
        self.head = head
        self.latent_dim = latent_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
