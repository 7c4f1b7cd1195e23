"""DDMNIST baselines of Table 4 (package docstring: what each is and where it comes from)."""
from __future__ import annotations

from torch import nn

from .common import Steerable, _escnn, planar_gspace

# models.py registers these builders, so `..models` is imported inside them (no import cycle)


def ddmnist_scnn(group: str, n_channels: int = 1, c: int = 6, latent_dim: int = 66,
                 n_classes: int = 100, upsample: int = 57, latent: str = "conv") -> EncoderHead:
    """SCNN for DDMNIST (module docstring); `latent` splits encoder and head exactly as in
    models.ddmnist_cnn (the group-pooled 1×1 conv output, after BatchNorm1d, or after its ELU)."""
    from ..models import DDMNIST_PLACEMENTS, EncoderHead

    if latent not in DDMNIST_PLACEMENTS:
        raise ValueError(f"unknown DDMNIST latent placement {latent!r}; known: {sorted(DDMNIST_PLACEMENTS)}")
    _, enn = _escnn()
    gs = planar_gspace(group)

    def regular(n):
        return enn.FieldType(gs, n * [gs.regular_repr])

    def block(t_in, t_out, kernel, stride=1, padding=0):
        return [enn.R2Conv(t_in, t_out, kernel, stride=stride, padding=padding),
                enn.InnerBatchNorm(t_out), enn.ELU(t_out)]

    t_in = enn.FieldType(gs, n_channels * [gs.trivial_repr])
    t1, t2, t3, t4, t_latent = regular(c), regular(2 * c), regular(4 * c), regular(6 * c), regular(latent_dim)
    body = enn.SequentialModule(
        *block(t_in, t1, 7, padding=2),
        *block(t1, t2, 5, padding=2),
        enn.PointwiseAvgPool2D(t2, 5, stride=2, padding=1),
        *block(t2, t3, 3, stride=2, padding=2),
        enn.PointwiseAvgPool2D(t3, 5, stride=2, padding=1),
        *block(t3, t4, 3, stride=2, padding=0),
        *block(t4, t4, 3, padding=1),
        enn.PointwiseAvgPool2D(t4, 5, stride=1, padding=1),
        enn.R2Conv(t4, t_latent, 1),
        enn.GroupPooling(t_latent))
    layers = [nn.Upsample(size=(upsample, upsample), mode="bilinear", align_corners=True),
              Steerable(t_in, body), nn.Flatten(),
              nn.BatchNorm1d(latent_dim), nn.ELU(), nn.Linear(latent_dim, n_classes)]
    split = len(layers) - DDMNIST_PLACEMENTS[latent]
    return EncoderHead(nn.Sequential(*layers[:split]), nn.Sequential(*layers[split:]), latent_dim)


ESCNN_BUILDERS = {"ddmnist_scnn": ddmnist_scnn}
TORCH_BUILDERS: dict = {}
