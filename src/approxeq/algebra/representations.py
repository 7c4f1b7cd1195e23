"""Matrix representations built from a group's multiplication table.

All functions return a tensor of shape (|G|, d, d) whose slice `g` is ρ(g), indexed like the
group's table, so `rep[g] @ rep[h] == rep[table[g, h]]`.
"""
from __future__ import annotations

import torch

from approxeq.algebra.groups import FiniteGroup, GroupError


def regular_representation(group: FiniteGroup, dtype=torch.float32) -> torch.Tensor:
    """ρ_reg(g) e_h = e_{gh}: the permutation matrix with M[gh, h] = 1."""
    n = group.order
    table = torch.tensor(group.table)
    rep = torch.zeros(n, n, n, dtype=dtype)
    g = torch.arange(n)[:, None].expand(n, n)
    h = torch.arange(n)[None, :].expand(n, n)
    rep[g, table, h] = 1
    return rep


def kron_representation(rep_g: torch.Tensor, rep_h: torch.Tensor) -> torch.Tensor:
    """ρ((g, h)) = ρ_G(g) ⊗ ρ_H(h), element (g, h) at index g·|H| + h (see groups.direct_product)."""
    ng, nh = len(rep_g), len(rep_h)
    mats = [torch.kron(rep_g[a], rep_h[b]) for a in range(ng) for b in range(nh)]
    return torch.stack(mats)


def latent_representation(group: FiniteGroup, dim: int, copies: int | None = None,
                          dtype=torch.float32) -> torch.Tensor:
    """ρ_Z = ρ_reg^{⊕m} ⊕ 1^{⊕(d − m|G|)} (paper eq. 5), m = ⌊d/|G|⌋ by default.

    Block-diagonal: kron(I_m, ρ_reg(g)) in the first m|G| coordinates, identity after.
    """
    n = group.order
    if dim < n:
        raise GroupError(
            f"latent dimension {dim} is smaller than |{group.name}| = {n}: the method needs room for "
            f"at least one copy of the regular representation (d >= |G|)")
    m = dim // n if copies is None else copies
    if m < 1 or m * n > dim:
        raise GroupError(f"{m} copies of the {n}-dim regular representation do not fit in d = {dim}")
    reg = regular_representation(group, dtype)
    rep = torch.zeros(n, dim, dim, dtype=dtype)
    eye_m = torch.eye(m, dtype=dtype)
    for g in range(n):
        rep[g, : m * n, : m * n] = torch.kron(eye_m, reg[g])
    rep[:, m * n:, m * n:] = torch.eye(dim - m * n, dtype=dtype)
    return rep


def apply_matrices(rep: torch.Tensor, g: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Batched z_b ↦ ρ(g_b) z_b for a flat latent z of shape (B, d)."""
    return torch.einsum("bij,bj->bi", rep[g], z)
