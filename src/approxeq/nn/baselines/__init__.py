"""Equivariant baselines of Tables 4 and 6, most built with escnn (the library of the original code).

Layout: `common` (escnn import, gspaces, Steerable, RPPSum / RPPBlock and the RPP prior), `ddmnist`
(Table 4), `smoke` (Table 6), `medmnist` (Table 5). Each
model module lists its builders in ESCNN_BUILDERS (need escnn) and TORCH_BUILDERS (plain PyTorch).

escnn is an optional extra (`envs/install_baselines.sh`); it is imported only when a baseline is
built, so the package works without it. Every builder returns the same `EncoderHead` as the
method's networks, so the baselines are trained and evaluated by the same trainer and evaluation.

DDMNIST SCNN (`ddmnist_scnn`): the appendix C.1 CNN (networks.ddmnist_layers) with every convolution
an escnn `R2Conv` between regular fields of the column's group G (C4, D1 or D4), acting on the
WHOLE 56×56 canvas, group pooling after the last (1×1) convolution, then the CNN's head. The
data's symmetry is G×G (one element per digit); a network equivariant to G on the whole image is
how the paper's SCNN row is defined (hence its low accuracy: a quarter turn of the whole canvas
moves the digits above each other, a C4-invariant network cannot tell (a, b) from its turned
copy). Differences from the C.1 CNN, each needed for exact equivariance: the input is upsampled
56 → 57 bilinearly with align_corners=True (nearest-neighbour upsampling, the CNN's, does not
commute with a flip or quarter turn of the canvas); BatchNorm is escnn's InnerBatchNorm (one
statistic per field); average pooling is escnn's PointwiseAvgPool2D (the same pooling). Field
counts equal the CNN's channel counts (c, 2c, 4c, 6c, 6c, latent_dim).

DDMNIST RPP (`ddmnist_rpp`) and Restriction (`ddmnist_restriction`): Veefkind & Cesa's
`SteerableRPP` and `SteerableCNN(restrict=True)` (QUVA-Lab/partial-escnn, networks/networks_cnn.py)
on our SCNN: every convolution an R2Conv plus a plain Conv2d, summed, with their L2 prior on both
paths (experiments/util.py `RPPConv_L2`); or the features restricted to the trivial subgroup after
block 4, so block 5 and the 1×1 convolution are unconstrained. PSCNN, their learnable-equivariance
convolution (escnn2/ in their repository): not trained (config.yaml `ddmnist.not_trained` says why).

MedMNIST3D SCNN and RPP for SO(3) and O(3) (`medmnist_scnn`, `medmnist_rpp`, argument `group`
"SO3" or "O3"): Veefkind & Cesa's `SteerableCNN3DResnet` and `SteerableRPP3DResnet` (their
networks/networks_cnn.py) with escnn R3Convs on gated band-limited fields; details in medmnist.py.

SMOKE E2CNN (`smoke_e2cnn`): the C.3 ConvNet with C4-regular hidden fields; input the 10 frames of
velocity as 10 vector fields (C4's frequency-1 irrep), output one vector field, as
`E2CNN` in Wang, Walters & Yu's public code (models/model_rotation.py: kernel 3, 5 layers,
R2Conv + InnerBatchNorm + ReLU blocks). The encoder is the blocks (hidden regular fields), the head
the last R2Conv; the latent action on the encoder's output (`e2cnn_latent_action`) rotates the grid
and cyclically shifts each regular field, the field type's own action.

SMOKE RPP (`smoke_rpp`): Wang et al.'s `Rot_RPPNet`, an R2Conv and a plain Conv2d summed per layer,
with an L2 prior on the plain path (`model.prior()`, added to the loss by loss.method_loss).

SMOKE RGroup (`smoke_rgroup`, plain PyTorch): Wang et al.'s `RelaxedGroupEquivariantCNN` (relaxed
C4 group convolutions with filter banks and per-element relaxed weights; velocity lifted to regular
fields by projection on the four directions). SMOKE RSteer (`smoke_rsteer`): their
`Relaxed_Rot_SteerConvNet` (one coefficient per steerable basis element and filter position; the
basis read off escnn, their weight constraint as `prior()`). SMOKE Lift (`smoke_lift`): their
`Lift_Rot_Expansion` (an MLP of the whole input appended as extra regular fields to an E2CNN).
SMOKE MLP (`smoke_mlp`, plain PyTorch): their `MLPNet`; its latent has no group action
(`latent_action = None`). All in models/model_rotation.py of their public code; details in smoke.py.
"""
from __future__ import annotations

from approxeq.nn.baselines import ddmnist, medmnist, smoke
from approxeq.nn.baselines.common import (
                                          INSTALL_HINT,
                                          BaselineUnavailable,
                                          RPPBlock,
                                          RPPSum,
                                          Steerable,
                                          attach_rpp_prior,
                                          escnn_available,
                                          planar_gspace,
                                          rpp_prior,
)
from approxeq.nn.baselines.ddmnist import ddmnist_restriction, ddmnist_rpp, ddmnist_scnn
from approxeq.nn.baselines.medmnist import medmnist_rpp, medmnist_scnn
from approxeq.nn.baselines.smoke import (
                                          SwapComponents,
                                          e2cnn_latent_action,
                                          smoke_e2cnn,
                                          smoke_lift,
                                          smoke_mlp,
                                          smoke_rgroup,
                                          smoke_rpp,
                                          smoke_rsteer,
)

# builders that need escnn (network_problem says how to install it) and those that do not
BASELINE_BUILDERS = {**ddmnist.ESCNN_BUILDERS, **smoke.ESCNN_BUILDERS, **medmnist.ESCNN_BUILDERS}
TORCH_BASELINE_BUILDERS = {**ddmnist.TORCH_BUILDERS, **smoke.TORCH_BUILDERS, **medmnist.TORCH_BUILDERS}

__all__ = ["INSTALL_HINT", "BaselineUnavailable", "RPPBlock", "RPPSum", "Steerable", "attach_rpp_prior",
           "escnn_available", "planar_gspace", "rpp_prior",
           "ddmnist_scnn", "ddmnist_rpp", "ddmnist_restriction", "medmnist_scnn", "medmnist_rpp",
           "SwapComponents", "e2cnn_latent_action", "smoke_e2cnn", "smoke_rpp",
           "smoke_rgroup", "smoke_rsteer", "smoke_lift", "smoke_mlp",
           "BASELINE_BUILDERS", "TORCH_BASELINE_BUILDERS"]
