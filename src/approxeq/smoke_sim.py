"""SMOKE: the 36 buoyant plumes of Wang, Walters & Yu (ICML 2022), regenerated with PhiFlow 3.4.

Simulation k = 1..n_simulations uses inflow j = (k − 1) mod 4: a sphere (of radius `inflow_radius`)
at `inflow_positions[j]` that adds `inflow_rate · dt` smoke per step, and a buoyancy force
`smoke · k · buoyancy_directions[j]`. One step of dt (reference/protocols.md, SMOKE):

    smoke    ← MacCormack(smoke, velocity, dt) + inflow_rate · dt · sphere_j
    velocity ← semi-Lagrangian(velocity, velocity, dt) + dt · resample(smoke · k · b_j → staggered)
    velocity, pressure ← fluid.make_incompressible(velocity, (),
                             Solve(method, rel_tol, abs_tol, x0=pressure, rank_deficiency=0))

(the warm start from the previous pressure is written as a correction, see step_function).
Many simulations run at once along a batch dimension `sim`, the step under `jit_compile`. Three
PhiFlow/phiml pitfalls are avoided so that a simulation's result is bit-identical whichever
batch it runs in and whichever simulation was traced first: Solve(x0=...) is frozen into a
torch trace (step_function), phiml's torch CG couples the members of a batch, and its sparse
matrix products (MKL on CPU) round differently for different batch widths
(_batch_independent_sparse_cg, on while simulating when `batch_independent_cg`).

Velocity lives on a StaggeredGrid with zero-velocity walls (a closed box, extrapolation ZERO),
smoke on a CenteredGrid (zero-gradient walls). The domain is the square [0, R]² with R = resolution,
so one cell is one unit of length. Positions and the radius are given for the published 64×64 grid
(`reference_resolution`) and are scaled by resolution / reference_resolution; the buoyancy vectors
and the inflow rate are not scaled.

Frames: frame t is the state after t steps (frame 0 is the initial state, all zero). The published
data keep frames 1..309 of a 310-step run: `first_frame` / `last_frame` (inclusive).

Export: velocity sampled at the cell centres (`StaggeredGrid.at_centers()`) as float32 in layout
(frame, component, y, x), component 0 = x-velocity, 1 = y-velocity, and row 0 is the bottom of
the box (y increases with the row index, as PhiFlow's y axis): inflow j = 0 at (32, 5) sits near
row 0 and its plume rises towards higher rows. Density (smoke) in layout (frame, y, x).

PhiFlow is imported lazily, so loading and checking data does not need it.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Mapping, Sequence, Tuple

import numpy as np

from approxeq.io import HashMismatchError, file_hash, meta_path, read_json, write_json_atomic, \
    atomic_path

LAYOUT = "(frame, component, y, x)"
DENSITY_LAYOUT = "(frame, y, x)"
COMPONENTS = ("x", "y")
Y_AXIS = "row 0 is the bottom of the box; y increases with the row index"
FRAME_DEFINITION = "frame t is the state after t steps of dt; frame 0 is the initial zero state"

Log = Callable[[str], None]


def _no_log(message: str) -> None:
    pass


@dataclass(frozen=True)
class SmokeConfig:
    """Every parameter of the SMOKE generation; defaults are the published ones (or, where the
    paper gives none, documented choices: inflow_rate, smoke_boundary, solver tolerances)."""
    resolution: int = 64                 # square grid, resolution × resolution cells, domain [0, R]²
    n_simulations: int = 36              # k = 1..n_simulations
    steps: int = 310                     # steps of dt simulated
    dt: float = 1.0
    # Inflow j: centre (x, y) and radius in physical units of the reference (64×64) grid.
    reference_resolution: int = 64
    inflow_positions: tuple = ((32.0, 5.0), (59.0, 32.0), (32.0, 59.0), (5.0, 32.0))
    inflow_radius: float = 5.0
    # Smoke added per unit time inside the sphere (× dt per step). Not given by the paper; 0.2 is
    # the value of PhiFlow's smoke-plume demo. soft=True weighs boundary cells by covered volume.
    inflow_rate: float = 0.2
    inflow_soft: bool = True
    # b_j; simulation k feels the force smoke · k · b_j (x, y components).
    buoyancy_directions: tuple = ((0.0, 0.01), (-0.01, 0.0), (0.0, -0.011), (0.01, 0.0))
    # Smoke walls: "zero_gradient" (PhiFlow demo) or "zero". Velocity walls are always closed.
    smoke_boundary: str = "zero_gradient"
    # Pressure solve (reference: float32 with 1e-5 may fail to converge; 1e-3 works).
    solve_method: str = "CG"
    rel_tol: float = 1e-3
    abs_tol: float = 1e-3
    max_iterations: int = 1000
    # False skips make_incompressible: a deliberately broken solve, only for tests of the check.
    pressure_projection: bool = True
    precision: int = 32                  # PhiFlow float precision in bits (32 or 64)
    # Replace phiml's torch CG by a copy without its batch coupling (and with matrix products
    # that do not depend on the batch width) while simulating, so that a simulation's result
    # does not depend on the batch it ran in (batch_independent_cg).
    batch_independent_cg: bool = True
    first_frame: int = 1                 # kept frames first_frame..last_frame (inclusive)
    last_frame: int = 309
    # check_simulation: largest allowed per-frame divergence_ratio. Calibrated: a correct solve
    # gives 0.15–0.23 per plume on the full 64×64 set (0.11–0.18 at 32×32, up to 0.30 on the
    # first frames at 16×16); no projection gives 0.55–0.70 on the first frames, 5 CG iterations
    # per step about 0.45.
    divergence_tolerance: float = 0.4

    def __post_init__(self):
        if self.resolution < 4:
            raise ValueError(f"resolution must be at least 4, got {self.resolution}")
        if self.n_simulations < 1:
            raise ValueError(f"n_simulations must be positive, got {self.n_simulations}")
        if not 0 <= self.first_frame <= self.last_frame <= self.steps:
            raise ValueError(f"need 0 <= first_frame <= last_frame <= steps, got "
                             f"first_frame={self.first_frame}, last_frame={self.last_frame}, "
                             f"steps={self.steps}")
        if len(self.inflow_positions) != len(self.buoyancy_directions) or not self.inflow_positions:
            raise ValueError("inflow_positions and buoyancy_directions need the same, nonzero length")
        if any(len(v) != 2 for v in (*self.inflow_positions, *self.buoyancy_directions)):
            raise ValueError("inflow_positions and buoyancy_directions hold (x, y) pairs")
        if self.divergence_tolerance <= 0 or self.inflow_radius <= 0 or self.dt <= 0:
            raise ValueError("divergence_tolerance, inflow_radius and dt must be positive")
        if self.smoke_boundary not in ("zero_gradient", "zero"):
            raise ValueError(f"smoke_boundary must be 'zero_gradient' or 'zero', "
                             f"got {self.smoke_boundary!r}")
        if self.precision not in (32, 64):
            raise ValueError(f"precision must be 32 or 64, got {self.precision}")
        # Normalise sequences (e.g. lists from a YAML config) to tuples so the config hashes.
        object.__setattr__(self, "inflow_positions",
                           tuple(tuple(float(c) for c in p) for p in self.inflow_positions))
        object.__setattr__(self, "buoyancy_directions",
                           tuple(tuple(float(c) for c in b) for b in self.buoyancy_directions))

    @classmethod
    def from_dict(cls, params: Mapping) -> "SmokeConfig":
        """A config from a mapping of field names (unknown keys refused)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(params) - names)
        if unknown:
            raise ValueError(f"unknown SmokeConfig fields: {unknown}")
        return cls(**dict(params))

    @property
    def frames(self) -> list[int]:
        return list(range(self.first_frame, self.last_frame + 1))

    @property
    def n_inflows(self) -> int:
        return len(self.inflow_positions)

    @property
    def scale(self) -> float:
        return self.resolution / self.reference_resolution

    def inflow_index(self, k: int) -> int:
        return (k - 1) % self.n_inflows

    def inflow_position(self, k: int) -> tuple[float, float]:
        x, y = self.inflow_positions[self.inflow_index(k)]
        return (x * self.scale, y * self.scale)

    def buoyancy(self, k: int) -> tuple[float, float]:
        """k · b_j, the factor that multiplies the smoke density in the buoyancy force."""
        bx, by = self.buoyancy_directions[self.inflow_index(k)]
        return (k * bx, k * by)

    def simulation_ids(self) -> list[int]:
        return list(range(1, self.n_simulations + 1))


# --------------------------------------------------------------------------------------------
# Simulation


def step_function(dt: float, method: str, rel_tol: float, abs_tol: float, max_iterations: int,
                  project: bool) -> Callable:
    """One step (velocity, smoke, pressure, inflow, buoyancy) → (velocity, smoke, pressure,
    velocity at the cell centres), not compiled (simulate uses _compiled_step)."""
    from phi.torch import flow

    def step(velocity, smoke, pressure, inflow, buoyancy):
        smoke = flow.advect.mac_cormack(smoke, velocity, dt) + inflow * dt
        force = flow.resample(smoke * buoyancy, to=velocity)
        velocity = flow.advect.semi_lagrangian(velocity, velocity, dt) + force * dt
        if project:
            # Warm start from the previous pressure p without Solve(x0=p): under torch
            # jit_compile, PhiFlow 3.4 / phiml 1.16 freezes an x0 given in the Solve into the
            # trace (every later call starts CG from the pressure of the call that was traced),
            # so results would depend on which simulation was traced first. Instead project
            # v − ∇p (from x0 = 0) and add the correction: the same CG iteration as x0 = p,
            # except that rel_tol is relative to the remaining divergence, not to div v.
            gradient = flow.field.spatial_gradient(pressure, velocity.extrapolation,
                                                   at=velocity.sampled_at, order=2,
                                                   scheme="green-gauss")
            velocity = (velocity - gradient).with_extrapolation(velocity.extrapolation)
            solve = flow.Solve(method, rel_tol, abs_tol, max_iterations=max_iterations,
                               rank_deficiency=0)
            velocity, correction = flow.fluid.make_incompressible(velocity, (), solve)
            pressure = pressure + correction
        return velocity, smoke, pressure, velocity.at_centers()

    return step


@functools.lru_cache(maxsize=None)
def _compiled_step(static: tuple, batch_independent: bool, precision: int) -> Callable:
    """The jit-compiled step for the static parameters `static` of step_function, traced once
    per batch size; a trace keeps the CG it was made with, hence `batch_independent` in the key."""
    from phi.torch import flow
    return flow.jit_compile(step_function(*static))


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


def _check_ids(config: SmokeConfig, simulations: Sequence[int]) -> list[int]:
    ids = [int(k) for k in simulations]
    if not ids:
        raise ValueError("no simulations requested")
    if len(set(ids)) != len(ids):
        raise ValueError(f"duplicate simulation numbers in {ids}")
    bad = [k for k in ids if not 1 <= k <= config.n_simulations]
    if bad:
        raise ValueError(f"simulation numbers {bad} outside 1..{config.n_simulations}")
    return ids


def _simulate_batch(config: SmokeConfig, ids: list[int], log: Log, label: str, log_every: int,
                    batch_independent: bool, jit: bool) -> dict[int, dict[str, np.ndarray]]:
    from phi.torch import flow
    math = flow.math
    res, n = config.resolution, len(ids)
    sim = flow.batch(sim=n)
    bounds = flow.Box(x=res, y=res)
    smoke_bc = flow.ZERO_GRADIENT if config.smoke_boundary == "zero_gradient" else flow.extrapolation.ZERO
    velocity = flow.StaggeredGrid(math.zeros(sim), flow.extrapolation.ZERO, bounds=bounds, x=res, y=res)
    smoke = flow.CenteredGrid(math.zeros(sim), smoke_bc, bounds=bounds, x=res, y=res)
    # The pressure has zero-gradient walls, as make_incompressible returns it; starting from
    # such a field (not None) means the step is traced once, not twice.
    pressure = flow.CenteredGrid(math.zeros(sim), flow.ZERO_GRADIENT, bounds=bounds, x=res, y=res)
    vec = flow.channel(vector="x,y")
    centres = math.tensor([config.inflow_position(k) for k in ids], flow.batch("sim"), vec)
    radius = config.inflow_radius * config.scale
    inflow = config.inflow_rate * flow.resample(flow.Sphere(center=centres, radius=radius),
                                                to=smoke, soft=config.inflow_soft)
    buoyancy = math.tensor([config.buoyancy(k) for k in ids], flow.batch("sim"), vec)
    static = (float(config.dt), config.solve_method, float(config.rel_tol), float(config.abs_tol),
              int(config.max_iterations), bool(config.pressure_projection))
    step = _compiled_step(static, batch_independent, config.precision) if jit else step_function(*static)

    frames = config.frames
    n_frames = len(frames)
    vel_out = np.empty((n, n_frames, 2, res, res), np.float32)
    den_out = np.empty((n, n_frames, res, res), np.float32)

    def store(t, centred, smoke):
        i = t - config.first_frame
        vel_out[:, i] = centred.values.numpy("sim,vector,y,x")
        den_out[:, i] = smoke.values.numpy("sim,y,x")

    if config.first_frame == 0:
        store(0, velocity.at_centers(), smoke)
    start = time.perf_counter()
    for t in range(1, config.steps + 1):
        velocity, smoke, pressure, centred = step(velocity, smoke, pressure, inflow, buoyancy)
        if config.first_frame <= t <= config.last_frame:
            store(t, centred, smoke)
        if t % log_every == 0 or t == config.steps:
            elapsed = time.perf_counter() - start
            log(f"{label}: step {t}/{config.steps}, {t / elapsed:.2f} steps/s, "
                f"{t * n / elapsed:.1f} simulation-steps/s ({elapsed:.1f} s)")
    return {k: {"velocity": vel_out[i], "density": den_out[i]} for i, k in enumerate(ids)}


def simulate(config: SmokeConfig, simulations: Sequence[int], log: Log | None = None,
             batch_size: int | None = None, log_every: int = 50, jit: bool = True
             ) -> dict[int, dict[str, np.ndarray]]:
    """Run the simulations `simulations` (numbers k in 1..n_simulations), `batch_size` at a time
    along a PhiFlow batch dimension `sim` (None: all at once; 1: one at a time, same code).
    Progress goes to `log` every `log_every` steps; jit=False runs the same step uncompiled
    (about 7× slower; for tests).

    Returns {k: {"velocity": float32 (frames, 2, R, R) in layout (frame, component, y, x),
                 "density": float32 (frames, R, R) in layout (frame, y, x)}} for the frames
    config.first_frame..config.last_frame (see the module docstring for the conventions)."""
    from phi.torch import flow
    log = log or _no_log
    ids = _check_ids(config, simulations)
    chunks = batches(ids, batch_size)
    out: dict[int, dict[str, np.ndarray]] = {}
    with flow.math.precision(config.precision), \
            batch_independent_cg(config.batch_independent_cg) as fixed:
        if config.batch_independent_cg and not fixed:
            log("warning: this phiml has no torch_sparse_cg to replace; batched results may "
                "depend on which simulations share a batch")
        for number, chunk in enumerate(chunks, 1):
            label = f"batch {number}/{len(chunks)} (k = {', '.join(map(str, chunk))})"
            log(f"{label}: {config.steps} steps on {config.resolution}×{config.resolution}")
            out.update(_simulate_batch(config, chunk, log, label, max(1, int(log_every)), fixed,
                                       jit))
    return {k: out[k] for k in ids}


def batches(ids: Sequence[int], batch_size: int | None) -> list[list[int]]:
    """The simulations run together: consecutive groups of `batch_size` (None: all)."""
    ids = list(ids)
    size = len(ids) if batch_size is None else int(batch_size)
    if size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return [ids[i:i + size] for i in range(0, len(ids), size)]


# --------------------------------------------------------------------------------------------
# Checks


def divergence_ratio(velocity: np.ndarray) -> np.ndarray:
    """Per frame: RMS of the discrete divergence over RMS of the velocity-gradient magnitude.

    `velocity` is (frames, 2, y, x) (or (2, y, x)) on the cell centres. Both derivatives are
    central differences over the interior cells (1..R−2 in each direction); the gradient
    magnitude is the Frobenius norm of the 2×2 Jacobian. The ratio is scale-free (independent of
    the grid spacing and of the velocity magnitude); it is 0 for an exactly divergence-free
    field and about 1/√2 for a field whose four derivatives are uncorrelated. The cell-centred
    samples of a divergence-free staggered field are not exactly divergence-free under central
    differences, so a correct solve gives a small nonzero value. A frame with zero velocity
    gradient gives 0."""
    v = np.asarray(velocity, dtype=np.float64)
    if v.ndim == 3:
        v = v[None]
    if v.ndim != 4 or v.shape[1] != 2:
        raise ValueError(f"velocity must be (frames, 2, y, x), got shape {v.shape}")
    u, w = v[:, 0], v[:, 1]
    dudx = (u[:, 1:-1, 2:] - u[:, 1:-1, :-2]) / 2
    dudy = (u[:, 2:, 1:-1] - u[:, :-2, 1:-1]) / 2
    dwdx = (w[:, 1:-1, 2:] - w[:, 1:-1, :-2]) / 2
    dwdy = (w[:, 2:, 1:-1] - w[:, :-2, 1:-1]) / 2
    div = np.sqrt(np.mean((dudx + dwdy) ** 2, axis=(1, 2)))
    grad = np.sqrt(np.mean(dudx ** 2 + dudy ** 2 + dwdx ** 2 + dwdy ** 2, axis=(1, 2)))
    return np.divide(div, grad, out=np.zeros_like(div), where=grad > 0)


def check_simulation(velocity: np.ndarray, k: int, divergence_tolerance: float = 0.4,
                     density: np.ndarray | None = None) -> float:
    """Refuse (ValueError naming simulation k and the number) a velocity (frames, 2, y, x) with
    NaN/inf values, or whose largest per-frame divergence_ratio exceeds `divergence_tolerance`;
    `density`, if given, is checked for finiteness too. Returns the largest ratio."""
    velocity = np.asarray(velocity)
    for name, array in (("velocity", velocity), ("density", density)):
        if array is None:
            continue
        bad = int(np.size(array) - np.count_nonzero(np.isfinite(array)))
        if bad:
            raise ValueError(f"simulation {k}: {bad} non-finite {name} values (NaN or inf)")
    ratios = divergence_ratio(velocity)
    worst = int(np.argmax(ratios))
    if ratios[worst] > divergence_tolerance:
        raise ValueError(f"simulation {k}: divergence ratio {ratios[worst]:.4g} at stored frame index "
                         f"{worst} exceeds the tolerance {divergence_tolerance:g} (RMS divergence / "
                         f"RMS velocity gradient; is the pressure projection working?)")
    return float(ratios[worst])


# --------------------------------------------------------------------------------------------
# Files


def _versions() -> dict:
    import importlib.metadata as md
    out = {}
    for name in ("phiflow", "phiml", "torch", "numpy"):
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def simulation_metadata(config: SmokeConfig, k: int, batch: Sequence[int] | None = None) -> dict:
    """The metadata stored with simulation k (JSON-able; tuples become lists); `batch`: the
    simulations run together with it (None: not recorded)."""
    j = config.inflow_index(k)
    versions = _versions()
    meta = {
        "dataset": "SMOKE (Wang, Walters & Yu, ICML 2022), regenerated with PhiFlow",
        "k": k,
        "inflow": j,
        "inflow_position": list(config.inflow_position(k)),
        "inflow_radius": config.inflow_radius * config.scale,
        "buoyancy_direction": list(config.buoyancy_directions[j]),
        "buoyancy": list(config.buoyancy(k)),
        "config": dataclasses.asdict(config),
        "layout": LAYOUT,
        "density_layout": DENSITY_LAYOUT,
        "components": list(COMPONENTS),
        "y_axis": Y_AXIS,
        "x_axis": "column 0 is the left wall; x increases with the column index",
        "grid": "cell centres at ((i + 0.5)·Δx, (j + 0.5)·Δx), Δx = 1, domain [0, resolution]²",
        "velocity_sampling": "StaggeredGrid.at_centers()",
        "frame_definition": FRAME_DEFINITION,
        "frames": config.frames,
        "batch": None if batch is None else [int(b) for b in batch],
        "batch_independent_cg": bool(config.batch_independent_cg
                                     and _batch_independent_sparse_cg() is not None),
        "dtype": "float32",
        "phiflow_version": versions["phiflow"],
        "versions": versions,
    }
    return json.loads(json.dumps(meta))


def save_simulation(path: str | Path, arrays: Mapping[str, np.ndarray], metadata: Mapping) -> dict:
    """Write `arrays` (e.g. velocity, density) and `metadata` as a compressed npz, atomically.

    The metadata goes into the npz as a 0-d string array `metadata` (JSON) and into the sidecar
    `<path>.json` together with the npz's `sha256`. Returns the sidecar's content."""
    path = Path(path)
    if "metadata" in arrays:
        raise ValueError("'metadata' is reserved for the metadata JSON; rename that array")
    text = json.dumps(metadata, sort_keys=True)
    payload = {name: np.asarray(value) for name, value in arrays.items()}
    payload["metadata"] = np.array(text)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **payload)
    sidecar = dict(json.loads(text), sha256=file_hash(path, "sha256"))
    write_json_atomic(meta_path(path), sidecar)
    return sidecar


def load_simulation(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """(arrays, metadata) of a file written by save_simulation, refusing it (HashMismatchError)
    if its sha256 differs from the sidecar's or the embedded metadata differs from the sidecar's.
    The metadata returned is the sidecar's (it includes `sha256`)."""
    path = Path(path)
    sidecar = read_json(meta_path(path))
    expected = sidecar.get("sha256")
    if not expected:
        raise HashMismatchError(f"{meta_path(path)} records no sha256 for {path}")
    actual = file_hash(path, "sha256")
    if actual != expected:
        raise HashMismatchError(f"sha256 mismatch for {path}: expected {expected}, got {actual}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    embedded = json.loads(str(arrays.pop("metadata")))
    if embedded != {key: value for key, value in sidecar.items() if key != "sha256"}:
        raise HashMismatchError(f"metadata inside {path} differs from {meta_path(path)}")
    return arrays, sidecar


def simulation_path(out_dir: str | Path, k: int) -> Path:
    return Path(out_dir) / f"sim_{k:02d}.npz"


def generate(config: SmokeConfig, out_dir: str | Path, simulations: Sequence[int] | None = None,
             batch_size: int | None = None, log: Log | None = None) -> list[Path]:
    """Simulate (`batch_size` at a time, None = all at once), check and save `sim_{k:02d}.npz`
    (+ `.json` sidecar) in `out_dir` for each k of `simulations` (default: all). Nothing is
    written unless every simulation passes check_simulation. Returns the npz paths in order."""
    log = log or _no_log
    ids = _check_ids(config, config.simulation_ids() if simulations is None else simulations)
    results = simulate(config, ids, log=log, batch_size=batch_size)
    worst = {}
    for k in ids:
        worst[k] = check_simulation(results[k]["velocity"], k, config.divergence_tolerance,
                                    density=results[k]["density"])
        log(f"simulation {k}: finite, largest divergence ratio {worst[k]:.4f} "
            f"(tolerance {config.divergence_tolerance:g})")
    batch_of = {k: chunk for chunk in batches(ids, batch_size) for k in chunk}
    paths = []
    for k in ids:
        path = simulation_path(out_dir, k)
        meta = dict(simulation_metadata(config, k, batch_of[k]), max_divergence_ratio=worst[k])
        save_simulation(path, results[k], meta)
        log(f"wrote {path}")
        paths.append(path)
    return paths
