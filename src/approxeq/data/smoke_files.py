"""SMOKE simulations on disk: the divergence check of a stored field, the metadata, hash-pinned
save and load, and `generate`, which simulates and stores the requested plumes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from approxeq.data.smoke_cg import _batch_independent_sparse_cg
from approxeq.data.smoke_sim import (
    COMPONENTS,
    DENSITY_LAYOUT,
    FRAME_DEFINITION,
    LAYOUT,
    Y_AXIS,
    Log,
    SmokeConfig,
    _check_ids,
    _no_log,
    batches,
    simulate,
)
from approxeq.runtime.io import (
    HashMismatchError,
    atomic_path,
    file_hash,
    meta_path,
    read_json,
    write_json_atomic,
)

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
