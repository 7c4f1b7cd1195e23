"""The method's networks, one builder per experiment (paper appendix C), each an EncoderHead.

An experiment names its builder in its config (registry.build_model).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from approxeq.nn.encoder_head import EncoderHead


class DepthwiseAvgPool2d(nn.AvgPool2d):
    """nn.AvgPool2d that computes a channels-last batch's average as a depthwise convolution with a
    constant 1/(kh·kw) kernel, the same function (count_include_pad, so every window divides by
    kh·kw). Why: on NHWC maps of 6-12 channels oneDNN's depthwise kernel runs forward and backward
    about 3.5× faster than avg_pool2d's, which alone was 15 % of a DDMNIST step (benchmarks/README.md).
    An NCHW batch takes nn.AvgPool2d itself, so the digits of a run without channels-last are as
    before; the two paths sum in another order and differ in the last bits. No parameters or
    buffers: checkpoints are those of nn.AvgPool2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last)
                and self.count_include_pad and not self.ceil_mode and self.divisor_override is None):
            return super().forward(x)
        kh, kw = nn.modules.utils._pair(self.kernel_size)
        channels = x.shape[1]
        kernel = x.new_full((channels, 1, kh, kw), 1.0 / (kh * kw))
        return F.conv2d(x, kernel, stride=self.stride, padding=self.padding, groups=channels)


def conv_bn_elu(c_in: int, c_out: int, kernel: int, stride: int = 1, padding=0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding),
                         nn.BatchNorm2d(c_out), nn.ELU())


# Where the DDMNIST latent is taken: the number of final layers that belong to the head. The three
# placements split one and the same layer sequence, so parameters, initialisation and the function
# F = head ∘ encoder do not depend on the placement; only the penalty's target does.
DDMNIST_PLACEMENTS = {
    "conv": 3,    # the 1×1 conv output before its BatchNorm (the authors' default layer, paper literal)
    "bn": 2,      # after BatchNorm1d
    "bn_elu": 1,  # after BatchNorm1d and ELU: the input of the final Linear layer
}


def ddmnist_layers(n_channels: int, c: int, latent_dim: int, n_classes: int,
                   upsample: int) -> list[nn.Module]:
    return [
        nn.Upsample(size=(upsample, upsample)),
        conv_bn_elu(n_channels, c, 7, padding=2),
        conv_bn_elu(c, 2 * c, 5, padding=2),
        DepthwiseAvgPool2d(5, stride=2, padding=1),
        conv_bn_elu(2 * c, 4 * c, 3, stride=2, padding=2),
        DepthwiseAvgPool2d(5, stride=2, padding=1),
        conv_bn_elu(4 * c, 6 * c, 3, stride=2, padding=0),
        conv_bn_elu(6 * c, 6 * c, 3, padding=1),
        DepthwiseAvgPool2d(5, stride=1, padding=1),
        nn.Conv2d(6 * c, latent_dim, 1),
        nn.Flatten(),
        nn.BatchNorm1d(latent_dim), nn.ELU(), nn.Linear(latent_dim, n_classes),
    ]


def ddmnist_cnn(n_channels: int = 1, c: int = 6, latent_dim: int = 66, n_classes: int = 100,
                upsample: int = 57, latent: str = "conv") -> EncoderHead:
    """The CNN of appendix C.1 (Veefkind & Cesa's, last 1×1 conv widened from 48 to 66 channels).

    `latent` (a key of DDMNIST_PLACEMENTS) says where the 66-dim ρ_Z acts: on the flattened output
    of that 1×1 convolution ("conv", before its BatchNorm), after the BatchNorm ("bn") or after
    BatchNorm and ELU ("bn_elu").
    """
    if latent not in DDMNIST_PLACEMENTS:
        raise ValueError(f"unknown DDMNIST latent placement {latent!r}; known: {sorted(DDMNIST_PLACEMENTS)}")
    layers = ddmnist_layers(n_channels, c, latent_dim, n_classes, upsample)
    split = len(layers) - DDMNIST_PLACEMENTS[latent]
    return EncoderHead(nn.Sequential(*layers[:split]), nn.Sequential(*layers[split:]), latent_dim)


def ddmnist_latent_encoder(model: EncoderHead, placement: str) -> EncoderHead:
    """A view of a trained ddmnist_cnn (any placement) whose encoder ends at `placement`; it shares
    the model's modules (nothing copied) and its train/eval mode, so the equivariance of one network
    can be measured at every placement."""
    if placement not in DDMNIST_PLACEMENTS:
        raise ValueError(f"unknown DDMNIST latent placement {placement!r}; known: {sorted(DDMNIST_PLACEMENTS)}")
    layers = [*model.encoder, *model.head]
    split = len(layers) - DDMNIST_PLACEMENTS[placement]
    view = EncoderHead(nn.Sequential(*layers[:split]), nn.Sequential(*layers[split:]), model.latent_dim)
    return view.train(model.training)


class SelectChannels(nn.Module):
    """Keep the first `count` channels: TMNIST samples carry (own font, other font) so that the font
    swap is a channel permutation, while the network sees only its own image."""

    def __init__(self, count: int = 1):
        super().__init__()
        self.count = count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, : self.count]


def tmnist_autoencoder(latent_dim: int = 42) -> EncoderHead:
    """The CNN autoencoder of appendix B.1 (28×28 glyphs)."""
    d = latent_dim
    encoder = nn.Sequential(
        SelectChannels(1),
        nn.Conv2d(1, d // 2, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(d // 2, d, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(d, 2 * d, 7), nn.ReLU(),
        nn.Flatten(), nn.Linear(2 * d, d))
    decoder = nn.Sequential(
        nn.Linear(d, 2 * d), nn.Unflatten(1, (2 * d, 1, 1)),
        nn.ConvTranspose2d(2 * d, d, 7), nn.ReLU(),
        nn.ConvTranspose2d(d, d // 2, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
        nn.ConvTranspose2d(d // 2, 1, 3, stride=2, padding=1, output_padding=1), nn.Sigmoid())
    return EncoderHead(encoder, decoder, d)


def mnist_mlp_autoencoder(latent_dim: int = 30) -> EncoderHead:
    """The MLP autoencoder of appendix B.2."""
    encoder = nn.Sequential(
        nn.Flatten(), nn.Linear(28 * 28, 512), nn.ReLU(), nn.Linear(512, 256), nn.ReLU(),
        nn.Linear(256, 128), nn.ReLU(), nn.Linear(128, latent_dim))
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 128), nn.ReLU(), nn.Linear(128, 256), nn.ReLU(),
        nn.Linear(256, 512), nn.ReLU(), nn.Linear(512, 28 * 28), nn.Sigmoid(),
        nn.Unflatten(1, (1, 28, 28)))
    return EncoderHead(encoder, decoder, latent_dim)


def cifar10_cnn(latent_dim: int = 64, c_hid: int = 32, n_classes: int = 10) -> EncoderHead:
    """The CNN classifier of appendix B.3 (32×32 RGB)."""
    encoder = nn.Sequential(
        nn.Conv2d(3, c_hid, 3, padding=1, stride=2), nn.GELU(),
        nn.Conv2d(c_hid, c_hid, 3, padding=1), nn.GELU(),
        nn.Conv2d(c_hid, 2 * c_hid, 3, padding=1, stride=2), nn.GELU(),
        nn.Conv2d(2 * c_hid, 2 * c_hid, 3, padding=1), nn.GELU(),
        nn.Conv2d(2 * c_hid, 2 * c_hid, 3, padding=1, stride=2), nn.GELU(),
        nn.Flatten(), nn.Linear(2 * 16 * c_hid, latent_dim))
    return EncoderHead(encoder, nn.Linear(latent_dim, n_classes), latent_dim)


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, padding=(kernel - 1) // 2),
                         nn.BatchNorm2d(c_out), nn.ReLU())


def smoke_convnet(in_channels: int = 20, out_channels: int = 2, hidden: int = 92, kernel: int = 3,
                  layers: int = 5) -> EncoderHead:
    """The ConvNet of appendix C.3 (Wang et al.): `layers − 1` conv-BN-ReLU blocks, then a conv to
    one predicted frame. Encoder = the blocks; the latent is their hidden×H×W feature map, on which
    C4 acts by rotating the grid (channels not permuted)."""
    blocks = [conv_bn_relu(in_channels, hidden, kernel)]
    blocks += [conv_bn_relu(hidden, hidden, kernel) for _ in range(layers - 2)]
    head = nn.Conv2d(hidden, out_channels, kernel, padding=(kernel - 1) // 2)
    return EncoderHead(nn.Sequential(*blocks), head, hidden)


class Residual(nn.Module):
    """block(x) + skip(x)."""

    def __init__(self, block: nn.Module, skip: nn.Module):
        super().__init__()
        self.block = block
        self.skip = skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x) + self.skip(x)


def conv3d_bn_elu(c_in: int, c_out: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(c_in, c_out, kernel, stride=stride, padding=padding),
                         nn.BatchNorm3d(c_out), nn.ELU())


def medmnist_resnet3d(n_channels: int = 1, c: int = 6, n_classes: int = 2, upsample: int = 29,
                      latent_dim: int = 48) -> EncoderHead:
    """The 3D ResNet of appendix C.2 (Veefkind & Cesa's): three residual blocks, seven 3D convs.

    Encoder = upsample 28³ → 29³, residual block 1, pool, residual blocks 2 and 3; the latent is
    the flattened 8c×1×1×1 output of block 3 (48-dim for c = 6, where ρ_Z = 2 copies of O's
    24-dim regular representation acts). Head = BatchNorm1d, ELU, Linear.
    """
    if latent_dim != 8 * c:
        raise ValueError(f"the C.2 ResNet's latent has 8c = {8 * c} coordinates, not {latent_dim}")
    block_1 = Residual(nn.Sequential(conv3d_bn_elu(n_channels, c, 7, padding=2),
                                     conv3d_bn_elu(c, 2 * c, 5, padding=2)),
                       nn.Conv3d(n_channels, 2 * c, 7, padding=2))
    block_2 = Residual(nn.Sequential(conv3d_bn_elu(2 * c, 4 * c, 3, stride=2, padding=1),
                                     nn.AvgPool3d(5, stride=2, padding=1),
                                     conv3d_bn_elu(4 * c, 6 * c, 3, stride=2, padding=2)),
                       nn.Sequential(nn.AvgPool3d(5, stride=2, padding=0), nn.Conv3d(2 * c, 6 * c, 3)))
    block_3 = Residual(nn.Sequential(conv3d_bn_elu(6 * c, 6 * c, 3, padding=1),
                                     nn.AvgPool3d(3, stride=1, padding=0),
                                     nn.Conv3d(6 * c, 8 * c, 1)),
                       nn.Conv3d(6 * c, 8 * c, 3))
    encoder = nn.Sequential(nn.Upsample(size=(upsample,) * 3), block_1,
                            nn.AvgPool3d(5, stride=2, padding=1), block_2, block_3, nn.Flatten())
    head = nn.Sequential(nn.BatchNorm1d(8 * c), nn.ELU(), nn.Linear(8 * c, n_classes))
    return EncoderHead(encoder, head, 8 * c)
