"""The Snakemake workflow: dry-runs of the full configuration, single targets, and end-to-end runs."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import browser
from approxeq import scorecard
from approxeq.mnist import load_mnist
from latex import compile_tables

ROOT = Path(__file__).resolve().parents[1]
QUICK_STUDY_RUNS = 1 + 4  # the CNN and ours at 2 placements × 2 penalties (config.quick.yaml)
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(ROOT / "Snakefile")]


def snakemake(*args, cwd, timeout=900, env=None):
    env = {**os.environ, "APPROXEQ_FAKE_GPUS": "", **(env or {})}  # tests never touch a real GPU
    result = subprocess.run([*SNAKEMAKE, *args], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env)
    return result


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def test_full_dry_run_lists_every_run(tmp_path):
    result = snakemake("-n", "--directory", str(tmp_path), cwd=ROOT)
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    # DDMNIST groups × models × seeds + exploratory experiments × seeds + SMOKE models × seeds
    # + MedMNIST3D data sets × models × seeds
    # + the latent study's D4 seed-0 variants of ours (3 placements × 2 penalties, one is `ours`)
    assert counts["train"] == 3 * 5 * 5 + 3 * 5 + 9 * 5 + 3 * 3 * 5 + 5
    assert counts["evaluate"] == 185
    assert counts["fetch_medmnist"] == 3
    assert counts["decompose"] == 15  # 5 runs for each of the three exploratory experiments
    assert counts["build_ddmnist"] == 3
    assert counts["table_exploratory"] == 3
    for rule in ("fetch_mnist", "fetch_fonts", "build_tmnist", "fetch_cifar10", "aggregate_ddmnist",
                 "aggregate_exploratory", "table4", "figure_ddmnist_examples", "figure_ddmnist_training",
                 "figure3_decoded", "figure4_eigenvalues", "figure5_tmnist", "simulate_smoke", "table6",
                 "figure_smoke", "table5", "figure_medmnist", "aggregate_latent_study",
                 "latent_study_table", "figure_latent_study", "report", "all"):
        assert counts[rule] == 1, rule
    for model in ("cnn", "cnn_aug", "ours", "e2cnn", "rpp", "mlp", "lift", "rgroup", "rsteer"):  # SMOKE: 9 × 5 seeds
        for seed in range(5):
            assert f"results/runs/smoke/C4/{model}/seed{seed}/metrics.json" in result.stdout
    assert "results/data/smoke/sim_36.npz" in result.stdout
    for flag in ("nodulemnist3d", "synapsemnist3d", "organmnist3d"):
        for model in ("cnn", "cnn_aug", "ours"):
            assert f"results/runs/{flag}/O/{model}/seed4/metrics.json" in result.stdout
    for experiment, group in (("tmnist", "C2"), ("mnist_d3", "D3"), ("cifar10", "C4")):
        for seed in range(5):
            assert f"results/runs/{experiment}/{group}/learned/seed{seed}/decomposition.json" in result.stdout
    for group in ("C4", "D1", "D4"):
        for model in ("cnn", "ours", "scnn", "rpp", "restriction"):
            for seed in range(5):
                assert f"results/runs/ddmnist/{group}/{model}/seed{seed}/model.pt" in result.stdout


def test_single_table_target_builds_only_what_it_needs(tmp_path):
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table4.csv", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert set(counts) == {"fetch_mnist", "build_ddmnist", "train", "evaluate", "aggregate_ddmnist",
                           "table4", "total"}
    result = snakemake("-n", "--directory", str(tmp_path), "results/figures/ddmnist_examples.png",
                       cwd=ROOT)
    assert set(job_counts(result.stdout)) == {"fetch_mnist", "build_ddmnist",
                                              "figure_ddmnist_examples", "total"}
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table2.csv", cwd=ROOT)
    assert set(job_counts(result.stdout)) == {"fetch_mnist", "train", "evaluate", "decompose",
                                              "table_exploratory", "total"}
    assert job_counts(result.stdout)["train"] == 5
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table5.csv", cwd=ROOT)
    assert job_counts(result.stdout) == {"fetch_medmnist": 3, "train": 45, "evaluate": 45, "table5": 1,
                                         "total": 94}
    # Figure 4 shows one run per exploratory experiment and trains nothing else
    result = snakemake("-n", "--directory", str(tmp_path), "results/figures/figure4_eigenvalues.png", cwd=ROOT)
    assert job_counts(result.stdout)["train"] == 3


def test_latent_study_target_trains_only_its_runs(tmp_path):
    """The study is its own target: D4 seed 0 of the CNN and of ours at every placement × penalty,
    the cell equal to ours' own configuration being the Table 4 run (not trained twice)."""
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/latent_study.csv", cwd=ROOT)
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    assert set(counts) == {"fetch_mnist", "build_ddmnist", "train", "evaluate", "aggregate_latent_study",
                           "latent_study_table", "total"}
    assert counts["train"] == counts["evaluate"] == 1 + 6
    trained = set(re.findall(r"results/runs/ddmnist/D4/(\w+)/seed0/model\.pt", result.stdout))
    assert "cnn" in trained and "ours" in trained and len(trained) == 7
    quick = snakemake("-n", "--directory", str(tmp_path), "results/quick/tables/latent_study.csv",
                      "--configfile", str(ROOT / "config.quick.yaml"), cwd=ROOT)
    assert quick.returncode == 0, quick.stderr + quick.stdout
    assert job_counts(quick.stdout)["train"] == QUICK_STUDY_RUNS


@pytest.mark.parametrize("text, expected", [
    ("ddmnist:\n  training: {epochz: 3}\n", "epochz"),
    ("mnist:\n  sources: [{kind: local, path: no/such/mnist}]\n", "mnist.sources[0].path"),
    ("ddmnist:\n  models: {cnn: {label: CNN, lr: {C4: .inf, D1: 1.0e-3, D4: 5.0e-4}, "
     "lambda: {C4: 0, D1: 0, D4: 0}}}\n", "ddmnist.models.cnn.lr.C4"),
])
def test_bad_config_stops_before_any_job(tmp_path, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path), cwd=ROOT)
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr
    assert "Job stats" not in result.stdout


def test_lint_is_clean():
    result = snakemake("--lint", cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def numbers_in_every_trained_cell(table_csv: Path, baseline_groups: int = 3) -> pd.DataFrame:
    """Table 4 has a number in every cell trained here: CNN and ours on 3 groups, the SCNN, RPP and
    Restriction on `baseline_groups` of them (the quick configuration: D1 only; the tiny one: C4)."""
    table = pd.read_csv(table_csv)
    ours = table[table["source"] == "trained here"]
    assert len(ours) == 2 * 3 + 3 * baseline_groups
    assert ours[["ours_mean", "ours_std", "paper_mean", "difference", "ours_params_m"]].notna().all().all()
    assert ((ours["ours_mean"] >= 0) & (ours["ours_mean"] <= 1)).all()
    assert set(ours["model"]) == {"cnn", "ours", "scnn", "rpp", "restriction"}
    # the rest is imported from the paper: PSCNN (ddmnist.not_trained) and the baselines' other groups
    assert (table["source"] != "trained here").sum() == 3 + 3 * (3 - baseline_groups)
    return table


@pytest.mark.slow
def test_tiny_synthetic_run_end_to_end_on_two_simulated_gpus(tmp_path):
    """A smaller-than-quick configuration on a synthetic MNIST stand-in: Table 4 and the report,
    labelled synthetic; training jobs placed on two simulated GPUs, never two on one GPU at once."""
    config = {
        "run_name": "pytest", "quick": True, "results": "results", "report": "report.html",
        "compute": {"train_threads": 1},
        "mnist": {"dir": "resources/mnist", "sources": [
            {"kind": "synthetic", "n_train": 1000, "n_test": 300, "seed": 0}]},
        "ddmnist": {"seeds": [0], "per_class": {"train": 2, "val": 1, "test": 2},
                    "training": {"batch_size": 50, "epochs": 2, "patience": 2},
                    # the baselines on C4 only (the quick run trains them on D1; every group's
                    # equivariance is unit-tested): 6 fewer runs
                    "models": {name: {"network": {"c": 1}, "groups": ["C4"]} for name in ("scnn", "rpp", "restriction")}},
        "exploratory": {"seeds": [0, 1], "experiments": {
            name: {"training": {"epochs": 1, "patience": 1}, "sizes": {"train": 200, "val": 64, "test": 64}}
            for name in ("tmnist", "mnist_d3", "cifar10")}},
        "tmnist": {"dir": "resources/fonts", "sizes": {"train": 200, "val": 64, "test": 64},
                   "synthetic_fallback": True},
        "cifar10": {"dir": "resources/cifar10", "url": "http://127.0.0.1:9/cifar-10-python.tar.gz",
                    "timeout_seconds": 5, "synthetic": {"n_train": 300, "n_test": 100, "seed": 0}},
        "medmnist": {"dir": "resources/medmnist", "mirror": "http://127.0.0.1:9/", "timeout_seconds": 5,
                     "synthetic": {"sizes": {"train": 12, "val": 4, "test": 12}}, "seeds": [0],
                     "network": {"c": 3, "latent_dim": 24},
                     "training": {"batch_size": 6, "eval_batch_size": 6, "epochs": 1, "patience": 1}},
        "smoke": {"simulation": {"resolution": 16, "n_simulations": 8, "steps": 40, "last_frame": 39},
                  "batch_size": 8, "horizons": [6, 8], "seeds": [0], "network": {"name": "smoke_convnet", "hidden": 8},
                  "training": {"epochs": 1, "patience": 1}, "models": {"e2cnn": {"network": {"hidden": 2}},
                                                                     "rpp": {"network": {"hidden": 2}},
                                                                     "mlp": {"network": {"hidden": 2}},
                                                                     "lift": {"network": {"hidden": 4,
                                                                                          "encoder_hidden": 2}},
                                                                     "rgroup": {"network": {"hidden": 2}},
                                                                     "rsteer": {"network": {"hidden": 2}}},
                  "splits": {"train_simulations": [[1, 0], [2, 1], [3, 2], [4, 3], [5, 0], [6, 1]],
                             "domain_simulations": [[7, 2], [8, 3]], "unused": [],
                             "train_window": [0, 10], "val_window": [10, 12], "future_window": [12, 14],
                             "domain_window": [0, 5]}},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = snakemake("all", "--configfile", str(tmp_path / "tiny.yaml"), "--directory", str(tmp_path),
                       "--cores", "2", "--resources", "gpu=2", cwd=ROOT,
                       env={"APPROXEQ_FAKE_GPUS": "0,1", "APPROXEQ_GPU_LOCK_DIR": str(tmp_path / "locks")})
    assert result.returncode == 0, result.stderr[-5000:]
    table = numbers_in_every_trained_cell(tmp_path / "results/tables/table4.csv", baseline_groups=1)
    assert table.loc[table["source"] == "trained here", "synthetic_data"].all()
    assert table["quick_run"].all()
    report = (tmp_path / "report.html").read_text()
    assert "SYNTHETIC DATA" in report and "QUICK RUN" in report
    study = pd.read_csv(tmp_path / "results/tables/latent_study.csv")  # the CNN at 3 placements + 6 cells
    assert len(study) == 3 + 6 and study[["acc (transformed)", "acc (clean)", "rel. error",
                                          "latent norm"]].notna().all().all()
    history = (tmp_path / "results/runs/ddmnist/D4/ours_conv_mse/seed0/history.jsonl").read_text()
    assert all("val_latent_equivariance_relative" in json.loads(line) for line in history.splitlines())
    assert "SYNTHETIC DATA" in (tmp_path / "results/tables/table4.html").read_text()
    assert "SYNTHETIC" in (tmp_path / "results/tables/table4.tex").read_text()
    assert (tmp_path / "results/logs/train/ddmnist/D4/ours/seed0.log").read_text().count("epoch") >= 2
    for number in (1, 2, 3):  # Tables 1-3: a count in every cell of every run
        table = pd.read_csv(tmp_path / f"results/tables/table{number}.csv")
        runs_only = table[~table["run"].isin(["mean", "std"])]
        assert len(runs_only) == 2
        counts = [c for c in table.columns if c.startswith(("m(", "eig "))]
        assert counts and runs_only[counts + ["algebra loss", "homomorphism error"]].notna().all().all()
    assert pd.read_csv(tmp_path / "results/tables/table3.csv")["synthetic"].all()  # CIFAR10 stand-in
    for figure in ("figure3_decoded", "figure4_eigenvalues", "figure5_tmnist"):
        assert (tmp_path / f"results/figures/{figure}.png").stat().st_size > 10_000
    smoke = pd.read_csv(tmp_path / "results/tables/table6.csv")
    ours = smoke[smoke["Source"] == "this run"]
    assert len(ours) == 9  # a number in every cell we trained, but the MLP's latent (no action on it)
    assert not ours.drop(columns="latent equivariance (rel.)").isin(["–"]).any().any()
    assert ours.set_index("Model")["latent equivariance (rel.)"].eq("–").to_dict() == {
        m: m == "MLP" for m in ours["Model"]}
    assert {"E2CNN", "RPP", "MLP", "Lift", "RGroup", "RSteer"} <= set(ours["Model"])
    for figure in ("figure2_smoke", "figure7_velocity_rotation"):
        assert (tmp_path / f"results/figures/{figure}.png").stat().st_size > 10_000
    medmnist = pd.read_csv(tmp_path / "results/tables/table5.csv")
    ours = medmnist[medmnist["Source"] == "this run"]
    assert len(ours) == 3 and not ours.isin(["–"]).any().any() and medmnist["synthetic"].all()
    assert "SYNTHETIC" in (tmp_path / "results/tables/table5.html").read_text()
    assert pd.read_csv(tmp_path / "results/tables/table5_details.csv")["synthetic"].all()
    assert (tmp_path / "results/figures/medmnist_rotations.png").stat().st_size > 10_000
    compile_tables(sorted((tmp_path / "results/tables").glob("*.tex")), tmp_path / "latex")
    card = pd.read_csv(tmp_path / "results/tables/scorecard.csv")  # quick: nothing is comparable
    assert set(card["verdict"]) == {scorecard.QUICK, scorecard.NOT_RUN}
    trained = card[card["verdict"] == scorecard.QUICK]
    assert sorted(trained["table"].value_counts().items()) == [(1, 2), (2, 3), (3, 4), (4, 9), (5, 9), (6, 18)]
    assert trained[["ours_mean", "paper_mean", "delta", "delta_sigma"]].notna().all().all()
    runs = [json.loads(p.read_text()) for p in (tmp_path / "results/runs").rglob("train.json")]
    assert len(runs) == 9 + 5 + 6 + 9 + 9  # DDMNIST, latent study variants, Section 4, SMOKE, MedMNIST3D
    by_gpu = {}
    for run in runs:
        by_gpu.setdefault(run["device"], []).append((run["started_at"], run["finished_at"]))
    assert set(by_gpu) <= {"cuda:GPU0 (lock)", "cuda:GPU1 (lock)"}, by_gpu
    for intervals in by_gpu.values():
        intervals.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(intervals, intervals[1:]))


@pytest.mark.slow
def test_quick_profile_end_to_end(tmp_path):
    """The documented quick run (snakemake --profile profiles/quick), in a scratch directory."""
    # the quick run also trains the escnn baselines (DDMNIST on D1 only, SMOKE at hidden 2)
    result = snakemake("--profile", str(ROOT / "profiles/quick"), "--directory", str(tmp_path),
                       cwd=ROOT, timeout=2400)
    assert result.returncode == 0, result.stderr[-5000:]
    numbers_in_every_trained_cell(tmp_path / "results/quick/tables/table4.csv", baseline_groups=1)
    report = (tmp_path / "reports/report_quick.html").read_text()
    for section in ("Scorecard", "Table 4", "Latent study", "Figure 6", "Provenance", "Table 1", "Table 2", "Table 3", "Table 5", "Table 6",
                    "Figure 2", "Figure 3",
                    "Figure 4", "Figure 5", "Figure 7"):
        assert section in report, section
    assert "QUICK RUN" in report
    card = pd.read_csv(tmp_path / "results/quick/tables/scorecard.csv")
    chromium = browser.find_chromium()
    if chromium:  # the reader's view; the tiny hand-made report's test says so where it is skipped
        browser.check_report(chromium, tmp_path / "reports/report_quick.html", tmp_path, len(card))
        browser.screenshot(chromium, tmp_path / "reports/report_quick.html",
                           ROOT / "results/browser/report_quick_first_screen.png")
    medmnist = pd.read_csv(tmp_path / "results/quick/tables/table5.csv")
    assert not medmnist[medmnist["Source"] == "this run"].isin(["–"]).any().any()
    fonts = json.loads((tmp_path / "results/quick/data/tmnist.npz.json").read_text())
    if not fonts.get("synthetic"):  # the real fonts (CI reaches npm) render to the pinned glyphs
        assert fonts["glyphs_match"], fonts["glyphs_sha256"]
    mnist = load_mnist(tmp_path / "resources/quick/mnist")
    if not mnist["synthetic"]:  # real MNIST (CI reaches npm): the sanity figures of protocols.md
        assert abs(mnist["train_images"].mean() - 33.318) < 1e-3
        assert np.bincount(mnist["train_labels"]).tolist() == [
            5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


def test_logs_live_in_the_results_folder(tmp_path):
    """Two configurations with different `results:` folders never share a log (run_name alone
    used to decide, and a log was truncated when its job ran again)."""
    result = snakemake("-n", "--directory", str(tmp_path), "other/run1/runs/ddmnist/C4/cnn/seed0/model.pt",
                       "--config", "results=other/run1", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "log: other/run1/logs/train/ddmnist/C4/cnn/seed0.log" in result.stdout
    assert "log: other/run1/logs/fetch_mnist.log" in result.stdout


CRASH_CONFIG = {
    "run_name": "crash", "quick": True, "results": "results", "report": "report.html",
    "compute": {"train_threads": 1},
    "mnist": {"dir": "resources/mnist", "sources": [
        {"kind": "synthetic", "n_train": 600, "n_test": 200, "seed": 0}]},
    "ddmnist": {"groups": ["C4"], "seeds": [0], "per_class": {"train": 2, "val": 1, "test": 1},
                "artefacts": {"C4": True}, "latent_study": {"groups": ["C4"], "seeds": [0]},
                "training": {"batch_size": 50, "epochs": 4, "patience": 4}},
}
CRASH_RUN = "results/runs/ddmnist/C4/cnn/seed0"
TIMINGS = ("train_seconds",)


def run_outputs(run_dir: Path) -> tuple[dict, dict]:
    import torch
    model = torch.load(run_dir / "model.pt", weights_only=True)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return model, {k: v for k, v in metrics.items() if k not in TIMINGS}


def assert_same_run(a: tuple[dict, dict], b: tuple[dict, dict]) -> None:
    import torch
    assert a[0].keys() == b[0].keys()
    assert all(torch.equal(a[0][k], b[0][k]) for k in a[0])
    assert a[1] == b[1]


def last_attempt(log: Path) -> str:
    from approxeq.logs import ATTEMPT_HEADER
    return log.read_text().rsplit(ATTEMPT_HEADER, 1)[-1]


@pytest.mark.slow
def test_killed_training_resumes_and_finished_training_is_reused(tmp_path):
    """Through Snakemake: (1) an uninterrupted tiny run; (2) its outputs removed, the checkpoint of
    the finished training kept (an orphan that finished after Snakemake was killed): the rerun
    reuses it and trains nothing; (3) the run trained again and its trainer SIGKILLed after the
    first checkpoint: the rerun resumes, and model.pt (byte for byte) and the metrics equal (1)'s.
    The training log keeps every attempt."""
    import signal
    import time

    import torch

    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(CRASH_CONFIG))
    options = ("--configfile", str(tmp_path / "crash.yaml"), "--directory", str(tmp_path), "--cores", "1")
    run_dir, log = tmp_path / CRASH_RUN, tmp_path / "results/logs/train/ddmnist/C4/cnn/seed0.log"

    result = snakemake(f"{CRASH_RUN}/metrics.json", *options, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    straight, straight_bytes = run_outputs(run_dir), (run_dir / "model.pt").read_bytes()
    assert "epoch   4/4" in last_attempt(log)

    for name in ("model.pt", "train.json", "history.jsonl"):
        (run_dir / name).unlink()
    result = snakemake(f"{CRASH_RUN}/model.pt", *options, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    attempt = last_attempt(log)
    assert "reusing the finished" in attempt and "epoch   1/4" not in attempt, attempt
    assert (run_dir / "model.pt").read_bytes() == straight_bytes

    for path in run_dir.iterdir():
        path.unlink()
    proc = subprocess.Popen([*SNAKEMAKE, f"{CRASH_RUN}/model.pt", *options], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "APPROXEQ_FAKE_GPUS": ""})
    try:
        deadline = time.monotonic() + 120
        while not (run_dir / "checkpoint.pt").exists():
            assert proc.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
            time.sleep(0.005)
        pid = int(re.match(r"PID (\d+) ", (run_dir / ".train.lock").read_text())[1])
        os.kill(pid, signal.SIGKILL)
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
        proc.wait()
    epoch = torch.load(run_dir / "checkpoint.pt", weights_only=True)["state"]["epoch"]
    assert 1 <= epoch < 4, f"the kill came too late (after epoch {epoch})"
    assert not (run_dir / "model.pt").exists()

    result = snakemake(f"{CRASH_RUN}/metrics.json", *options, "--rerun-incomplete", cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    assert f"resumed from {CRASH_RUN}/checkpoint.pt after epoch {epoch}" in last_attempt(log)
    assert_same_run(run_outputs(run_dir), straight)
    assert (run_dir / "model.pt").read_bytes() == straight_bytes
    assert log.read_text().count("===== attempt started") == 4  # every attempt's log kept
