"""The Snakemake workflow: dry-runs of the full configuration, single targets, and end-to-end runs."""
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import browser
import numpy as np
import pandas as pd
import pytest
import yaml
from latex import compile_tables

from approxeq.data.mnist import load_mnist
from approxeq.report import scorecard

ROOT = Path(__file__).resolve().parents[2]
QUICK_STUDY_RUNS = 1 + 2  # the CNN and ours at 2 cells, conv/mse and bn_elu/normalised (config.quick.yaml)
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
    # + the latent study's D4 seed-0 variants of ours (3 placements × 2 penalties, one is `ours`);
    # the paper configuration has no classification data set of a user's
    medmnist_models = len(yaml.safe_load((ROOT / "config.yaml").read_text())["medmnist"]["models"])
    assert counts["train"] == 3 * 6 * 5 + 3 * 5 + 9 * 5 + 3 * medmnist_models * 5 + 5  # DDMNIST: 6 models
    assert "evaluate" not in counts  # a training job evaluates its run into metrics.json
    assert counts["fetch_medmnist"] == 3
    assert counts["decompose"] == 15  # 5 runs for each of the three exploratory experiments
    assert counts["build_ddmnist"] == 3
    assert counts["table_exploratory"] == 3
    for rule in ("fetch_mnist", "fetch_fonts", "build_tmnist", "fetch_cifar10", "aggregate_ddmnist",
                 "aggregate_exploratory", "table4", "figure_ddmnist_examples", "figure_ddmnist_training",
                 "figure3_decoded", "figure4_eigenvalues", "figure5_tmnist", "simulate_smoke", "table6",
                 "figure_smoke", "table5", "figure_medmnist", "aggregate_latent_study",
                 "latent_study_table", "figure_latent_study", "table_classification", "report", "all"):
        assert counts[rule] == 1, rule
    for model in ("cnn", "cnn_aug", "ours", "e2cnn", "rpp", "mlp", "lift", "rgroup", "rsteer"):  # SMOKE: 9 × 5 seeds
        for seed in range(5):
            assert f"results/runs/smoke/C4/{model}/seed{seed}/metrics.json" in result.stdout
    assert "results/data/smoke/sim_36.npz" in result.stdout
    for flag in ("nodulemnist3d", "synapsemnist3d", "organmnist3d"):
        for model in ("cnn", "cnn_aug", "ours", "pscnn_so3", "pscnn_o3"):  # PSCNN: trained, not imported
            assert f"results/runs/{flag}/O/{model}/seed4/metrics.json" in result.stdout
    for experiment, group in (("tmnist", "C2"), ("mnist_d3", "D3"), ("cifar10", "C4")):
        for seed in range(5):
            assert f"results/runs/{experiment}/{group}/learned/seed{seed}/decomposition.json" in result.stdout
    for group in ("C4", "D1", "D4"):
        for model in ("cnn", "ours", "scnn", "rpp", "restriction", "pscnn"):
            for seed in range(5):
                assert f"results/runs/ddmnist/{group}/{model}/seed{seed}/model.pt" in result.stdout


def test_single_table_target_builds_only_what_it_needs(tmp_path):
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table4.csv", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    counts = job_counts(result.stdout)
    assert set(counts) == {"fetch_mnist", "build_ddmnist", "train", "aggregate_ddmnist",
                           "table4", "total"}
    result = snakemake("-n", "--directory", str(tmp_path), "results/figures/ddmnist_examples.png",
                       cwd=ROOT)
    assert set(job_counts(result.stdout)) == {"fetch_mnist", "build_ddmnist",
                                              "figure_ddmnist_examples", "total"}
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table2.csv", cwd=ROOT)
    assert set(job_counts(result.stdout)) == {"fetch_mnist", "train", "decompose",
                                              "table_exploratory", "total"}
    assert job_counts(result.stdout)["train"] == 5
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table5.csv", cwd=ROOT)
    runs = 3 * len(yaml.safe_load((ROOT / "config.yaml").read_text())["medmnist"]["models"]) * 5
    assert job_counts(result.stdout) == {"fetch_medmnist": 3, "train": runs, "table5": 1, "total": runs + 4}
    # Figure 4 shows one run per exploratory experiment and trains nothing else
    result = snakemake("-n", "--directory", str(tmp_path), "results/figures/figure4_eigenvalues.png", cwd=ROOT)
    assert job_counts(result.stdout)["train"] == 3


def test_per_seed_data_draw_builds_one_ddmnist_per_group_and_seed(tmp_path):
    """ddmnist.data_draw per_seed: each seed trains and is tested on its own draw (the authors'
    pl.seed_everything(seed) before the draw); shared (the default): one file per group."""
    overlay = tmp_path / "per_seed.yaml"
    overlay.write_text("ddmnist:\n  data_draw: per_seed\n")
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/table4.csv",
                       "--configfile", str(ROOT / "config.yaml"), str(overlay), cwd=ROOT)
    assert result.returncode == 0, result.stderr + result.stdout
    assert job_counts(result.stdout)["build_ddmnist"] == 3 * 5
    for group in ("C4", "D1", "D4"):
        for seed in range(5):
            job = re.search(rf"input: (\S+)\n\s+output: results/runs/ddmnist/{group}/cnn/seed{seed}/model\.pt",
                            result.stdout)
            assert job and job[1] == f"results/data/ddmnist/{group}_seed{seed}.npz", (group, seed)


D2_ONLY = """\
ddmnist:
  groups: [D2]
  artefacts: {D2: false}
  models:
""" + "".join(f"    {m}: {{label: {m}, weights: {{equivariance: {{D2: {lam}}}}}, lr: {{D2: 1.0e-3}}, groups: [D2]}}\n"
              for m, lam in (("cnn", 0.0), ("ours", 1.0), ("scnn", 0.0), ("rpp", 0.0), ("restriction", 0.0),
                             ("pscnn", 0.0))) + """\
  latent_study: {model: ours, baseline: cnn, groups: [D2], seeds: [0], cells: [{placement: conv, penalty: mse}]}
"""


def test_any_subgroup_of_d4_is_a_ddmnist_group_by_configuration_alone(tmp_path):
    """D2, not one of the paper's groups: every model, baselines included, trains by configuration
    (the escnn gspace and trivial subgroup come from the group's name)."""
    overlay = tmp_path / "d2.yaml"
    overlay.write_text(D2_ONLY)
    result = snakemake("-n", "--directory", str(tmp_path), "results/quick/tables/table4.csv", "--configfile",
                       str(ROOT / "config.yaml"), str(ROOT / "config.quick.yaml"), str(overlay), cwd=ROOT)
    assert result.returncode == 0, result.stderr + result.stdout
    trained = set(re.findall(r"results/quick/runs/ddmnist/(\w+)/(\w+)/seed\d+/model\.pt", result.stdout))
    assert trained == {("D2", m) for m in ("cnn", "ours", "scnn", "rpp", "restriction", "pscnn")}


def test_latent_study_target_trains_only_its_runs(tmp_path):
    """The study is its own target: D4 seed 0 of the CNN and of ours at every placement × penalty,
    the cell equal to ours' own configuration being the Table 4 run (not trained twice)."""
    result = snakemake("-n", "--directory", str(tmp_path), "results/tables/latent_study.csv", cwd=ROOT)
    assert result.returncode == 0, result.stderr + result.stdout
    counts = job_counts(result.stdout)
    assert set(counts) == {"fetch_mnist", "build_ddmnist", "train", "aggregate_latent_study",
                           "latent_study_table", "total"}
    assert counts["train"] == 1 + 6
    trained = set(re.findall(r"results/runs/ddmnist/D4/(\w+)/seed0/model\.pt", result.stdout))
    assert "cnn" in trained and "ours" in trained and len(trained) == 7
    quick = snakemake("-n", "--directory", str(tmp_path), "results/quick/tables/latent_study.csv",
                      "--configfile", str(ROOT / "config.quick.yaml"), cwd=ROOT)
    assert quick.returncode == 0, quick.stderr + quick.stdout
    assert job_counts(quick.stdout)["train"] == QUICK_STUDY_RUNS


@pytest.mark.parametrize("text, expected", [
    ("ddmnist:\n  training: {epochz: 3}\n",
     "ddmnist.training: unknown key(s) 'epochz'; allowed here: batch_size, epochs, patience, weight_decay"),
    ("mnist:\n  sources: [{kind: local, path: no/such/mnist}]\n", "mnist.sources[0].path"),
    ("ddmnist:\n  models: {cnn: {label: CNN, lr: {C4: .inf, D1: 1.0e-3, D4: 5.0e-4}, "
     "weights: {equivariance: {C4: 0, D1: 0, D4: 0}}}}\n", "ddmnist.models.cnn.lr.C4"),
    ("classification:\n  datasets: {mine: {npz: mine.npz, domain: image, group: C3, label: Mine}}\n",
     "classification.datasets.mine.group: 'C3' does not act exactly on square images"),
])
def test_bad_config_stops_before_any_job(tmp_path, text, expected):
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    result = snakemake("-n", "--configfile", str(bad), "--directory", str(tmp_path), cwd=ROOT)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output
    assert "Job stats" not in result.stdout
    assert len(output.splitlines()) < 15 and "Failed validating" not in output, output  # one screen


def test_lint_is_clean():
    result = snakemake("--lint", cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def numbers_in_every_trained_cell(table_csv: Path, baseline_groups: int = 3) -> pd.DataFrame:
    """Table 4 has a number in every cell trained here: CNN and ours on 3 groups, the SCNN, RPP,
    Restriction and PSCNN on `baseline_groups` of them (the quick configuration: D1 only; the tiny
    one: C4)."""
    table = pd.read_csv(table_csv)
    ours = table[table["source"] == "trained here"]
    assert len(ours) == 2 * 3 + 4 * baseline_groups
    assert ours[["ours_mean", "ours_std", "paper_mean", "difference", "ours_params_m"]].notna().all().all()
    assert ((ours["ours_mean"] >= 0) & (ours["ours_mean"] <= 1)).all()
    assert set(ours["model"]) == {"cnn", "ours", "scnn", "rpp", "restriction", "pscnn"}
    # the rest is imported from the paper: the baselines' other groups
    assert (table["source"] != "trained here").sum() == 4 * (3 - baseline_groups)
    return table


# ---------------------------------------------------------------------------------------------
# The end-to-end tests share one run of the documented quick profile (`snakemake --profile
# profiles/quick`) in a scratch directory, in two phases: first with escnn hidden (a user's
# environment without the baselines extra: the default targets must still build), then with it
# (only the baselines and what reads them are built on top). Both phases place the training jobs on
# two simulated GPUs.
# ---------------------------------------------------------------------------------------------

ESCNN_STUB = 'raise ImportError("escnn is hidden by the test: an environment without the extra")\n'
ESCNN_MODELS = {"ddmnist": {"scnn": "SCNN", "rpp": "RPP", "restriction": "Restriction", "pscnn": "PSCNN"},
                "smoke": {"e2cnn": "E2CNN", "rpp": "RPP", "lift": "Lift", "rsteer": "RSteer"},
                "medmnist": {"scnn_so3": "SCNN (SO(3))", "scnn_o3": "SCNN (O(3))", "rpp_so3": "RPP (SO(3))",
                             "rpp_o3": "RPP (O(3))", "pscnn_so3": "PSCNN (SO(3))", "pscnn_o3": "PSCNN (O(3))"}}
NOT_BUILDABLE_WARNING = "Not trained in this environment"
INSTALL_COMMAND = "envs/install_baselines.sh"
PHASE_ONE_OUTPUTS = ("results/quick/tables/table4.csv", "results/quick/tables/table4.html",
                     "results/quick/tables/table6.csv", "results/quick/tables/table6.html",
                     "results/quick/tables/scorecard.csv", "reports/report_quick.html")


def escnn_hidden(folder: Path) -> dict:
    """An environment in which `import escnn` fails (a stub package first on PYTHONPATH)."""
    (folder / "escnn").mkdir(parents=True, exist_ok=True)
    (folder / "escnn" / "__init__.py").write_text(ESCNN_STUB)
    return {"PYTHONPATH": os.pathsep.join(filter(None, (str(folder), os.environ.get("PYTHONPATH"))))}


@dataclass
class QuickRun:
    root: Path            # the run's directory (--directory)
    without_escnn: subprocess.CompletedProcess
    with_escnn: subprocess.CompletedProcess
    phase_one: Path       # PHASE_ONE_OUTPUTS as the escnn-less phase left them

    def path(self, relative: str) -> Path:
        return self.root / relative


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> QuickRun:
    root = tmp_path_factory.mktemp("quick_run")
    options = ("--profile", str(ROOT / "profiles/quick"), "--directory", str(root), "--resources", "gpu=2")
    gpus = {"APPROXEQ_FAKE_GPUS": "0,1", "APPROXEQ_GPU_LOCK_DIR": str(root / "locks")}
    without = snakemake(*options, cwd=ROOT, timeout=2400, env={**gpus, **escnn_hidden(root / "hidden")})
    if without.returncode:
        pytest.fail("quick run without escnn failed:\n" + without.stderr[-5000:])
    phase_one = root / "phase_one"
    for relative in PHASE_ONE_OUTPUTS:
        (phase_one / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / relative, phase_one / relative)
    with_escnn = snakemake(*options, cwd=ROOT, timeout=2400, env=gpus)
    if with_escnn.returncode:
        pytest.fail("quick run with escnn failed:\n" + with_escnn.stderr[-5000:])
    return QuickRun(root, without, with_escnn, phase_one)


@pytest.mark.slow
def test_without_escnn_every_default_target_builds_and_says_why_the_baselines_are_missing(quick_run):
    log = quick_run.without_escnn.stderr  # Snakemake's log: the warning, then the jobs
    assert (quick_run.without_escnn.stdout + log).count(NOT_BUILDABLE_WARNING) == 1, log[:3000]
    assert log.index(NOT_BUILDABLE_WARNING) < log.index("Job stats")  # said once, at the start
    phase = quick_run.phase_one / "results/quick/tables"
    table4 = pd.read_csv(phase / "table4.csv")
    for model, label in ESCNN_MODELS["ddmnist"].items():
        assert (table4.loc[table4["model"] == model, "source"] == "imported from paper").all(), model
        assert f"{label}, imported from the paper: not trained here: escnn" in (phase / "table4.html").read_text()
    assert INSTALL_COMMAND in (phase / "table4.html").read_text()
    assert set(table4.loc[table4["source"] == "trained here", "model"]) == {"cnn", "ours"}
    table6 = pd.read_csv(phase / "table6.csv")
    assert {"E2CNN", "RPP", "Lift", "RSteer"}.isdisjoint(table6.loc[table6["Source"] == "this run", "Model"])
    assert {"MLP", "RGroup"} <= set(table6.loc[table6["Source"] == "this run", "Model"])  # plain PyTorch
    html6 = (phase / "table6.html").read_text()
    assert all(f"{label}, imported from the paper: not trained here" in html6 for label in ("E2CNN", "Lift"))
    card = pd.read_csv(phase / "scorecard.csv")
    for table, experiment in ((4, "ddmnist"), (5, "medmnist"), (6, "smoke")):
        missing = card[(card["table"] == table) & card["model"].isin(list(ESCNN_MODELS[experiment]))]
        assert len(missing) and (missing["verdict"] == scorecard.NOT_RUN).all(), table
        assert missing["note"].str.contains(INSTALL_COMMAND, regex=False).all(), missing["note"].tolist()
    assert "not trained here" in (quick_run.phase_one / "reports/report_quick.html").read_text()
    # the runs that need escnn were not started at all in this phase
    escnn_runs = ([f"ddmnist/D1/{m}/" for m in ESCNN_MODELS["ddmnist"]] + [f"smoke/C4/{m}/" for m in ESCNN_MODELS["smoke"]]
                  + [f"nodulemnist3d/O/{m}/" for m in ESCNN_MODELS["medmnist"]])
    assert not any(run in log for run in escnn_runs)


def test_without_escnn_asking_for_a_baseline_run_by_name_stops_with_the_install_command(tmp_path):
    result = snakemake("-n", "--profile", str(ROOT / "profiles/quick"), "--directory", str(tmp_path),
                       "results/quick/runs/ddmnist/D1/scnn/seed0/metrics.json", cwd=ROOT,
                       env=escnn_hidden(tmp_path / "hidden"))
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ddmnist.models.scnn (network 'ddmnist_scnn') cannot be built" in output
    assert INSTALL_COMMAND in output and "Job stats" not in result.stdout


@pytest.mark.slow
def test_with_escnn_the_second_phase_trains_only_the_baselines(quick_run):
    counts = job_counts(quick_run.with_escnn.stderr)  # a real run logs its job stats to stderr
    assert counts["train"] == (len(ESCNN_MODELS["ddmnist"]) + len(ESCNN_MODELS["smoke"])
                               + len(ESCNN_MODELS["medmnist"])), counts  # quick: on Nodule3D only
    # Table 5 is built again (its escnn rows join it)
    for rule in ("fetch_mnist", "build_ddmnist", "simulate_smoke", "decompose", "fetch_medmnist", "table_exploratory",
                 "table_classification"):
        assert rule not in counts, rule  # nothing the baselines do not feed is built again
    assert NOT_BUILDABLE_WARNING not in quick_run.with_escnn.stderr


@pytest.mark.slow
def test_quick_run_fills_every_table(quick_run, tmp_path):
    tables = quick_run.path("results/quick/tables")
    numbers_in_every_trained_cell(tables / "table4.csv", baseline_groups=1)
    assert pd.read_csv(tables / "table4.csv")["quick_run"].all()
    study = pd.read_csv(tables / "latent_study.csv")  # the CNN at 2 placements + 2 cells of ours
    assert len(study) == 2 + 2 and study[["acc (transformed)", "acc (clean)", "rel. error",
                                          "latent norm"]].notna().all().all()
    history = quick_run.path("results/quick/runs/ddmnist/D4/ours_conv_mse/seed0/history.jsonl").read_text()
    assert all("val_latent_equivariance_relative" in json.loads(line) for line in history.splitlines())
    log = quick_run.path("results/quick/logs/train/ddmnist/D4/ours/seed0.log").read_text()
    assert log.count("epoch") >= 2 and "test metrics" in log
    for number in (1, 2, 3):  # Tables 1-3: a count in every cell of every run
        table = pd.read_csv(tables / f"table{number}.csv")
        runs_only = table[~table["run"].isin(["mean", "std"])]
        assert len(runs_only) == 1  # exploratory.seeds: [0]
        counts = [c for c in table.columns if c.startswith(("m(", "eig "))]
        assert counts and runs_only[counts + ["algebra loss", "homomorphism error"]].notna().all().all()
    cifar10 = json.loads(quick_run.path("resources/quick/cifar10/source.json").read_text())
    assert pd.read_csv(tables / "table3.csv")["synthetic"].all() == bool(cifar10.get("synthetic"))
    smoke = pd.read_csv(tables / "table6.csv")
    ours = smoke[smoke["Source"] == "this run"]
    assert len(ours) == 9  # a number in every cell we trained, but the MLP's latent (no action on it)
    assert not ours.drop(columns="latent equivariance (rel.)").isin(["–"]).any().any()
    assert ours.set_index("Model")["latent equivariance (rel.)"].eq("–").to_dict() == {
        m: m == "MLP" for m in ours["Model"]}
    augmented = {model: json.loads(quick_run.path(f"results/quick/runs/organmnist3d/O/{model}/seed0/train.json")
                                   .read_text())["run"]["augmentation"]["per_epoch"]
                 for model in ("cnn", "cnn_aug", "ours")}
    assert augmented == {"cnn": False, "cnn_aug": True, "ours": True}  # Aug "No" trains as stored
    medmnist = pd.read_csv(tables / "table5.csv")
    ours = medmnist[medmnist["Source"] == "this run"]
    assert len(ours) == 3 + len(ESCNN_MODELS["medmnist"])
    plain = ours[ours["Model"].isin(["CNN", "Ours"])]  # the escnn models: on Nodule3D only (quick)
    assert not plain.isin(["–"]).any().any() and not ours["Nodule3D"].isin(["–"]).any()
    if medmnist["synthetic"].all():  # the download failed (always on CI machines): labelled so
        assert "SYNTHETIC" in (tables / "table5.html").read_text()
        assert pd.read_csv(tables / "table5_details.csv")["synthetic"].all()
    mine = pd.read_csv(tables / "classification.csv")  # the worked example: MNIST with C4, no code
    assert list(mine["Model"]) == ["CNN", "CNN", "Ours"] and list(mine["Aug"]) == ["No", "Yes", "Yes"]
    assert not mine.isin(["–"]).any().any() and mine["Group"].eq("C4 (images)").all()
    run = json.loads(quick_run.path("results/quick/runs/mnist_c4/C4/ours/seed0/train.json").read_text())["run"]
    assert run["kind"] == "classification" and run["augmentation"]["per_epoch"]
    compile_tables(sorted(tables.glob("*.tex")), tmp_path / "latex")
    card = pd.read_csv(tables / "scorecard.csv")  # quick: nothing is comparable
    assert set(card["verdict"]) == {scorecard.QUICK, scorecard.NOT_RUN}
    trained = card[card["verdict"] == scorecard.QUICK]
    assert sorted(trained["table"].value_counts().items()) == [(1, 2), (2, 3), (3, 4), (4, 10), (5, 15), (6, 18)]
    assert trained[["ours_mean", "paper_mean", "delta", "delta_sigma"]].notna().all().all()
    for figure in ("figure3_decoded", "figure4_eigenvalues", "figure5_tmnist", "figure2_smoke",
                   "figure7_velocity_rotation", "medmnist_rotations"):
        assert quick_run.path(f"results/quick/figures/{figure}.png").stat().st_size > 10_000, figure


@pytest.mark.slow
def test_quick_run_report_reads_well(quick_run):
    report = quick_run.path("reports/report_quick.html")
    text = report.read_text()
    for section in ("Scorecard", "Table 4", "Latent study", "Figure 6", "Provenance", "Table 1", "Table 2",
                    "Table 3", "Table 5", "Table 6", "Figure 2", "Figure 3", "Figure 4", "Figure 5", "Figure 7",
                    "Your data sets", "MNIST, C4 (worked example)"):
        assert section in text, section
    assert "QUICK RUN" in text
    card = pd.read_csv(quick_run.path("results/quick/tables/scorecard.csv"))
    chromium = browser.find_chromium()
    if chromium:  # the reader's view; the tiny hand-made report's test says so where it is skipped
        (quick_run.root / "browser").mkdir(exist_ok=True)
        browser.check_report(chromium, report, quick_run.root / "browser", len(card))
        browser.screenshot(chromium, report, ROOT / "results/browser/report_quick_first_screen.png")


@pytest.mark.slow
def test_quick_run_jobs_never_share_a_simulated_gpu(quick_run):
    runs = [json.loads(p.read_text()) for p in quick_run.path("results/quick/runs").rglob("train.json")]
    # DDMNIST 12 + 4 baselines, 1 more latent-study cell, Section 4, SMOKE, MedMNIST3D (3 data sets ×
    # 3 models, and its escnn models on Nodule3D), the classification worked example (3 models)
    assert len(runs) == 16 + 1 + 3 + 9 + 3 * 3 + len(ESCNN_MODELS["medmnist"]) + 3
    by_gpu = {}
    for run in runs:  # the device is held from the start of training to the end of evaluation
        by_gpu.setdefault(run["device"], []).append((run["started_at"], run["evaluated_at"]))
    assert set(by_gpu) == {"cuda:GPU0 (lock)", "cuda:GPU1 (lock)"}, by_gpu
    for intervals in by_gpu.values():
        intervals.sort()
        assert all(end <= next_start for (_, end), (next_start, _) in zip(intervals, intervals[1:]))
    # every job kept its freed memory for reuse (compute.keep_freed_memory, on by default)
    assert all(run["keep_freed_memory"] is True for run in runs)


@pytest.mark.slow
def test_quick_run_real_data_match_their_pinned_figures(quick_run):
    fonts = json.loads(quick_run.path("results/quick/data/tmnist.npz.json").read_text())
    if not fonts.get("synthetic"):  # the real fonts (CI reaches npm) render to the pinned glyphs
        assert fonts["glyphs_match"], fonts["glyphs_sha256"]
    mnist = load_mnist(quick_run.path("resources/quick/mnist"))
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
                "network": {"c": 2},
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
    from approxeq.runtime.logs import ATTEMPT_HEADER
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

    # The data-change probe: the same run on a rebuilt data set (more training images, same path)
    # trains again and says why; the finished checkpoint of the old data is set aside, not reused.
    more_data = {**CRASH_CONFIG, "ddmnist": {**CRASH_CONFIG["ddmnist"],
                                             "per_class": {"train": 3, "val": 1, "test": 1}}}
    (tmp_path / "crash.yaml").write_text(yaml.safe_dump(more_data))
    result = snakemake(f"{CRASH_RUN}/metrics.json", *options, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-5000:]
    attempt = last_attempt(log)
    assert "reusing the finished" not in attempt and "epoch   4/4" in attempt, attempt
    assert re.search(r"changed: data\.results/data/ddmnist/C4\.npz: [0-9a-f]{64} → [0-9a-f]{64}\); "
                     r"moved it to checkpoint\.pt\.stale", attempt), attempt
    info = json.loads((run_dir / "train.json").read_text())
    assert info["data_sha256"]["results/data/ddmnist/C4.npz"] != straight[1]["data_sha256"]["results/data/ddmnist/C4.npz"]
    assert run_outputs(run_dir)[1]["code_fingerprint"] == straight[1]["code_fingerprint"]


@pytest.mark.slow
def test_batchnorm_check_rebuilds_a_finished_run_and_reads_its_best_validation(quick_run, monkeypatch, tmp_path):
    """approxeq.report.batchnorm_check on a quick-run DDMNIST run: the best state as trained gives
    exactly the validation and test metrics the training recorded; recalibrated, metrics in [0, 1];
    --csv writes the rows it prints."""
    import pandas as pd

    from approxeq.report.batchnorm_check import main

    monkeypatch.chdir(quick_run.root)  # the run reads its data file relative to the workflow's folder
    run_dir = Path("results/quick/runs/ddmnist/D4/cnn/seed0")
    rows = {row["state"]: row for row in main([str(run_dir), "--csv", str(tmp_path / "check.csv")])}
    written = pd.read_csv(tmp_path / "check.csv")
    assert list(written["state"]) == ["best", "last"]
    expected = [rows[state]["test_recalibrated"] for state in ("best", "last")]
    assert written["test_recalibrated"].tolist() == pytest.approx(expected)
    recorded = json.loads((run_dir / "train.json").read_text())["best_val_metric"]
    assert rows["best"]["val_as_trained"] == pytest.approx(recorded, abs=1e-12)
    tested = json.loads((run_dir / "metrics.json").read_text())["test_accuracy"]
    assert rows["best"]["test_set"] == "test" and rows["best"]["test_as_trained"] == pytest.approx(tested, abs=1e-12)
    assert all(0.0 <= row[key] <= 1.0 for row in rows.values() for key in ("val_recalibrated", "test_recalibrated"))
