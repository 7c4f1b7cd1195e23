"""PSCNN of Table 5 (MedMNIST3D): Veefkind & Cesa's SteerableCNN3DResnet with `learn_eq` for SO(3)
and O(3) (`medmnist_pscnn`), its learnable-equivariance convolution (`PartialR3Conv`) and prior.

Cited files are QUVA-Lab/partial-escnn at commit 35ac967 (reference only; our code). docs/baselines.md,
section "PSCNN (Table 5)", says what each line gives and what was chosen where their code is ambiguous.

What their layer computes. Their R3Conv(learnable_eq=True) (escnn2/r3convolution.py 24-218,
escnn2/rd_convolution.py 261-300) samples `LearnableRestrictedWignerEckartBasis` (SO(3), with
sg_id "so3" on O(3)'s spherical shells: escnn2/kernels/r3.py 65-129, wignereckart_solver.py 392-811)
or `LearnableWignerEckartBasis` (O(3): r3.py 132-196, wignereckart_solver.py 31-389). For an input
irrep m, an output irrep n, a harmonic j (degree l_j, one per ring that the band limit keeps) and each
irrep J of m ⊗ n, their basis elements are CG_J · c_k · Y_j with c = `IrrepsMapFourierBLact.forward`
(irreps_mapping.py 600-648): c = Q_(J,j) · ⊕_ψ F(ψ), Q the change of basis of j ⊗ J restricted to the
irreps ψ of degree ≤ L_out (`get_bandlimited_tp`, 482-529), F(ψ) the Fourier coefficients of the
layer's likelihood p; one weight per column k. So the kernel's coefficient tensor A (out irrep ×
in irrep × harmonic) ranges over the p-average of the band-limited part of n ⊗ m ⊗ j:

    A = ∫ p(g) (ρ_n ⊗ ρ_m ⊗ ρ_j)(g) dg · a,  a in the irreps ψ ≤ L_out of n ⊗ m ⊗ j,

i.e. the filter is the p-average of g·κ, κ(x) = Σ a Y(x) unconstrained but band-limited: at the
uniform p only ψ = 0 survives and the layer is escnn's equivariant R3Conv. `PartialR3Conv` computes
this: a = Σ_ψ,μ Q_ψ,μ w_ψ,μ with Q_ψ,μ the orthonormal copies of ψ in n ⊗ m ⊗ j (so3_fourier.
intertwiners; as many as theirs, Σ_J [ψ ∈ J ⊗ j]), so A = Σ Q_ψ,μ F(ψ) w_ψ,μ; the harmonics are
escnn's SphericalShellsBasis with R3Conv's rings, widths and band limit (compute_basis_params, as
their r3convolution.py 459-519), sampled on escnn's filter grid.

Parameters as theirs. Their SO(3) basis lists the harmonic's restriction once per irrep J of m ⊗ n
(wignereckart_solver.py 470-490: the append sits inside `for j, _ in self._js_G`), each copy with its
own weights (dimension 510-520); the copies are the same function, but Par (M) counts them: each
SO(3) coefficient is the sum of (number of J in m ⊗ n) weights. O(3)'s basis has no copies. With
L_out = 2 the counts are Table 5's (module medmnist_pscnn's docstring).

Checked against their code (35ac967 on stock escnn 1.0.11, outside this repository): their network's
parameter counts are these to the parameter, layer weights too; fed the same F(ψ), their map from
weights to filters and ours differ by a fixed change of weight coordinates (to 1e-7). Their F(ψ) is
√dim ψ ∫ p(g⁻¹) ψ(g) dg (estimated on their grid): their layer at p is ours at p(g⁻¹), a relabelling
under which the prior is unchanged (docs/baselines.md).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from approxeq.nn.baselines import so3_fourier
from approxeq.nn.baselines.common import _escnn
from approxeq.nn.baselines.medmnist import _encoder_head, _Plan, equivariant_blocks
from approxeq.nn.baselines.pscnn import _irrep_positions, attach_pscnn_prior


def _harmonics(kernel: int) -> tuple[torch.Tensor, list[tuple[int, int, int]]]:
    """escnn R3Conv's scalar basis (its rings, widths and frequency band limit), sampled on its filter
    grid: ((harmonic functions, kernel³), [(degree l, rings kept, first row)])."""
    from escnn.kernels import GaussianRadialProfile, SphericalShellsBasis
    from escnn.nn.modules.conv.r3convolution import compute_basis_params
    from escnn.nn.modules.conv.rd_convolution import get_grid_coords

    basis_filter, rings, sigma, maximum_frequency = compute_basis_params(kernel)
    shells = SphericalShellsBasis(maximum_frequency, GaussianRadialProfile(rings, sigma), filter=basis_filter)
    points = torch.tensor(get_grid_coords(3, kernel), dtype=torch.float32)
    sampled = shells.sample(points)[..., 0, 0].T.contiguous()
    layout, start = [], 0
    for (_, degree), multiplicity in shells.js:
        layout.append((degree, multiplicity, start))
        start += multiplicity * (2 * degree + 1)
    return sampled, layout


def _field(field_type):
    """The one representation of every field of `field_type`, in its irrep basis."""
    first = field_type.representations[0]
    if any(r != first for r in field_type.representations):
        raise ValueError("PartialR3Conv needs fields of one representation per side")
    if not np.allclose(first.change_of_basis, np.eye(first.size)):
        raise ValueError("PartialR3Conv needs fields that are direct sums of irreps")
    return first


class PartialR3Conv(nn.Module):
    """Their R3Conv(learnable_eq=True) (module docstring) as an escnn module on GeometricTensors, its
    likelihood `likelihood` (a so3_fourier.RotationLikelihood, shared by the layers of one layer id).
    Weights: per pair of fields and per (out irrep, in irrep, harmonic, ring, copy of a J, ψ, copy of ψ)
    a vector of dim ψ; bias on the trivial irreps of the output fields (escnn's). The filter is
    rebuilt at every call (nothing cached)."""

    def __init__(self, in_type, out_type, kernel: int, likelihood, stride: int = 1, padding: int = 0,
                 bias: bool = True, initialize: bool = True):
        super().__init__()
        _, self._enn = _escnn()
        self._enn.EquivariantModule.register(PartialR3Conv)  # an escnn module to SequentialModule (an ABC)
        self.in_type, self.out_type, self.likelihood = in_type, out_type, likelihood
        self.kernel, self.stride, self.padding = kernel, stride, padding
        r_in, r_out = _field(in_type), _field(out_type)
        self.n_in, self.n_out, self.d_in, self.d_out = len(in_type), len(out_type), r_in.size, r_out.size
        name, L_out = likelihood.name, likelihood.L_out
        group = in_type.gspace.fibergroup
        harmonics, layout = _harmonics(kernel)
        self.layout = layout  # (degree, rings, first row) of each harmonic
        self.register_buffer("harmonics", harmonics, persistent=False)
        n_h = len(harmonics)
        psis = so3_fourier.band_limited_irreps(name, L_out)
        chunks = {psi: [] for psi in psis}   # ψ → unique coefficient chunks (each dim ψ long)
        pieces = []                          # (Q type key, [(ψ, chunk)], destination rows)
        slots_of = []                        # per unique chunk: how many weight copies sum into it
        for n_id, n_start in _irrep_positions(r_out):
            for m_id, m_start in _irrep_positions(r_in):
                copies = len(group._tensor_product_irreps(m_id, n_id)) if name == "SO3" else 1
                d_n, d_m = group.irrep(*n_id).size, group.irrep(*m_id).size
                for degree, rings, first in layout:
                    j_id = (degree % 2, degree)
                    factors = ((name, n_id), (name, m_id), ("O3", j_id))
                    parity = (n_id[0] + m_id[0] + j_id[0]) % 2 if name == "O3" else None
                    targets = [psi for psi in psis if name == "SO3" or psi[0] == parity]
                    Qs = [(psi, so3_fourier.intertwiners(factors, (name, psi))) for psi in targets]
                    if not any(len(Q) for _, Q in Qs):
                        continue
                    for ring in range(rings):
                        rows = first + ring * (2 * degree + 1) + np.arange(2 * degree + 1)
                        dest = ((n_start + np.arange(d_n))[:, None, None] * self.d_in
                                + (m_start + np.arange(d_m))[None, :, None]) * n_h + rows[None, None, :]
                        ids = []
                        for psi, Q in Qs:
                            for _ in range(len(Q)):
                                ids.append((psi, len(chunks[psi])))
                                chunks[psi].append(len(slots_of))
                                slots_of.append(copies)
                        pieces.append((factors, tuple(psi for psi, _ in Qs), ids, dest.reshape(-1)))
        # unique coefficients laid out ψ by ψ (chunk-major), so F(ψ) applies to a reshaped slice
        self.psi_slices, offset, chunk_start = [], 0, {}
        for psi in psis:
            d = group.irrep(*psi).size
            for k, _ in enumerate(chunks[psi]):
                chunk_start[(psi, k)] = offset + k * d
            self.psi_slices.append((psi, offset, len(chunks[psi]), d))
            offset += len(chunks[psi]) * d
        self.n_unique = offset
        # weight → unique coefficient (copies of a chunk repeat its indices)
        slots = []
        for psi in psis:
            d = group.irrep(*psi).size
            for k, unique in enumerate(chunks[psi]):
                slots += [np.arange(chunk_start[(psi, k)], chunk_start[(psi, k)] + d)] * slots_of[unique]
        self.register_buffer("slots", torch.tensor(np.concatenate(slots), dtype=torch.long), persistent=False)
        # expansion: group the pieces by intertwiner type, one matmul per type
        by_type = {}
        for factors, targets, ids, dest in pieces:
            by_type.setdefault((factors, targets), []).append((ids, dest))
        self._types = []
        for t, ((factors, targets), items) in enumerate(by_type.items()):
            # rows: for each ψ, each copy μ of it, each of its dim ψ columns: Q_ψ,μ[:, a]
            matrix = np.concatenate([Q.transpose(0, 2, 1).reshape(-1, Q.shape[1]) for Q in
                                     (so3_fourier.intertwiners(factors, (name, psi)) for psi in targets)])
            src = np.stack([np.concatenate([chunk_start[i] + np.arange(group.irrep(*i[0]).size) for i in ids])
                            for ids, _ in items])
            dst = np.stack([dest for _, dest in items])
            self.register_buffer(f"expand_{t}", torch.tensor(matrix, dtype=torch.float32), persistent=False)
            self.register_buffer(f"src_{t}", torch.tensor(src, dtype=torch.long), persistent=False)
            self._types.append(dst.reshape(-1))
        self.register_buffer("dst", torch.tensor(np.concatenate(self._types), dtype=torch.long), persistent=False)
        self._n_types = len(self._types)
        del self._types
        self.weights = nn.Parameter(torch.zeros(self.n_out, self.n_in, len(self.slots)))
        trivial = [start for irrep, start in _irrep_positions(r_out) if group.irrep(*irrep).is_trivial()]
        self.register_buffer("bias_positions", torch.tensor(trivial, dtype=torch.long), persistent=False)
        self.bias = nn.Parameter(torch.zeros(self.n_out, len(trivial))) if bias and trivial else None
        if initialize:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Normal weights scaled so that the filter at the current (at build: uniform) likelihood has
        He's fan-in norm, Σ_in,x κ² = 2 per output channel on average (their generalized_he_init,
        r3convolution.py 197-199, weighs their own basis; ours differs by a fixed linear map)."""
        with torch.no_grad():
            self.weights.normal_()
            norm = self.expand_filter().pow(2).sum((1, 2, 3, 4)).mean().clamp_min(1e-12)
            self.weights.mul_((2.0 / norm).sqrt())

    def coefficients(self, fourier: dict | None = None) -> torch.Tensor:
        """(out fields, in fields, out irrep basis, in irrep basis, harmonics): A = Σ Q_ψ,μ F(ψ) w_ψ,μ,
        F the likelihood's Fourier coefficients (or `fourier`: identities give the kernel before the
        average)."""
        pairs = self.n_out * self.n_in
        unique = self.weights.new_zeros(self.n_out, self.n_in, self.n_unique)
        unique = unique.index_add(2, self.slots, self.weights).view(pairs, -1)
        fourier = self.likelihood.fourier() if fourier is None else fourier
        averaged = torch.cat([(unique[:, start:start + count * d].reshape(pairs, count, d) @ fourier[psi].T)
                              .reshape(pairs, -1) for psi, start, count, d in self.psi_slices if count], 1)
        parts = [(averaged[:, getattr(self, f"src_{t}")] @ getattr(self, f"expand_{t}")).reshape(pairs, -1)
                 for t in range(self._n_types)]
        coefficients = averaged.new_zeros(pairs, self.d_out * self.d_in * len(self.harmonics))
        coefficients[:, self.dst] = torch.cat(parts, 1)
        return coefficients.view(self.n_out, self.n_in, self.d_out, self.d_in, -1)

    def expand_filter(self) -> torch.Tensor:
        """(out, in, k, k, k): the p-average of the band-limited kernel the weights give."""
        kernel = self.coefficients() @ self.harmonics
        k = self.kernel
        return kernel.permute(0, 2, 1, 3, 4).reshape(self.n_out * self.d_out, self.n_in * self.d_in, k, k, k)

    def expand_bias(self) -> torch.Tensor | None:
        if self.bias is None:
            return None
        full = self.bias.new_zeros(self.n_out, self.d_out)
        full[:, self.bias_positions] = self.bias
        return full.reshape(-1)

    def forward(self, x):
        output = torch.nn.functional.conv3d(x.tensor, self.expand_filter(), self.expand_bias(),
                                            stride=self.stride, padding=self.padding)
        return self._enn.GeometricTensor(output, self.out_type)

    def evaluate_output_shape(self, input_shape):
        size = lambda n: (n + 2 * self.padding - self.kernel) // self.stride + 1  # noqa: E731
        return (input_shape[0], self.out_type.size, *(size(n) for n in input_shape[2:]))


class _PartialPlan(_Plan):
    """The SCNN's plan with their learnable layers (`medmnist._Plan.conv`'s `layer`: ids 0, 1, 2 as
    their id_generator, networks_cnn.py 1315-1318, `--one_eq` off) built as PartialR3Convs, the two
    convolutions of one id sharing one likelihood (their cache by layer id, irreps_mapping.py 659-673)."""

    def __init__(self, group, *args, L: int = 2, L_out: int = 2, **kwargs):
        super().__init__(group, *args, **kwargs)
        self.likelihoods = [so3_fourier.RotationLikelihood(group, L, L_out) for _ in range(3)]

    def conv(self, t_in, t_out, kernel: int, layer: int | None = None, **kwargs):
        if layer is None:
            return super().conv(t_in, t_out, kernel, **kwargs)
        return PartialR3Conv(t_in, t_out, kernel, self.likelihoods[layer], initialize=self.initialize, **kwargs)


def medmnist_pscnn(group: str = "SO3", n_channels: int = 1, c: int = 6, n_classes: int = 2,
                   upsample: int = 29, latent_dim: int = 48, band_limit: int | None = None,
                   initialize: bool = True, L: int = 2, L_out: int = 2, kl_weight: float = 1.0,
                   kl_uniform_weight: float = 1.0, alignment_weight: float = 5.0):
    """PSCNN of Table 5: their SteerableCNN3DResnet.from_group(group, learn_eq=True) (networks_cnn.py
    1212-1790) as experiments/medical_mnist2d.py's create_network builds it (149-210): the SCNN
    (medmnist.medmnist_scnn) with block 2's convolution and skip 1 (likelihood 0: networks_cnn.py
    1352-1384), block 4's convolution and skip 2 (likelihood 1: 1420-1456), and block 6's 1×1
    convolution and skip 3 (likelihood 2: 1528-1554) PartialR3Convs; the other three convolutions
    escnn's R3Conv. Likelihood band limit L = 2 (their `-L` default, medical_mnist2d.py 830-834);
    L_out = 2, not their `-L_out` default 4 (836-840): only L_out = 2 gives Table 5's counts
    (parameters at c = 6, 2 classes: SO(3) 4,166,339, O(3) 3,511,682; Table 5: 4.17 M, 3.51 M;
    L_out = 4 would give 11.09 M and 6.25 M). Prior (`model.prior()`, added to the loss by
    loss.method_loss): kl_uniform_weight × KL(p_0 ‖ uniform) / 3 + kl_weight × Σ KL(p_l ‖ p_(l−1)) / 3
    + alignment_weight × Σ alignment (get_kl_loss / get_shift_loss, experiments/util.py 142-163),
    weights their `-kl` 1, `-kl_U` 1, `-align` 5 (medical_mnist2d.py 842-861; the loss 272-283)."""
    plan = _PartialPlan(group, n_channels, c, latent_dim, band_limit, initialize, L=L, L_out=L_out)
    model = _encoder_head(plan, equivariant_blocks(plan), n_classes, upsample)
    return attach_pscnn_prior(model, kl_weight=kl_weight, kl_uniform_weight=kl_uniform_weight,
                              alignment_weight=alignment_weight)


ESCNN_BUILDERS = {"medmnist_pscnn": medmnist_pscnn}
TORCH_BUILDERS: dict = {}
