"""A batch-independent sparse CG for PhiFlow's pressure solve: phiml 1.16's torch CG couples the
members of a batch, and its sparse products (MKL on CPU) round differently for different batch
widths, so a simulation's result would depend on the batch it runs in (smoke_sim)."""
from __future__ import annotations

import contextlib
import functools
from typing import Iterator, List, Tuple


@functools.lru_cache(maxsize=1)
def _batch_independent_sparse_cg():
    """A copy of phiml 1.16's TorchScript sparse CG (phiml.backend.torch._torch_backend.
    torch_sparse_cg) with its batch couplings removed, or None if phiml has no such function.

    The original compares residuals of shape (batch, 1) with tolerances of shape (batch,), so
    each simulation of a batch must reach the smallest tolerance of the whole batch, and it
    keeps updating the residual of finished simulations every 20 iterations, which can restart
    them. Results then depend on which simulations share a batch (and, the flow being chaotic,
    differ by O(1) after a few hundred steps). This version stops each simulation exactly where
    it would stop alone.

    Its matrix-vector products are not phiml's `sparse_matmul` (torch.sparse.mm, i.e. MKL's
    CSR × dense product on CPU) either: what MKL gives for a row depends on the number of
    right-hand sides. On an AVX-512 Xeon (torch 2.13 / MKL 2024.2) a product with 1, 2, 3, 5, …
    columns equals a sequential fused multiply-add along each row, but one with 4, 8, 12, 16 or
    24 columns rounds differently (in the last bit), so a batch of 4 differed from 4 runs of one
    at ~1e-9 from the first pressure solve on (with MKL_CBWR=COMPATIBLE it does not). Here the
    product is written out instead (banded_matmul): the Poisson matrix of the pressure solve has
    a few diagonals (5 for the 2-D five-point stencil), and A·x = Σ_d A[r, r + o_d] · x[r + o_d]
    is summed over the offsets o_d in ascending order (= ascending column), each term one
    elementwise multiply and one add, each rounded once. Every simulation's row of the result
    then comes from the same operations in the same order whatever the batch, on any CPU. A
    matrix with many diagonals (or a dense one) falls back to one `sparse_matmul` per
    simulation, the very call of a batch of one. The per-simulation sums (dot products) are
    torch row sums, which sum each row in one thread and the same order for any batch, except
    when a single row has 32768 or more elements (grids of 182² and more) and torch runs on
    several threads: then a batch of one is summed in parts (torch's two-pass reduction)."""
    import torch
    from phiml.backend.torch import _torch_backend as backend

    if not hasattr(backend, "torch_sparse_cg"):
        return None
    sparse_matmul, divide_no_nan = backend.sparse_matmul, backend.divide_no_nan

    def diagonals_of(lin: torch.Tensor) -> Tuple[torch.Tensor, List[int]]:
        """(values (D, n), ascending offsets o_d) with lin[r, r + o_d] = values[d, r] (zero
        where that entry is absent), or an empty list of offsets where lin is dense or has so
        many diagonals that the banded product would do more than twice the sparse work."""
        n = lin.shape[0]
        if lin.is_sparse_csr:
            crow = lin.crow_indices().to(torch.int64)
            rows = torch.repeat_interleave(torch.arange(n, device=crow.device),
                                           crow[1:] - crow[:-1])
            cols = lin.col_indices().to(torch.int64)
            values = lin.values()
        elif lin.is_sparse:
            coalesced = lin.coalesce()
            rows = coalesced.indices()[0]
            cols = coalesced.indices()[1]
            values = coalesced.values()
        else:
            return torch.zeros([0, n], dtype=lin.dtype, device=lin.device), []
        shift = cols - rows + (n - 1)  # offset + n − 1, in 0..2n − 2
        present = torch.bincount(shift, minlength=2 * n - 1) > 0
        offsets = torch.nonzero(present).flatten()
        count = offsets.shape[0]
        if count == 0 or count * n > 2 * max(values.shape[0], n):
            return torch.zeros([0, n], dtype=values.dtype, device=values.device), []
        slot = torch.cumsum(present.to(torch.int64), 0) - 1
        diagonals = torch.zeros([count, n], dtype=values.dtype, device=values.device)
        diagonals.index_put_((slot[shift], rows), values, accumulate=True)  # duplicates summed
        offset_list: List[int] = (offsets - (n - 1)).tolist()
        return diagonals, offset_list

    def banded_matmul(lin: torch.Tensor, diagonals: torch.Tensor, offsets: List[int],
                      padded: torch.Tensor, term: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """lin · b[i] for each row i of b (batch, n), every row computed alone (see above).
        `padded` (batch, n + bandwidths, zero margins) and `term` (batch, n) are work buffers."""
        if len(offsets) == 0:
            rows: List[torch.Tensor] = []
            for i in range(b.shape[0]):
                rows.append(sparse_matmul(lin, b[i:i + 1]))
            return torch.cat(rows, 0)
        n = b.shape[1]
        low = max(0, -offsets[0])
        padded[:, low:low + n].copy_(b)
        start = low + offsets[0]
        out = diagonals[0] * padded[:, start:start + n]
        for d in range(1, len(offsets)):
            start = low + offsets[d]
            torch.mul(diagonals[d], padded[:, start:start + n], out=term)
            out.add_(term)
        return out

    @torch.jit._script_if_tracing
    def torch_sparse_cg(lin, y, x0, tolerance_sq, max_iter):
        batch_size = y.shape[0]
        diagonals, offsets = diagonals_of(lin)
        bandwidth = 0 if len(offsets) == 0 else max(0, -offsets[0]) + max(0, offsets[-1])
        padded = torch.zeros([batch_size, y.shape[1] + bandwidth], dtype=y.dtype, device=y.device)
        term = torch.empty_like(y)
        x = x0
        dx = residual = y - banded_matmul(lin, diagonals, offsets, padded, term, x)
        it_counter = torch.tensor(0, dtype=torch.int32, device=x.device)
        iterations = torch.zeros([batch_size], dtype=torch.int32, device=x.device)
        function_evaluations = torch.ones([batch_size], dtype=torch.int32, device=x.device)
        residual_squared = rsq0 = torch.sum(residual ** 2, -1, keepdim=True)
        tolerance = torch.reshape(tolerance_sq, [-1, 1]).expand(batch_size, 1)
        diverged = torch.any(~torch.isfinite(x), dim=1)
        converged = torch.all(residual_squared <= tolerance, dim=1)
        finished = converged | diverged | (iterations >= max_iter)
        not_finished_1 = (~finished).to(torch.int32)
        while ~torch.all(finished):
            running = torch.unsqueeze(~finished, -1)
            it_counter += 1
            iterations += not_finished_1
            dy = banded_matmul(lin, diagonals, offsets, padded, term, dx)
            function_evaluations += not_finished_1
            dx_dy = torch.sum(dx * dy, dim=-1, keepdim=True)
            step_size = divide_no_nan(residual_squared, dx_dy)
            step_size *= torch.unsqueeze(not_finished_1.to(y.dtype), -1)
            x += step_size * dx
            if it_counter % 20 == 0:  # every running simulation is at iteration it_counter
                new_residual = y - banded_matmul(lin, diagonals, offsets, padded, term, x)
                function_evaluations += not_finished_1
            else:
                new_residual = residual - step_size * dy
            residual = torch.where(running, new_residual, residual)
            residual_squared_old = residual_squared
            residual_squared = torch.where(running, torch.sum(residual ** 2, -1, keepdim=True),
                                           residual_squared)
            dx = torch.where(running, residual + divide_no_nan(residual_squared,
                                                               residual_squared_old) * dx, dx)
            diverged = diverged | (torch.any(residual_squared / rsq0 > 100, dim=1)
                                   & (iterations >= 8) & ~finished)
            converged = converged | (torch.all(residual_squared <= tolerance, dim=1) & ~finished)
            finished = converged | diverged | (iterations >= max_iter)
            not_finished_1 = (~finished).to(torch.int32)
        return x, residual, iterations, function_evaluations, converged, diverged

    return torch_sparse_cg


@contextlib.contextmanager
def batch_independent_cg(enabled: bool = True) -> Iterator[bool]:
    """While active (and `enabled`), phiml's torch sparse CG is replaced by
    _batch_independent_sparse_cg; yields whether it is. Traces made inside keep it."""
    replacement = _batch_independent_sparse_cg() if enabled else None
    if replacement is None:
        yield False
        return
    from phiml.backend.torch import _torch_backend as backend
    original = backend.torch_sparse_cg
    backend.torch_sparse_cg = replacement
    try:
        yield True
    finally:
        backend.torch_sparse_cg = original
