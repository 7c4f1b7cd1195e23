"""SMOKE regeneration with PhiFlow (approxeq.smoke_sim) on a tiny grid: 16×16, 4 plumes, 12 steps."""
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("phi")

from approxeq.io import HashMismatchError  # noqa: E402
from approxeq.smoke_sim import (COMPONENTS, LAYOUT, Y_AXIS, SmokeConfig, check_simulation,  # noqa: E402
                                divergence_ratio, generate, load_simulation, save_simulation,
                                simulate, simulation_metadata)

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
    freeze the warm start, and the replaced CG stops each simulation where it would alone."""
    for k in IDS:
        for name in ("velocity", "density"):
            np.testing.assert_array_equal(batched[k][name], one_at_a_time[k][name],
                                          err_msg=f"k={k} {name}")


def test_jit_equals_uncompiled(batched):
    """No value of the traced call (e.g. a Solve's x0) is frozen into the jit trace."""
    short = dataclasses.replace(TINY, steps=5, last_frame=5)
    eager = simulate(short, [3], jit=False)
    np.testing.assert_array_equal(eager[3]["velocity"], batched[3]["velocity"][:5])


def test_batch_independent_cg():
    """Each right-hand side of a batch stops at its own tolerance, as when solved alone; phiml
    1.16's own torch CG holds every member of a batch to the smallest tolerance in it."""
    import importlib.metadata

    import torch
    from phiml.backend.torch import _torch_backend

    from approxeq.smoke_sim import _batch_independent_sparse_cg
    ours = _batch_independent_sparse_cg()
    if ours is None:
        pytest.skip("this phiml has no torch_sparse_cg")
    m = 12  # 2D Laplacian (+0.1 I) on 12×12 cells
    t = (2 * torch.eye(m, dtype=torch.float64) - torch.diag(torch.ones(m - 1, dtype=torch.float64), 1)
         - torch.diag(torch.ones(m - 1, dtype=torch.float64), -1))
    eye = torch.eye(m, dtype=torch.float64)
    matrix = (torch.kron(t, eye) + torch.kron(eye, t) + 0.1 * torch.eye(m * m, dtype=torch.float64))
    matrix = matrix.to_sparse_csr()
    generator = torch.Generator().manual_seed(0)
    y = (torch.randn(3, m * m, dtype=torch.float64, generator=generator)
         * torch.tensor([[1.0], [1e3], [1e-2]], dtype=torch.float64))
    tolerance_sq = (1e-3 ** 2) * torch.sum(y ** 2, -1)  # rel_tol 1e-3, as phiml builds it
    max_iter = torch.tensor(1000)

    def batched_equals_alone(cg):
        x, _, iterations, _, converged, _ = cg(matrix, y, torch.zeros_like(y), tolerance_sq, max_iter)
        assert bool(converged.all())
        same = []
        for i in range(3):
            xi, _, it_i, _, _, _ = cg(matrix, y[i:i + 1], torch.zeros_like(y[i:i + 1]),
                                      tolerance_sq[i:i + 1], max_iter)
            same.append(torch.equal(x[i:i + 1], xi) and int(iterations[i]) == int(it_i[0]))
        return all(same)

    assert batched_equals_alone(ours)
    if importlib.metadata.version("phiml") == "1.16.1":  # the coupling this replacement removes
        assert not batched_equals_alone(_torch_backend.torch_sparse_cg)


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
    sys.path.insert(0, str(Path(__file__).parents[1] / "workflow" / "scripts"))
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
