"""MedMNIST3D baselines of Table 5: Veefkind & Cesa's steerable 3D ResNets for SO(3) and O(3).

SCNN (`medmnist_scnn`) is their `SteerableCNN3DResnet` and RPP (`medmnist_rpp`) their
`SteerableRPP3DResnet` (QUVA-Lab/partial-escnn, commit 35ac967, networks/networks_cnn.py lines
1212-1790 and 2368-3024), rebuilt here with stock escnn (`R3Conv`) as our `EncoderHead`:

- the C.2 ResNet's plan (three residual blocks, seven convolutions; networks.medmnist_resnet3d)
  with every convolution an escnn R3Conv between fields of SO(3) or O(3) (`rot3dOnR3` /
  `flipRot3dOnR3`, maximum frequency 2L with L = 3 for SO(3) and 2 for O(3): their lines
  1247-1257). Each hidden field is the band-limited irreps up to frequency L_k plus one gate per
  irrep, activated by escnn's GatedNonLinearityUniform (their `_activation_and_out_type`, lines
  1678-1688); L_k = min(2, L), min(3, L), L, L, min(2, L) for blocks 1-5 and their fields c, 2c, 4c,
  6c, 6c. BatchNorm is escnn's IIDBatchNorm3d, pooling escnn's PointwiseAvgPoolAntialiased3D
  (sigma 0.66: a 5³ Gaussian), upsampling escnn's trilinear R3Upsampling 28³ → 29³. The last
  convolutions (1×1 without bias, and the skip) map to `latent_dim` trivial fields (their
  `invariant` default, 8c = 48 fields), so the latent is invariant; the head is BatchNorm1d, ELU,
  Linear, as the C.2 CNN's and theirs (lines 1601-1606).
- RPP: every residual block is an RPPSum of the equivariant residual block above and a plain one
  of the same shape (Conv3d + BatchNorm3d + ELU, AvgPool3d where the equivariant block pools; the
  plain convolutions' channels are the gated fields' sizes after the activation), summed after
  the blocks (their `RPPBlock(EqResBlock, ResBlock)`, lines 1898-1913, 2560-2566, 2666-2675,
  2804-2813). The equivariant pool between blocks 1 and 2 acts on the sum (line 2569). The prior
  (`model.prior()`, added to the loss by loss.method_loss) is their `RPPConv_L2`
  (experiments/util.py lines 28-65): 1e-5 × the squared L2 norm of every parameter of the
  equivariant residual blocks (BatchNorm included) + 1e-3 × that of the plain ones, the
  `--conv_wd` / `--basic_wd` defaults of experiments/medical_mnist2d.py (lines 915-926).

Exact invariance: the 24 rotations of the cube permute the voxels of the 28³ grid; trilinear
upsampling to 29³ commutes with them, every stride and padding below leaves no voxel of a border
out (29 → 27 → 13 → 7 → 3 → 3 → 1), escnn samples its analytic steerable basis on a grid the
rotation permutes, and the Gaussian pooling is isotropic. So the SCNN's logits and latent are
invariant to every element of O to float precision, and the O(3) model also to reflections of the
grid (tests/nn/test_baselines_medmnist.py); RPP only when its plain path is zero.

Parameter counts at the paper's size (c = 6, 48 latent fields; tests pin them): within 1 % of
Table 5's Par (M) (docs/baselines.md). Not ported: FieldDropout (their dropout default is 0). Their
learnable-equivariance arguments (off in their SCNN and RPP rows) are the PSCNN of pscnn3d.py, built on
this plan (`_Plan.conv`'s `layer`).
"""
from __future__ import annotations

from torch import nn

from approxeq.nn.baselines.common import RPPSum, Steerable, _escnn, attach_rpp_prior, gated
from approxeq.nn.encoder_head import EncoderHead
from approxeq.nn.networks import Residual, conv3d_bn_elu

# group → (escnn gspace builder name, L): their lines 1247-1257 (maximum frequency 2L)
GROUPS = {"SO3": ("rot3dOnR3", 3), "O3": ("flipRot3dOnR3", 2)}

# the C.2 plan: (fields as a multiple of c, kernel, stride, padding, band limit as a function of
# L) of blocks 1-5; their lines 1333-1495
BLOCKS = ((1, 7, 1, 2, lambda L: min(2, L)), (2, 5, 1, 2, lambda L: min(3, L)),
          (4, 3, 2, 1, lambda L: L), (6, 3, 2, 2, lambda L: L), (6, 3, 1, 1, lambda L: min(2, L)))
SIGMA = 0.66  # their antialiased pooling (a 5³ Gaussian filter in escnn)
# block → the learnable-equivariance layer id of its convolution (and of the skip ending there) in
# their PSCNN (`learnable_eq=True` with layer_id id_generator(0) at block 2 and skip 1, id_generator(1)
# at block 4 and skip 2, lines 1352-1456; block 6 and skip 3 take id 2, 1528-1554); pscnn3d.py
LEARNABLE = {1: 0, 3: 1}


def gspace_3d(group: str, band_limit: int | None = None):
    """(escnn gspace of `group`, its band limit L): theirs, or L = `band_limit` (the quick run's
    smaller fields)."""
    if group not in GROUPS:
        raise ValueError(f"unknown group {group!r} for the MedMNIST3D baselines; known: {sorted(GROUPS)}")
    gspaces, _ = _escnn()
    builder, theirs = GROUPS[group]
    band_limit = theirs if band_limit is None else band_limit
    if band_limit < 1:
        raise ValueError(f"band_limit {band_limit}: at least 1 (frequency 0 alone is a scalar CNN)")
    return getattr(gspaces, builder)(maximum_frequency=2 * band_limit), band_limit


class _Plan:
    """The field types of the network (one per block) and the escnn modules built on them."""

    def __init__(self, group: str, n_channels: int, c: int, latent_dim: int, band_limit: int | None,
                 initialize: bool = True):
        _, self.enn = _escnn()
        self.initialize = initialize
        self.gs, L = gspace_3d(group, band_limit)
        self.t_in = self.enn.FieldType(self.gs, n_channels * [self.gs.trivial_repr])
        self.t_latent = self.enn.FieldType(self.gs, latent_dim * [self.gs.trivial_repr])
        # one activation per block; blocks 2 and 4 share theirs with the skip connection ending
        # there, as theirs (activation_2 in block_2 and skip_1, activation_4 in block_4 and skip_2:
        # one set of gate biases each)
        self.acts = [gated(self.gs, multiple * c, limit(L)) for multiple, *_, limit in BLOCKS]
        # what block k (0-based) outputs after its activation: the next block's input
        self.out = [act.out_type for act in self.acts]

    def conv_block(self, k: int, t_in):
        """Block k: R3Conv, IIDBatchNorm3d, gated activation (their block_1 ... block_5)."""
        _, kernel, stride, padding, _ = BLOCKS[k]
        act = self.acts[k]
        return [self.conv(t_in, act.in_type, kernel, stride=stride, padding=padding, layer=LEARNABLE.get(k)),
                self.enn.IIDBatchNorm3d(act.in_type), act]

    def skip(self, k: int, t_in, kernel: int, padding: int):
        """A skip connection's R3Conv to block k's fields and block k's activation."""
        act = self.acts[k]
        return [self.conv(t_in, act.in_type, kernel, padding=padding, layer=LEARNABLE.get(k)), act]

    def conv(self, t_in, t_out, kernel: int, layer: int | None = None, **kwargs):
        """escnn's R3Conv; without `initialize`, escnn's generalised He initialisation (most of a
        build's time) is skipped: for a model whose weights are loaded or only counted. `layer`: the
        learnable-equivariance layer id their PSCNN gives this convolution (None: not learnable), used
        by pscnn3d's plan, ignored here."""
        return self.enn.R3Conv(t_in, t_out, kernel, initialize=self.initialize, **kwargs)

    def pool(self, t, stride: int, padding: int):
        return self.enn.PointwiseAvgPoolAntialiased3D(t, sigma=SIGMA, stride=stride, padding=padding)

    def steerable(self, t_in, *modules) -> Steerable:
        return Steerable(t_in, self.enn.SequentialModule(*modules))


def equivariant_blocks(p: _Plan) -> list[nn.Module]:
    """The three equivariant residual blocks on plain tensors: their lines 1336-1567."""
    t1, t2, t4 = p.t_in, p.out[1], p.out[3]
    block_1 = Residual(p.steerable(t1, *p.conv_block(0, t1), *p.conv_block(1, p.out[0])),
                       p.steerable(t1, *p.skip(1, t1, 7, padding=2)))
    block_2 = Residual(p.steerable(t2, *p.conv_block(2, t2), p.pool(p.out[2], 2, 1),
                                   *p.conv_block(3, p.out[2])),
                       p.steerable(t2, p.pool(t2, 2, 0), *p.skip(3, t2, 3, padding=0)))
    block_3 = Residual(p.steerable(t4, *p.conv_block(4, t4), p.pool(p.out[4], 1, 1),
                                   p.conv(p.out[4], p.t_latent, 1, bias=False, layer=2)),
                       p.steerable(t4, p.conv(t4, p.t_latent, 3, padding=0, layer=2)))
    return [block_1, block_2, block_3]


def plain_blocks(p: _Plan) -> list[nn.Module]:
    """The RPP's unconstrained residual blocks, of the same shapes as the equivariant ones (their
    block_k_conv / skip_k_conv / pool_k_conv, lines 2496-2793); channels are the field sizes."""
    n = [p.t_in.size] + [t.size for t in p.out]   # n[k]: block k's input channels
    latent = p.t_latent.size

    def conv_block(k):
        _, kernel, stride, padding, _ = BLOCKS[k]
        return conv3d_bn_elu(n[k], n[k + 1], kernel, stride=stride, padding=padding)

    block_1 = Residual(nn.Sequential(conv_block(0), conv_block(1)),
                       nn.Sequential(nn.Conv3d(n[0], n[2], 7, padding=2), nn.ELU()))
    block_2 = Residual(nn.Sequential(conv_block(2), nn.AvgPool3d(5, stride=2, padding=1), conv_block(3)),
                       nn.Sequential(nn.AvgPool3d(5, stride=2, padding=0), nn.Conv3d(n[2], n[4], 3), nn.ELU()))
    block_3 = Residual(nn.Sequential(conv_block(4), nn.AvgPool3d(3, stride=1, padding=0), nn.Conv3d(n[5], latent, 1)),
                       nn.Conv3d(n[4], latent, 3))
    return [block_1, block_2, block_3]


def _encoder_head(p: _Plan, blocks: list[nn.Module], n_classes: int, upsample: int) -> EncoderHead:
    """Upsampling, residual block 1, pooling, blocks 2 and 3, flattened: the latent (their layer
    list, lines 1584-1592); then their head."""
    latent_dim = p.t_latent.size
    encoder = nn.Sequential(p.steerable(p.t_in, p.enn.R3Upsampling(p.t_in, size=(upsample,) * 3)),
                            blocks[0], p.steerable(p.out[1], p.pool(p.out[1], 2, 1)),
                            blocks[1], blocks[2], nn.Flatten())
    head = nn.Sequential(nn.BatchNorm1d(latent_dim), nn.ELU(), nn.Linear(latent_dim, n_classes))
    return EncoderHead(encoder, head, latent_dim)


def medmnist_scnn(group: str = "SO3", n_channels: int = 1, c: int = 6, n_classes: int = 2,
                  upsample: int = 29, latent_dim: int = 48, band_limit: int | None = None,
                  initialize: bool = True) -> EncoderHead:
    """SCNN of Table 5: Veefkind & Cesa's SteerableCNN3DResnet for `group` SO3 or O3 (module
    docstring); `band_limit` None is theirs (L = 3 for SO(3), 2 for O(3)); `initialize` False
    skips escnn's weight initialisation (a model to load or count). Parameters at c = 6, 48 latent
    fields, 2 classes: SO(3) 128,450, O(3) 192,800 (Table 5: 0.13 M, 0.19 M)."""
    p = _Plan(group, n_channels, c, latent_dim, band_limit, initialize)
    return _encoder_head(p, equivariant_blocks(p), n_classes, upsample)


def medmnist_rpp(group: str = "SO3", n_channels: int = 1, c: int = 6, n_classes: int = 2,
                 upsample: int = 29, latent_dim: int = 48, band_limit: int | None = None,
                 initialize: bool = True, plain_weight: float = 1e-3,
                 equivariant_weight: float = 1e-5) -> EncoderHead:
    """RPP of Table 5: Veefkind & Cesa's SteerableRPP3DResnet for `group` SO3 or O3 (module
    docstring): each residual block an RPPSum of the SCNN's block and a plain one, with their L2
    prior on both paths as `model.prior()`. Parameters at c = 6, 48 latent fields, 2 classes:
    SO(3) 18,263,786, O(3) 29,292,200 (Table 5: 18.30 M, 29.30 M).

    Their class does not build as published (its skip_1 passes `basisexpansion=self.basisexpansion`,
    an attribute it never sets, line 2544; its `from_group` lacks the `learn_eq` and
    `normalise_basis` arguments medical_mnist2d.py's create_network passes, lines 195-210): the
    skip is built as the SCNN's, the learnable-equivariance arguments (unused there) left out."""
    p = _Plan(group, n_channels, c, latent_dim, band_limit, initialize)
    blocks = [RPPSum(eq, plain) for eq, plain in zip(equivariant_blocks(p), plain_blocks(p))]
    model = _encoder_head(p, blocks, n_classes, upsample)
    return attach_rpp_prior(model, plain_weight=plain_weight, equivariant_weight=equivariant_weight)


ESCNN_BUILDERS = {"medmnist_scnn": medmnist_scnn, "medmnist_rpp": medmnist_rpp}
TORCH_BUILDERS: dict = {}
