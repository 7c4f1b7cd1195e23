"""PSCNN's learnable degree of equivariance (Veefkind & Cesa, ICML 2024) for finite planar groups,
on stock escnn: a likelihood over G per layer (`GroupLikelihood`), the convolution it relaxes
(`PartialR2Conv`) and their prior (`pscnn_prior`, `attach_pscnn_prior`).

Cited files are QUVA-Lab/partial-escnn at commit 35ac967; docs/baselines.md says what each line
gives and where their code is ambiguous.

What their layer computes. Their R2Conv(learnable_eq=True) (escnn2/rd_convolution.py 261-287)
expands `LearnableRestrictedWignerEckartBasis` (escnn2/kernels/wignereckart_solver.py 392-811):
the restricted Wigner-Eckart basis in which the map between a harmonic's G-irrep j~ and a
Clebsch-Gordan irrep j is not fixed to the intertwiner but is `IrrepsMapFourierBLact`'s
(escnn2/kernels/irreps_mapping.py 600-648) c = Q · ⊕_ψ F(ψ), Q the change of basis of j~ ⊗ j and
F(ψ) the Fourier coefficients of a likelihood p over G. ⊕_ψ F(ψ) is the p-average of the
representation j~ ⊗ j (up to a fixed √dim ψ per ψ block), so every basis element is the
p-average of the group's action on one unconstrained kernel:

    κ_p(x) = (1/|G|) Σ_g p(g) ρ_out(g) κ(g⁻¹x) ρ_in(g)⁻¹,    mean_g p(g) = 1,

with κ any kernel on the same band-limited harmonics as escnn's (their basis at the likelihood
concentrated at the identity spans all of them). p uniform (their initialisation,
irreps_mapping.py 115-124) projects κ onto the equivariant kernels: the SCNN's layer. For C4, D1
and D4 their likelihood's band limit, min(L, N // 2) with N rotations (irreps_mapping.py 62-67),
keeps every irrep of G, so p is any positive function on G and their Fourier transforms over the
grid of all elements (FTSoftmaxNormalisation, kernels/fouriernonliniearity.py 231-263, 292-329)
are exact: we compute on the elements directly. On the kernel grid the elements of a subgroup of
D4 act by permutation, so the average is exact too. Checked against their code (35ac967 on stock
escnn 1.0.11, outside this repository): for one layer of each of C4, D1 and D4 with random weights
and a random likelihood, their filter is this average of their filter at a likelihood concentrated
at the identity, to 3e-7 relative (with p(g) for C4 and p(g⁻¹) for D4: a relabelling of the
elements, under which their KL and alignment terms are unchanged).

Parameters as theirs. Their restriction list appends every irrep of a harmonic's restriction once
per distinct irrep of the tensor product (wignereckart_solver.py 471-490: the append sits inside
`for j, _ in self._js_G`), and each copy carries its own weights; the copies are the same
function, but the paper's Par (M) counts them. So an irrep block (out irrep n, in irrep m) of the
kernel has d_n × d_m × (harmonics) coefficients, each the sum of as many weights as there are
distinct irreps in m ⊗ n (`_copies`); with these, Table 4's three PSCNN counts are theirs to the
parameter (tests/nn/test_pscnn.py).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from approxeq.nn.baselines.common import _escnn


class GroupLikelihood(nn.Module):
    """A learnable likelihood p over a finite escnn group G: logits l = A θ on the band-limited
    Fourier basis (every irrep of G; A's columns are √dim ψ · ψ(g)[:, :dim ψ / s], s the number of
    real constituents: their `_build_kernel`, fouriernonliniearity.py 19-30, orthonormal for the
    mean over G), θ = (1, 0, ..., 0) at initialisation (uniform: irreps_mapping.py 117-124),
    p = exp(l) / mean_g exp(l) (their `softmax`, fouriernonliniearity.py 275-290)."""

    is_group_likelihood = True  # found by `likelihoods` (as so3_fourier.RotationLikelihood)

    def __init__(self, group):
        super().__init__()
        self.elements = list(group.elements)
        irreps = sorted(group.irreps(), key=lambda irrep: not irrep.is_trivial())  # trivial first
        columns = []
        for irrep in irreps:
            width = irrep.size // irrep.sum_of_squares_constituents
            columns.append(np.stack([np.sqrt(irrep.size) * irrep(g)[:, :width].reshape(-1)
                                     for g in self.elements]))
        basis = torch.tensor(np.concatenate(columns, axis=1), dtype=torch.float32)
        if basis.shape != (len(self.elements),) * 2 or not torch.allclose(
                basis.T @ basis / len(self.elements), torch.eye(len(basis)), atol=1e-5):
            raise ValueError(f"the Fourier basis of {group} is not square and orthonormal")
        self.register_buffer("basis", basis, persistent=False)  # a function of the group alone
        self.identity = self.elements.index(group.identity)
        theta = torch.zeros(len(basis))
        theta[0] = 1.0
        self.theta = nn.Parameter(theta)  # their `fts_in`

    def logits(self) -> torch.Tensor:
        return self.basis @ self.theta

    def log_density(self) -> torch.Tensor:
        """log p(g) for every element, p normalised to mean 1 over G."""
        logits = self.logits()
        return logits - torch.logsumexp(logits, 0) + np.log(len(logits))

    def density(self) -> torch.Tensor:
        return self.log_density().exp()

    def kl_divergence(self, other: "GroupLikelihood | None") -> torch.Tensor:
        """KL(p ‖ q) for the uniform measure on G, q the uniform likelihood if `other` is None, else
        other's likelihood held constant (their `kl_divergence`, irreps_mapping.py 159-192, which
        detaches q: 187-188)."""
        log_p = self.log_density()
        log_q = torch.zeros_like(log_p) if other is None else other.log_density().detach()
        return (log_p.exp() * (log_p - log_q)).mean()

    def alignment(self) -> torch.Tensor:
        """max_g l(g) − l(e) ≥ 0: how far the identity is from the most likely element (their
        `shift_loss` = −identity_val, fouriernonliniearity.py 265-273 and irreps_mapping.py 457-460)."""
        logits = self.logits()
        return logits.max() - logits[self.identity]


def _copies(group, out_irrep, in_irrep) -> int:
    """How many copies of each coefficient of the (out, in) irrep block their basis holds: the
    number of distinct irreps in in ⊗ out (module docstring)."""
    return len(group._tensor_product_irreps(in_irrep, out_irrep))


def _scalar_basis(kernel: int) -> torch.Tensor:
    """escnn's band-limited basis of scalar kernels (R2Conv's default rings, widths and frequency
    cut-off, as their compute_basis_params, r2convolution.py 461-518), sampled on the kernel grid:
    (basis size, kernel²), points in escnn's filter order."""
    gspaces, enn = _escnn()
    gs = gspaces.trivialOnR2()
    scalar = enn.FieldType(gs, [gs.trivial_repr])
    expansion = enn.R2Conv(scalar, scalar, kernel, initialize=False).basisexpansion
    eye = torch.eye(expansion.dimension())
    return torch.stack([expansion(w).reshape(-1) for w in eye])


def _grid_permutations(gs, elements, kernel: int) -> torch.Tensor:
    """(|G|, kernel²): for each g, the grid point each point y reads from, g⁻¹y, on escnn's filter
    grid (`get_grid_coords`) with escnn's action on the plane (`basespace_action`)."""
    from escnn.nn.modules.conv.rd_convolution import get_grid_coords

    points = get_grid_coords(2, kernel)
    lookup = {tuple(np.round(p, 6)): q for q, p in enumerate(points)}
    rows = []
    for g in elements:
        moved = points @ gs.basespace_action(~g).T  # g⁻¹ y for every row y
        rows.append([lookup[tuple(np.round(p, 6))] for p in moved])
    return torch.tensor(rows, dtype=torch.long)


class PartialR2Conv(torch.nn.Module):
    """Their R2Conv(learnable_eq=True) for a finite G (module docstring), as an escnn module on
    GeometricTensors. Every field of `in_type` shares one representation, and every field of
    `out_type` another (true of every layer of their networks). Weights: for each pair of fields,
    the coefficients of an unconstrained kernel in the fields' irrep bases on escnn's scalar
    harmonics, each coefficient of the (n, m) irrep block the sum of `_copies` weights; bias on
    the trivial irreps of the output fields (escnn's). The filter is rebuilt at every call (train
    and eval: nothing cached), the likelihood is `self.likelihood`."""

    def __init__(self, in_type, out_type, kernel: int, stride: int = 1, padding: int = 0,
                 bias: bool = True, initialize: bool = True):
        super().__init__()
        from escnn import nn as enn

        self._enn = enn
        self.in_type, self.out_type = in_type, out_type
        self.kernel, self.stride, self.padding = kernel, stride, padding
        r_in, r_out = _uniform_representation(in_type), _uniform_representation(out_type)
        self.n_in, self.n_out, self.d_in, self.d_out = len(in_type), len(out_type), r_in.size, r_out.size
        gs = in_type.gspace
        group = gs.fibergroup
        self.likelihood = GroupLikelihood(group)
        elements = self.likelihood.elements
        f32 = dict(dtype=torch.float32)
        # twirl matrices with the irrep change of basis folded in: ρ_out(g) Q_out and Q_in⁻¹ ρ_in(g)⁻¹
        left = [r_out(g) @ r_out.change_of_basis for g in elements]
        right = [r_in.change_of_basis_inv @ r_in(~g) for g in elements]
        self.register_buffer("left", torch.tensor(np.stack(left), **f32), persistent=False)
        self.register_buffer("right", torch.tensor(np.stack(right), **f32), persistent=False)
        self.register_buffer("permutations", _grid_permutations(gs, elements, kernel), persistent=False)
        self.register_buffer("harmonics", _scalar_basis(kernel), persistent=False)
        self.register_buffer("slots", self._copy_slots(group, r_out, r_in), persistent=False)
        self.weights = nn.Parameter(torch.zeros(self.n_out, self.n_in, len(self.slots)))
        trivial = [p for p, irrep in enumerate(_irrep_positions(r_out)) if group.irrep(*irrep[0]).is_trivial()]
        if bias and trivial:
            columns = np.stack([r_out.change_of_basis[:, irrep[1]] for irrep in
                                [_irrep_positions(r_out)[p] for p in trivial]], axis=1)
            self.register_buffer("bias_expansion", torch.tensor(columns, **f32), persistent=False)
            self.bias = nn.Parameter(torch.zeros(self.n_out, len(trivial)))
        else:
            self.bias = None
        if initialize:
            self.reset_parameters()

    def _copy_slots(self, group, r_out, r_in) -> torch.Tensor:
        """For each weight of a field pair, the coefficient (o, i, harmonic) of the irrep-basis
        kernel it adds to, flattened; the (n, m) block's coefficients appear `_copies` times."""
        n_harmonics = len(self.harmonics)
        coefficient = torch.arange(self.d_out * self.d_in * n_harmonics).reshape(
            self.d_out, self.d_in, n_harmonics)
        slots = []
        for out_id, out_start in _irrep_positions(r_out):
            for in_id, in_start in _irrep_positions(r_in):
                d_o, d_i = group.irrep(*out_id).size, group.irrep(*in_id).size
                block = coefficient[out_start:out_start + d_o, in_start:in_start + d_i].reshape(-1)
                slots += [block] * _copies(group, out_id, in_id)
        return torch.cat(slots)

    def reset_parameters(self) -> None:
        """Normal weights scaled so that the filter at the uniform likelihood (an equivariant one)
        has He's fan-in norm, Σ_in,x κ² = 2 per output channel on average (their
        generalized_he_init, r2convolution.py 201-203, weighs their own basis; ours differs by a
        fixed linear map, so the scale is set on the filter)."""
        with torch.no_grad():
            self.weights.normal_()
            filter_ = self.expand_filter()
            scale = (2.0 / filter_.pow(2).sum((1, 2, 3)).mean().clamp_min(1e-12)).sqrt()
            self.weights.mul_(scale)

    def expand_filter(self) -> torch.Tensor:
        """(out, in, k, k): the p-average of the unconstrained kernel the weights give."""
        n_o, n_i, d_o, d_i = self.n_out, self.n_in, self.d_out, self.d_in
        coefficients = self.weights.new_zeros(n_o, n_i, d_o * d_i * len(self.harmonics))
        coefficients = coefficients.index_add(2, self.slots, self.weights)
        # kernel in the irrep bases: (n_out, n_in, d_out, d_in, points)
        kernel = coefficients.view(n_o, n_i, d_o, d_i, -1) @ self.harmonics
        kernel = kernel[..., self.permutations]  # (..., |G|, points): κ(g⁻¹y) for every g
        weights = self.likelihood.density() / len(self.permutations)
        averaged = torch.einsum("g,gab,uvbcgp,gcd->uavdp", weights, self.left, kernel, self.right)
        return averaged.reshape(n_o * d_o, n_i * d_i, self.kernel, self.kernel)

    def expand_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        return (self.bias @ self.bias_expansion.T).reshape(-1)

    def forward(self, x):
        output = torch.nn.functional.conv2d(x.tensor, self.expand_filter(), self.expand_bias(),
                                            stride=self.stride, padding=self.padding)
        return self._enn.GeometricTensor(output, self.out_type)

    def evaluate_output_shape(self, input_shape):
        b, _, h, w = input_shape
        size = lambda n: (n + 2 * self.padding - self.kernel) // self.stride + 1  # noqa: E731
        return b, self.out_type.size, size(h), size(w)


def _uniform_representation(field_type):
    first = field_type.representations[0]
    if any(r != first for r in field_type.representations):
        raise ValueError("PartialR2Conv needs fields of one representation per side")
    return first


def _irrep_positions(representation) -> list[tuple[tuple, int]]:
    """(irrep id, first index in the irrep basis) for each irrep of `representation`, in order."""
    positions, start = [], 0
    for irrep in representation.irreps:
        positions.append((tuple(irrep), start))
        start += representation.group.irrep(*irrep).size
    return positions


def likelihoods(model: nn.Module) -> list[GroupLikelihood]:
    """The model's likelihoods, in layer order (their layer ids 0, 1, ...: `id_generator`, networks_cnn.py 128-131)."""
    return [m for m in model.modules() if getattr(m, "is_group_likelihood", False)]


def pscnn_prior(model: nn.Module, kl_weight: float = 3.0, kl_uniform_weight: float = 3.0,
                alignment_weight: float = 5.0) -> torch.Tensor:
    """Their loss terms beside the task's (experiments/double_mnist.py 252-262): kl_uniform_weight ×
    KL(p_0 ‖ uniform) / n + kl_weight × Σ_l KL(p_l ‖ p_(l−1), held constant) / n (`get_kl_loss`,
    experiments/util.py 142-154: layer 0 against the uniform likelihood, each later layer against
    the one before, n the number of layers) + alignment_weight × Σ_l (max l_l − l_l(e))
    (`get_shift_loss`, util.py 157-163). Weights: their script's defaults `-kl` 3, `-kl_U` 3,
    `-align` 5 (double_mnist.py 767-786)."""
    layers = likelihoods(model)
    n = len(layers)
    uniform = layers[0].kl_divergence(None) / n
    chain = sum((p.kl_divergence(q) for q, p in zip(layers, layers[1:])), torch.zeros(())) / n
    alignment = sum((p.alignment() for p in layers), torch.zeros(()))
    return kl_uniform_weight * uniform + kl_weight * chain + alignment_weight * alignment


def attach_pscnn_prior(model: nn.Module, **weights) -> nn.Module:
    """Give `model` the method `prior()` (pscnn_prior with these weights), which
    loss.method_loss adds to the loss; bound to the model, so a deep copy's prior reads the copy."""
    import types

    model.prior = types.MethodType(lambda self: pscnn_prior(self, **weights), model)
    return model
