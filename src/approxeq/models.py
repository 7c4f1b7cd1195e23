"""Networks split into an encoder E (input → latent on which ρ_Z acts) and a head D (latent → output).

One wrapper serves every experiment; an experiment names a builder in its config.
"""
from __future__ import annotations

from typing import Callable

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


def conv_bn_elu(c_in: int, c_out: int, kernel: int, stride: int = 1, padding=0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding),
                         nn.BatchNorm2d(c_out), nn.ELU())


def ddmnist_cnn(n_channels: int = 1, c: int = 6, latent_dim: int = 66, n_classes: int = 100,
                upsample: int = 57) -> EncoderHead:
    """The CNN of appendix C.1 (Veefkind & Cesa's, last 1×1 conv widened from 48 to 66 channels).

    The latent is the flattened output of that 1×1 convolution (before its BatchNorm), where the
    66-dim ρ_Z acts.
    """
    encoder = nn.Sequential(
        nn.Upsample(size=(upsample, upsample)),
        conv_bn_elu(n_channels, c, 7, padding=2),
        conv_bn_elu(c, 2 * c, 5, padding=2),
        nn.AvgPool2d(5, stride=2, padding=1),
        conv_bn_elu(2 * c, 4 * c, 3, stride=2, padding=2),
        nn.AvgPool2d(5, stride=2, padding=1),
        conv_bn_elu(4 * c, 6 * c, 3, stride=2, padding=0),
        conv_bn_elu(6 * c, 6 * c, 3, padding=1),
        nn.AvgPool2d(5, stride=1, padding=1),
        nn.Conv2d(6 * c, latent_dim, 1),
        nn.Flatten(),
    )
    head = nn.Sequential(nn.BatchNorm1d(latent_dim), nn.ELU(), nn.Linear(latent_dim, n_classes))
    return EncoderHead(encoder, head, latent_dim)


MODEL_BUILDERS: dict[str, Callable[..., EncoderHead]] = {"ddmnist_cnn": ddmnist_cnn}


def build_model(name: str, **kwargs) -> EncoderHead:
    if name not in MODEL_BUILDERS:
        raise KeyError(f"unknown network {name!r}; known: {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[name](**kwargs)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
