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
(smoke_cg.batch_independent_cg, on while simulating). Checks, storage and `generate`: smoke_files.

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

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np

from approxeq.data.smoke_cg import batch_independent_cg

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
