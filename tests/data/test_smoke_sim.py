"""SMOKE regeneration with PhiFlow (approxeq.data.smoke_sim) on a tiny grid: 16×16, 4 plumes, 12 steps."""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("phi")

from approxeq.data.smoke_files import (
    check_simulation,
    divergence_ratio,
    generate,
    load_simulation,
    save_simulation,
    simulation_metadata,
)
from approxeq.data.smoke_sim import COMPONENTS, LAYOUT, Y_AXIS, SmokeConfig, simulate
from approxeq.runtime.io import HashMismatchError  # noqa: E402

RES, STEPS = 16, 12
TINY = SmokeConfig(resolution=RES, n_simulations=4, steps=STEPS, first_frame=1, last_frame=STEPS - 1)
IDS = [1, 2, 3, 4]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Many tiny torch ops: one thread is several times faster than two on a busy 2-core CPU."""
    import torch
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def batched():
    return simulate(TINY, IDS, batch_size=4)


@pytest.fixture(scope="module")
def one_at_a_time():
    return simulate(TINY, IDS, batch_size=1)


@pytest.fixture(scope="module")
def unprojected():
    return simulate(dataclasses.replace(TINY, pressure_projection=False), IDS)


def test_shapes_dtypes_and_finite(batched):
    assert list(batched) == IDS
    n = STEPS - 1  # frames 1..STEPS-1
    for k, arrays in batched.items():
        assert set(arrays) == {"velocity", "density"}
        assert arrays["velocity"].shape == (n, 2, RES, RES)
        assert arrays["density"].shape == (n, RES, RES)
        assert arrays["velocity"].dtype == np.float32 and arrays["density"].dtype == np.float32
        assert np.isfinite(arrays["velocity"]).all() and np.isfinite(arrays["density"]).all()
        assert arrays["density"].min() >= -1e-3  # MacCormack may undershoot a little, no more
        assert np.abs(arrays["velocity"][-1]).max() > 1e-3  # the plume moves


def test_correct_solve_passes_divergence_check(batched):
    for k, arrays in batched.items():
        worst = check_simulation(arrays["velocity"], k, TINY.divergence_tolerance, arrays["density"])
        assert worst < TINY.divergence_tolerance


def test_skipping_the_projection_is_refused(unprojected, batched):
    for k, arrays in unprojected.items():
        broken = divergence_ratio(arrays["velocity"]).max()
        correct = divergence_ratio(batched[k]["velocity"]).max()
        assert broken > 1.5 * correct
        with pytest.raises(ValueError, match=rf"simulation {k}: divergence ratio [0-9.]+"):
            check_simulation(arrays["velocity"], k, TINY.divergence_tolerance)


def test_non_finite_values_are_refused(batched):
    velocity = batched[3]["velocity"].copy()
    velocity[4, 1, 5, 6] = np.nan
    with pytest.raises(ValueError, match="simulation 3: 1 non-finite velocity"):
        check_simulation(velocity, 3)


def test_divergence_ratio_of_known_fields():
    rng = np.random.default_rng(0)
    psi = rng.standard_normal((24, 24))

    def d(f, axis):  # central difference, periodic; commutes exactly with the other axis
        return (np.roll(f, -1, axis) - np.roll(f, 1, axis)) / 2

    solenoidal = np.stack([d(psi, 0), -d(psi, 1)])  # (u, v) = (∂ψ/∂y, −∂ψ/∂x): div-free
    gradient = np.stack([d(psi, 1), d(psi, 0)])  # ∇ψ: curl-free, all divergence
    assert divergence_ratio(solenoidal)[0] < 1e-12
    assert divergence_ratio(gradient)[0] > 0.5
    assert divergence_ratio(7.0 * solenoidal)[0] < 1e-12
    assert divergence_ratio(0.1 * gradient)[0] == pytest.approx(divergence_ratio(gradient)[0])
    assert divergence_ratio(np.zeros((2, 8, 8)))[0] == 0.0


def test_deterministic(batched):
    again = simulate(TINY, IDS, batch_size=4)
    for k in IDS:
        np.testing.assert_array_equal(again[k]["velocity"], batched[k]["velocity"])
        np.testing.assert_array_equal(again[k]["density"], batched[k]["density"])


def test_batched_equals_one_at_a_time(batched, one_at_a_time):
    """Bit-identical on CPU: the step is elementwise per simulation, the jit trace does not
    freeze the warm start, and the replaced CG stops each simulation where it would alone and
    computes its matrix products in an order that does not depend on the batch width (MKL's,
    which phiml uses, does: 4 plumes at once differed from one at a time at ~4e-9 on an
    AVX-512 Xeon)."""
    for k in IDS:
        for name in ("velocity", "density"):
            np.testing.assert_array_equal(batched[k][name], one_at_a_time[k][name],
                                          err_msg=f"k={k} {name}")


def test_jit_equals_uncompiled(batched):
    """No value of the traced call (e.g. a Solve's x0) is frozen into the jit trace."""
    short = dataclasses.replace(TINY, steps=5, last_frame=5)
    eager = simulate(short, [3], jit=False)
    np.testing.assert_array_equal(eager[3]["velocity"], batched[3]["velocity"][:5])


def _laplacian(m, dtype):
    """2D five-point Laplacian (+0.1 I) on m×m cells, dense."""
    import torch
    t = (2 * torch.eye(m, dtype=dtype) - torch.diag(torch.ones(m - 1, dtype=dtype), 1)
         - torch.diag(torch.ones(m - 1, dtype=dtype), -1))
    eye = torch.eye(m, dtype=dtype)
    return torch.kron(t, eye) + torch.kron(eye, t) + 0.1 * torch.eye(m * m, dtype=dtype)


def _scattered_spd(n, dtype):
    """A symmetric positive definite matrix with ~100 diagonals (too many for the banded
    product: the CG falls back to one sparse product per right-hand side), dense."""
    import torch
    generator = torch.Generator().manual_seed(1)
    m = torch.rand(n, n, generator=generator, dtype=torch.float64)
    m = torch.where(m < 0.1, m, torch.zeros_like(m))
    return (m.T @ m + 0.05 * torch.eye(n, dtype=torch.float64)).to(dtype)


def _solve_alone_and_batched(cg, matrix, y, rel_tol=1e-3):
    """(x of the batch, [x of each row solved alone], iterations of the batch, [iterations
    alone], converged) for CG on `matrix` with the right-hand sides y (batch, n)."""
    import torch
    tolerance_sq = (rel_tol ** 2) * torch.sum(y ** 2, -1)  # as phiml builds it
    max_iter = torch.tensor(1000)
    x, _, iterations, _, converged, _ = cg(matrix, y, torch.zeros_like(y), tolerance_sq, max_iter)
    alone, iterations_alone = [], []
    for i in range(y.shape[0]):
        xi, _, it_i, _, _, _ = cg(matrix, y[i:i + 1], torch.zeros_like(y[i:i + 1]),
                                  tolerance_sq[i:i + 1], max_iter)
        alone.append(xi)
        iterations_alone.append(int(it_i[0]))
    return x, alone, [int(i) for i in iterations], iterations_alone, bool(converged.all())


def _batched_equals_alone(cg, matrix, y):
    import torch
    x, alone, iterations, iterations_alone, converged = _solve_alone_and_batched(cg, matrix, y)
    assert converged
    return (iterations == iterations_alone
            and all(torch.equal(x[i:i + 1], xi) for i, xi in enumerate(alone)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("structure", ["banded", "scattered"])
def test_batch_independent_cg(dtype, structure):
    """Each right-hand side of a batch gives, bit for bit, what it gives when solved alone: it
    stops at its own tolerance (phiml 1.16's own torch CG holds every member of a batch to the
    smallest tolerance in it) and its matrix-vector products do not depend on the batch width
    (phiml's product, torch.sparse.mm, is MKL's CSR × dense product on CPU, which on an AVX-512
    Xeon rounds 4, 8, 12, 16 or 24 columns differently from 1). 4 and 8 right-hand sides, so
    those widths are exercised; the five-point Laplacian takes the banded product, a matrix
    with ~100 diagonals (or a dense matrix) the fallback, one product per right-hand side. The
    solutions solve the system (so the products are the matrix's)."""
    import importlib.metadata

    import torch
    from phiml.backend.torch import _torch_backend

    from approxeq.data.smoke_cg import _batch_independent_sparse_cg
    ours = _batch_independent_sparse_cg()
    if ours is None:
        pytest.skip("this phiml has no torch_sparse_cg")
    dtype = getattr(torch, dtype)
    dense = _laplacian(12, dtype) if structure == "banded" else _scattered_spd(60, dtype)
    matrix = dense.to_sparse_csr()
    n = dense.shape[0]
    generator = torch.Generator().manual_seed(0)
    scales = torch.tensor([[1.0], [1e3], [1e-2], [10.0], [3.0], [0.1], [1e2], [0.5]])
    y = (torch.randn(8, n, dtype=torch.float64, generator=generator) * scales).to(dtype)
    for width in (4, 8):
        assert _batched_equals_alone(ours, matrix, y[:width])
    x, _, _, _, _ = _solve_alone_and_batched(ours, matrix, y)
    residual = y.double() - x.double() @ dense.double().T
    relative = (residual.norm(dim=-1) / y.double().norm(dim=-1)).max()
    assert relative < 1.1e-3  # rel_tol 1e-3 on the CG's own residual
    # The same matrix in COO layout gives the same bits (same diagonals, same order); a dense
    # one takes the fallback.
    x_coo, _, _, _, _ = _solve_alone_and_batched(ours, dense.to_sparse_coo(), y)
    assert torch.equal(x_coo, x)
    assert _batched_equals_alone(ours, dense, y[:4])
    if importlib.metadata.version("phiml") == "1.16.1":  # the coupling this replacement removes
        assert not _batched_equals_alone(_torch_backend.torch_sparse_cg, matrix, y[:4])


def _weighted_mean_velocity(arrays, frame=-1):
    d = np.clip(arrays["density"][frame], 0, None)
    v = arrays["velocity"][frame]
    return (v * d).sum(axis=(1, 2)) / d.sum()  # (vx, vy) where the smoke is


def test_plume_moves_along_its_buoyancy(batched):
    """Pins the axes: component 0 is x, 1 is y, row 0 is the bottom. In a closed box the mean
    y-velocity over any full row is zero (no net flux), so look at where the smoke is."""
    for k in IDS:
        b = np.array(TINY.buoyancy(k))
        mean = _weighted_mean_velocity(batched[k])
        along = mean @ b / np.linalg.norm(b)
        across = abs(mean @ np.array([-b[1], b[0]]) / np.linalg.norm(b))
        assert along > 0 and across < 0.2 * along, (k, mean)
    # k = 1 (j = 0, inflow at the bottom, buoyancy +y): the column through the inflow moves up
    # above the inflow and the smoke's centre of mass rises as the plume grows.
    v = batched[1]["velocity"][-1]
    centre = RES // 2
    assert v[1, 2:RES - 2, centre - 1:centre + 1].mean() > 0
    rows = np.arange(RES)[:, None]

    def centroid_row(d):
        return (rows * d).sum() / d.sum()

    d = batched[1]["density"]
    assert centroid_row(d[-1]) > centroid_row(d[0])
    assert centroid_row(d[0]) < RES / 4  # it starts at the bottom (y = 5/64 of the box)


def test_config_geometry():
    config = SmokeConfig()
    assert (config.resolution, config.n_simulations, config.steps, config.dt) == (64, 36, 310, 1.0)
    assert config.frames == list(range(1, 310))
    assert [config.inflow_index(k) for k in (1, 2, 3, 4, 5, 36)] == [0, 1, 2, 3, 0, 3]
    assert config.inflow_position(2) == (59.0, 32.0)
    assert config.buoyancy(3) == (0.0, pytest.approx(-0.033))
    assert config.buoyancy(36) == (pytest.approx(0.36), 0.0)
    assert TINY.inflow_position(1) == (8.0, 1.25)  # scaled with resolution / 64
    lists = SmokeConfig.from_dict({"inflow_positions": [[32, 5], [59, 32], [32, 59], [5, 32]]})
    assert lists == config  # YAML lists become tuples
    with pytest.raises(ValueError, match="unknown SmokeConfig fields"):
        SmokeConfig.from_dict({"resolutions": 64})
    with pytest.raises(ValueError, match="last_frame"):
        SmokeConfig(steps=100)  # last_frame 309 > steps
    with pytest.raises(ValueError, match="outside 1..4"):
        simulate(TINY, [5])


def test_save_load_round_trip_and_hash_check(tmp_path, batched):
    path = tmp_path / "sim_02.npz"
    meta = simulation_metadata(TINY, 2)
    sidecar = save_simulation(path, batched[2], meta)
    assert len(sidecar["sha256"]) == 64
    arrays, loaded = load_simulation(path)
    np.testing.assert_array_equal(arrays["velocity"], batched[2]["velocity"])
    np.testing.assert_array_equal(arrays["density"], batched[2]["density"])
    assert loaded == dict(meta, sha256=sidecar["sha256"])
    with np.load(path) as data:  # the metadata also lives inside the npz
        assert json.loads(str(data["metadata"])) == meta
    assert loaded["layout"] == LAYOUT == "(frame, component, y, x)"
    assert loaded["components"] == list(COMPONENTS) == ["x", "y"]
    assert loaded["y_axis"] == Y_AXIS
    assert (loaded["k"], loaded["inflow"]) == (2, 1)
    assert loaded["buoyancy"] == [-0.02, 0.0] and loaded["buoyancy_direction"] == [-0.01, 0.0]
    assert loaded["frames"] == list(range(1, STEPS)) and loaded["phiflow_version"]
    assert loaded["config"] == json.loads(json.dumps(dataclasses.asdict(TINY)))
    # corrupt one byte: refused, naming the file
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(HashMismatchError, match="sim_02.npz"):
        load_simulation(path)


def test_generate_writes_checked_files(tmp_path):
    config = dataclasses.replace(TINY, steps=4, last_frame=3)
    paths = generate(config, tmp_path, [2, 4], batch_size=2)
    assert paths == [tmp_path / "sim_02.npz", tmp_path / "sim_04.npz"]
    for k, path in zip([2, 4], paths):
        arrays, meta = load_simulation(path)
        assert meta["k"] == k and arrays["velocity"].shape == (3, 2, RES, RES)
        assert Path(f"{path}.json").exists()


def test_generate_writes_nothing_for_a_broken_solve(tmp_path):
    config = dataclasses.replace(TINY, steps=4, last_frame=3, pressure_projection=False)
    with pytest.raises(ValueError, match="simulation 1: divergence ratio"):
        generate(config, tmp_path, [1])
    assert not list(tmp_path.iterdir())


def test_entry_point_runs_the_outputs(tmp_path):
    sys.path.insert(0, str(Path(__file__).parents[2] / "workflow" / "scripts"))
    try:
        import simulate_smoke
    finally:
        sys.path.pop(0)
    params = {f.name: getattr(TINY, f.name) for f in dataclasses.fields(TINY)}
    params.update(steps=3, last_frame=2)
    outputs = [str(tmp_path / "data" / "sim_01.npz"), str(tmp_path / "data" / "sim_03.npz")]
    import torch
    threads = torch.get_num_threads()
    try:
        simulate_smoke.main(params, 2, outputs, threads, tmp_path / "log.txt")
    finally:
        torch.set_num_threads(threads)
    assert all(Path(p).exists() for p in outputs)
    assert "simulation 3: finite" in (tmp_path / "log.txt").read_text()
    with pytest.raises(ValueError, match="sim_KK.npz"):
        simulate_smoke.simulations_of([tmp_path / "sim_1.npz"])
