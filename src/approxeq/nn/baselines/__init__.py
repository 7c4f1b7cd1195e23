"""Equivariant baselines of Tables 4, 5 and 6, most built with escnn (the library of the original code).

Layout: `common` (escnn import, gspaces, Steerable, gated fields, RPPSum / RPPBlock and the RPP
prior), `ddmnist` (Table 4 on regular fields), `ddmnist_gated` (Table 4 as Veefkind & Cesa's: the
configured rows), `pscnn` (PSCNN's learnable-equivariance layer and prior), `smoke` (Table 6),
`medmnist` (Table 5), `pscnn3d` and `so3_fourier` (Table 5's PSCNN). Each model module lists its
builders in ESCNN_BUILDERS (need escnn) and TORCH_BUILDERS (plain PyTorch).

escnn is an optional extra (`envs/install_baselines.sh`); it is imported only when a baseline is
built, so the package works without it. Every builder returns the same `EncoderHead` as the
method's networks, so the baselines are trained and evaluated by the same trainer and evaluation.

DDMNIST SCNN, RPP and Restriction (`ddmnist_scnn`, `ddmnist_rpp`, `ddmnist_restriction`, the
configured rows of Table 4; ddmnist_gated.py): Veefkind & Cesa's `SteerableCNN`, `SteerableRPP` and
`SteerableCNN(restrict=True)` (QUVA-Lab/partial-escnn, networks/networks_cnn.py) rebuilt with stock
escnn, equivariant to the column's group G (C4, D1 or D4) acting on the WHOLE 56×56 canvas: fields of
band-limited irreps with one gate per irrep (GatedNonLinearityUniform), IIDBatchNorm, antialiased
pooling, a disc mask after upsampling to 57×57, a 1×1 convolution to invariant fields, then the C.1
CNN's head; RPP: every convolution an R2Conv plus a plain Conv2d, summed, with their L2 prior on both
paths (experiments/util.py `RPPConv_L2`); Restriction: the features restricted to the trivial
subgroup after block 4, so block 5 and the 1×1 convolution are unconstrained. Their parameter counts
are Table 4's. The data's symmetry is G×G (one element per digit); a network equivariant to G on the
whole image is how the paper's SCNN row is defined (hence its low accuracy: a quarter turn of the
whole canvas moves the digits above each other).

Regular-field variants (`ddmnist_scnn_regular`, `ddmnist_rpp_regular`,
`ddmnist_restriction_regular`; ddmnist.py): the appendix C.1 CNN with every convolution an escnn
`R2Conv` between regular fields of G (as many fields as the CNN has channels), InnerBatchNorm, ELU,
plain pointwise pooling, bilinear upsampling with align_corners=True, group pooling after the 1×1
convolution; RPP and Restriction built on it.

DDMNIST PSCNN (`ddmnist_pscnn`, ddmnist_gated.py on pscnn.py): their SteerableCNN with
`learn_eq=True`: every convolution a PartialR2Conv, whose filter is the average of an
unconstrained kernel's transforms under a learned likelihood over G (one per layer, uniform at
initialisation: the SCNN), with their KL and alignment terms as `model.prior()`.

MedMNIST3D SCNN and RPP for SO(3) and O(3) (`medmnist_scnn`, `medmnist_rpp`, argument `group`
"SO3" or "O3"): Veefkind & Cesa's `SteerableCNN3DResnet` and `SteerableRPP3DResnet` (their
networks/networks_cnn.py) with escnn R3Convs on gated band-limited fields; details in medmnist.py.
MedMNIST3D PSCNN (`medmnist_pscnn`, group "SO3" or "O3"; pscnn3d.py on so3_fourier.py): their
SteerableCNN3DResnet with `learn_eq`: six convolutions PartialR3Convs, whose filter is the average of
a band-limited kernel's transforms under a learned likelihood over SO(3) / O(3) (three, uniform at
initialisation: the SCNN), with their KL and alignment terms as `model.prior()`.

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

from approxeq.nn.baselines import ddmnist, ddmnist_gated, medmnist, pscnn3d, smoke
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
from approxeq.nn.baselines.ddmnist import (
                                          ddmnist_restriction_regular,
                                          ddmnist_rpp_regular,
                                          ddmnist_scnn_regular,
)
from approxeq.nn.baselines.ddmnist_gated import ddmnist_pscnn, ddmnist_restriction, ddmnist_rpp, ddmnist_scnn
from approxeq.nn.baselines.medmnist import medmnist_rpp, medmnist_scnn
from approxeq.nn.baselines.pscnn import GroupLikelihood, PartialR2Conv, attach_pscnn_prior, pscnn_prior
from approxeq.nn.baselines.pscnn3d import PartialR3Conv, medmnist_pscnn
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
_MODULES = (ddmnist, ddmnist_gated, smoke, medmnist, pscnn3d)
BASELINE_BUILDERS = {name: b for module in _MODULES for name, b in module.ESCNN_BUILDERS.items()}
TORCH_BASELINE_BUILDERS = {name: b for module in _MODULES for name, b in module.TORCH_BUILDERS.items()}

__all__ = ["INSTALL_HINT", "BaselineUnavailable", "RPPBlock", "RPPSum", "Steerable", "attach_rpp_prior",
           "escnn_available", "planar_gspace", "rpp_prior",
           "GroupLikelihood", "PartialR2Conv", "PartialR3Conv", "attach_pscnn_prior", "pscnn_prior",
           "ddmnist_scnn", "ddmnist_rpp", "ddmnist_restriction", "ddmnist_pscnn", "ddmnist_scnn_regular",
           "ddmnist_rpp_regular", "ddmnist_restriction_regular", "medmnist_scnn", "medmnist_rpp", "medmnist_pscnn",
           "SwapComponents", "e2cnn_latent_action", "smoke_e2cnn", "smoke_rpp",
           "smoke_rgroup", "smoke_rsteer", "smoke_lift", "smoke_mlp",
           "BASELINE_BUILDERS", "TORCH_BASELINE_BUILDERS"]
