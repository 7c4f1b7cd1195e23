"""Harmonic analysis on SO(3) and O(3) for the 3D PSCNN (pscnn3d.py), on escnn's irreps: a quadrature
grid exact for band-limited functions, the intertwiners of tensor products, and the learnable
likelihood over the group (`RotationLikelihood`).

Cited files are QUVA-Lab/partial-escnn at commit 35ac967 (reference only; this is our code). Their
likelihood (`IrrepsMapFourierBLact`, escnn2/kernels/irreps_mapping.py 25-150, normalised by
`FTSoftmaxNormalisation`, escnn2/kernels/fouriernonliniearity.py 95-329) has logits
l(g) = Σ_ψ √dim ψ ⟨Θ_ψ, ψ(g)⟩ over the irreps ψ of band limit L (`_build_kernel`, fouriernonliniearity.py
19-30), Θ = (1, 0, ..., 0) at initialisation (uniform: irreps_mapping.py 115-124), p = exp(l) / mean exp(l)
(`softmax`, 275-290), and the Fourier coefficients F(ψ) = ∫ p(g) ψ(g) dg of band limit L_out, which
they fit by least squares to p sampled on a Thomson grid of 2 × (band-limited regular size) points
(irreps_mapping.py 79-113, fouriernonliniearity.py 231-263). Here the same integrals are taken with a
product quadrature (Euler angles: uniform in α and γ, Gauss-Legendre in cos β), exact for every
matrix entry of every irrep of degree ≤ 7: at the uniform likelihood F(ψ) = 0 for ψ ≠ 0 to float
rounding, so the layer is exactly the equivariant one. O(3) = SO(3) × {±1}: both cosets, each half
the weight. Their KL (irreps_mapping.py 159-192, in Fourier coefficients) is here the same KL(p ‖ q)
by quadrature; their alignment term (`shift_loss`, fouriernonliniearity.py 265-273: max l − l(e)
over the grid and 100 samples near the identity, 192-214, drawn afresh at each build) uses 100
samples drawn once from a fixed seed (reproducible builds).

Intertwiners. escnn's irreps of SO(3) / O(3) are read at rotations by a small angle about the
three axes; their matrix logarithms are the Lie-algebra generators J_k. On a tensor product
ρ_n ⊗ ρ_m ⊗ ρ_j (generators summed), the Casimir Σ_k J_k² has eigenvalue −λ(λ+1) exactly on the
λ-isotypic subspace; within it the maps Q with J_k Q = Q J^λ_k (the copies of the irrep λ) are the
null space of a small linear system. These are the columns their code gets from escnn's
Clebsch-Gordan change of basis (irreps_mapping.py 482-585), up to an orthogonal mixing of the
copies, without escnn's numerical Clebsch-Gordan solver (slow without py3nj).
"""
from __future__ import annotations

import functools

import numpy as np
import torch
from torch import nn

THETA = 0.1  # angle of the rotations whose logarithm gives the generators (|m θ| < π for every degree used)
AXES = np.eye(3)


def group_of(name: str):
    """escnn's SO(3) or O(3) (name "SO3" / "O3"), with irreps up to degree 8 available."""
    from escnn.group import o3_group, so3_group

    return {"SO3": so3_group, "O3": o3_group}[name](8)


def _rotation(G, name: str, quaternion: np.ndarray, reflect: int = 0):
    """The element of G rotating by `quaternion` (x, y, z, w), times the inversion if `reflect`."""
    return G.element(quaternion, "Q") if name == "SO3" else G.element((reflect, quaternion), "Q")


def _axis_quaternion(axis: np.ndarray, angle: float) -> np.ndarray:
    return np.concatenate([np.sin(angle / 2) * axis, [np.cos(angle / 2)]])


@functools.lru_cache(maxsize=None)
def generators(name: str, irrep_id: tuple) -> np.ndarray:
    """(3, d, d): the generators J_k of irrep `irrep_id` of `name`'s group (harmonic irreps of O(3) for
    the kernel basis use name "O3"): ρ(exp(θ J_k)) = ρ(rotation by θ about axis k)."""
    import scipy.linalg  # scikit-learn's dependency; imported only when a 3D PSCNN is built

    G = group_of(name)
    irrep = G.irrep(*irrep_id)
    out = []
    for axis in AXES:
        matrix = irrep(_rotation(G, name, _axis_quaternion(axis, THETA)))
        out.append(np.real(scipy.linalg.logm(matrix)) / THETA if matrix.shape[0] > 1 else np.zeros((1, 1)))
    return np.stack(out)


def _kron_sum(blocks: list[np.ndarray]) -> np.ndarray:
    """Generator of a tensor product (row-major flattening): Σ_i I ⊗ ... ⊗ J_i ⊗ ... ⊗ I."""
    sizes = [b.shape[0] for b in blocks]
    total = np.zeros((int(np.prod(sizes)),) * 2)
    for i, block in enumerate(blocks):
        left, right = int(np.prod(sizes[:i])), int(np.prod(sizes[i + 1:]))
        total += np.kron(np.kron(np.eye(left), block), np.eye(right))
    return total


@functools.lru_cache(maxsize=None)
def intertwiners(factors: tuple, target: tuple) -> np.ndarray:
    """(copies, D, d): orthonormal maps Q from irrep `target` into the tensor product of `factors`
    (D = product of their sizes), Q^T Q = I, T_k Q = Q J_k for every generator; `factors` and `target`
    are (group name, irrep id) pairs of the same rotation group (the inversion, a scalar on each
    factor, is the caller's to match)."""
    T = [_kron_sum([generators(name, irrep)[k] for name, irrep in factors]) for k in range(3)]
    J = generators(*target)
    d = J.shape[1]
    degree = (d - 1) // 2
    casimir = sum(t @ t for t in T)
    values, vectors = np.linalg.eigh((casimir + casimir.T) / 2)
    U = vectors[:, np.abs(values + degree * (degree + 1)) < 0.5]
    if U.shape[1] == 0:
        return np.zeros((0, casimir.shape[0], d))
    K = U.shape[1]
    system = np.concatenate([np.kron(U.T @ t @ U, np.eye(d)) - np.kron(np.eye(K), j.T) for t, j in zip(T, J)])
    _, s, vh = np.linalg.svd(system)
    null = vh[len(vh) - K // d:]
    Q = np.stack([U @ v.reshape(K, d) for v in null])
    gram = np.einsum("uai,vai->uv", Q, Q) / d
    w, v = np.linalg.eigh(gram)
    Q = np.einsum("uv,uai->vai", v / np.sqrt(w), Q)
    residual = max(np.abs(t @ q - q @ j).max() for q in Q for t, j in zip(T, J))
    if residual > 1e-8 or not np.allclose(np.einsum("uai,vaj->uivj", Q, Q).reshape(len(Q) * d, -1),
                                          np.eye(len(Q) * d), atol=1e-8):
        raise ArithmeticError(f"intertwiners of {target} in {factors} not found (residual {residual:.1e})")
    return Q


@functools.lru_cache(maxsize=None)
def quadrature(name: str, n_angle: int = 8, n_beta: int = 6) -> tuple[list, np.ndarray]:
    """(elements, weights summing to 1): R = Rz(α) Ry(β) Rz(γ), α, γ on n_angle uniform angles, cos β
    on n_beta Gauss-Legendre nodes (Haar measure sin β dα dβ dγ): exact for the matrix entries of the
    irreps of degree < min(n_angle, 2 n_beta); for O(3) both cosets, half the weight each."""
    G = group_of(name)
    nodes, gl_weights = np.polynomial.legendre.leggauss(n_beta)
    angles = 2 * np.pi * np.arange(n_angle) / n_angle
    elements, weights = [], []
    for reflect in ((0,) if name == "SO3" else (0, 1)):
        for alpha in angles:
            for beta, w_beta in zip(np.arccos(nodes), gl_weights):
                for gamma in angles:
                    qs = [_axis_quaternion(AXES[2], alpha), _axis_quaternion(AXES[1], beta),
                          _axis_quaternion(AXES[2], gamma)]
                    g = _rotation(G, name, qs[0]) @ _rotation(G, name, qs[1]) @ _rotation(G, name, qs[2])
                    if reflect:
                        g = _rotation(G, name, _axis_quaternion(AXES[2], 0.0), 1) @ g
                    elements.append(g)
                    weights.append(w_beta)
    weights = np.asarray(weights)
    return elements, weights / weights.sum()


def _near_identity(name: str, n: int = 100, seed: int = 0) -> list:
    """n rotations near the identity (their 100 quaternions N(0, 0.1)-perturbed, fouriernonliniearity.py
    192-204), drawn from a fixed seed."""
    G = group_of(name)
    rng = np.random.default_rng(seed)
    quats = rng.normal(0, 0.1, (n, 4)) + np.array([0, 0, 0, 1.0])
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return [_rotation(G, name, q) for q in quats]


def band_limited_irreps(name: str, L: int) -> list[tuple]:
    return [tuple(i) for i in group_of(name).bl_irreps(L)]


def _flat_irreps(name: str, L: int, elements: list, scale: bool) -> np.ndarray:
    """(elements, Σ dim²): every irrep of degree ≤ L at each element, flattened, times √dim if `scale`."""
    G = group_of(name)
    columns = []
    for irrep_id in band_limited_irreps(name, L):
        irrep = G.irrep(*irrep_id)
        factor = np.sqrt(irrep.size) if scale else 1.0
        columns.append(np.stack([factor * irrep(g).reshape(-1) for g in elements]))
    return np.concatenate(columns, axis=1)


@functools.lru_cache(maxsize=None)
def _likelihood_tables(name: str, L: int, L_out: int) -> tuple[np.ndarray, ...]:
    """(quadrature weights, logit basis on the grid, on the identity and near it, irreps of degree ≤ L_out
    on the grid): a function of the group and band limits alone, shared by every likelihood."""
    elements, weights = quadrature(name)
    extra = [group_of(name).identity] + _near_identity(name)
    G, top = group_of(name), max(L, L_out)
    on_grid = _flat_irreps(name, top, elements, False)
    sizes = [G.irrep(*i).size for i in band_limited_irreps(name, top)]
    scale = np.concatenate([np.full(d * d, np.sqrt(d)) for d in sizes])
    n_logit = sum(G.irrep(*i).size ** 2 for i in band_limited_irreps(name, L))
    n_out = sum(G.irrep(*i).size ** 2 for i in band_limited_irreps(name, L_out))
    return (weights, (on_grid * scale)[:, :n_logit], _flat_irreps(name, L, extra, True), on_grid[:, :n_out])


class RotationLikelihood(nn.Module):
    """A learnable likelihood p over SO(3) or O(3) (module docstring): logits of band limit L, Fourier
    coefficients F(ψ) of band limit L_out, both by quadrature; uniform at initialisation."""

    is_group_likelihood = True  # found by pscnn.likelihoods

    def __init__(self, name: str, L: int = 2, L_out: int = 2):
        super().__init__()
        self.name, self.L, self.L_out = name, L, L_out
        G = group_of(name)
        for key, table in zip(("weights", "logit_basis", "logit_basis_extra", "irreps_at"),
                              _likelihood_tables(name, L, L_out)):
            self.register_buffer(key, torch.tensor(table, dtype=torch.float32), persistent=False)
        self.irreps = band_limited_irreps(name, L_out)
        self.sizes = [G.irrep(*i).size for i in self.irreps]
        theta = torch.zeros(self.logit_basis.shape[1])
        theta[0] = 1.0  # the trivial irrep comes first in bl_irreps
        self.theta = nn.Parameter(theta)  # their `fts_in`

    def log_density(self) -> torch.Tensor:
        """log p on the quadrature grid, p normalised to ∫ p = 1 (Haar measure of mass 1)."""
        logits = self.logit_basis @ self.theta
        return logits - torch.logsumexp(logits + self.weights.log(), 0)

    def fourier(self) -> dict[tuple, torch.Tensor]:
        """{ψ id: F(ψ) = ∫ p(g) ψ(g) dg} for every irrep ψ of degree ≤ L_out."""
        flat = (self.weights * self.log_density().exp()) @ self.irreps_at
        out, start = {}, 0
        for irrep, d in zip(self.irreps, self.sizes):
            out[irrep] = flat[start:start + d * d].view(d, d)
            start += d * d
        return out

    def kl_divergence(self, other: "RotationLikelihood | None") -> torch.Tensor:
        """KL(p ‖ q), q uniform if `other` is None, else other's held constant (their `kl_divergence`,
        irreps_mapping.py 159-192, which detaches q: 187-188)."""
        log_p = self.log_density()
        log_q = torch.zeros_like(log_p) if other is None else other.log_density().detach()
        return (self.weights * log_p.exp() * (log_p - log_q)).sum()

    def alignment(self) -> torch.Tensor:
        """max_g l(g) − l(e) ≥ 0 over the grid, the identity and 100 samples near it (their `shift_loss`)."""
        logits = torch.cat([self.logit_basis_extra @ self.theta, self.logit_basis @ self.theta])
        return logits.max() - logits[0]
