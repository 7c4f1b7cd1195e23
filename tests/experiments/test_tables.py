"""Tables refuse bad numbers: a missing, NaN or infinite metric of any run stops the table with a
message naming the run, instead of pandas averaging over the remaining seeds (or dropping our row
and leaving the paper's value alone)."""
import json
from pathlib import Path

import pandas as pd
import pytest

from approxeq.experiments import ddmnist, exploratory, smoke
from approxeq.method.summary import MetricError, collect_metrics, summarise

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "workflow" / "paper"


def ddmnist_metrics(tmp_path, accuracies):
    """metrics.json files of DDMNIST runs of (group C4, model cnn) with the given accuracies."""
    paths = []
    for seed, accuracy in enumerate(accuracies):
        path = tmp_path / f"runs/ddmnist/C4/cnn/seed{seed}/metrics.json"
        path.parent.mkdir(parents=True)
        record = {"experiment": "ddmnist", "group": "C4", "model": "cnn", "seed": seed,
                  "test_accuracy": accuracy, "test_clean_accuracy": 0.5, "parameters": 30000,
                  "synthetic": False, "train_seconds": 1.0}
        if accuracy == "missing":
            del record["test_accuracy"]
        path.write_text(json.dumps(record))  # json writes NaN / Infinity as Python reads them back
        paths.append(path)
    return paths


def test_good_runs_are_summarised(tmp_path):
    runs = collect_metrics(ddmnist_metrics(tmp_path, [0.5, 0.7, 0.6]))
    summary = summarise(runs, "test_accuracy")
    assert summary["mean"].tolist() == pytest.approx([0.6]) and summary["seeds"].tolist() == [3]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "missing", None, "0.5"])
def test_aggregation_refuses_a_bad_metric_naming_the_run(tmp_path, bad):
    paths = ddmnist_metrics(tmp_path, [0.5, bad, 0.6])
    with pytest.raises(MetricError, match=r"seed1/metrics.json: .*ddmnist/C4/cnn/seed1: "
                                          r"(no test_accuracy|test_accuracy = )"):
        collect_metrics(paths)


def test_summary_refuses_nan_for_one_seed_and_for_all_seeds(tmp_path):
    """What reached Table 4 before: the mean over the other seeds ("seeds 2"), or no row of ours."""
    runs = collect_metrics(ddmnist_metrics(tmp_path, [0.5, 0.7, 0.6]))
    one = runs.assign(test_accuracy=[0.5, float("nan"), 0.6])
    with pytest.raises(MetricError, match=r"ddmnist/C4/cnn/seed1: test_accuracy = nan"):
        summarise(one, "test_accuracy")
    every = runs.assign(test_accuracy=float("nan"))
    with pytest.raises(MetricError, match=r"seed0: test_accuracy = nan; .*seed1: .*; .*seed2: "):
        summarise(every, "test_accuracy")
    with pytest.raises(MetricError, match="no test_accuracy"):
        summarise(runs.drop(columns=["test_accuracy"]), "test_accuracy")


def test_a_metric_missing_from_one_seed_is_refused(tmp_path):
    """Every test metric that one run of an experiment has, every run of it must have."""
    paths = ddmnist_metrics(tmp_path, [0.5, 0.7])
    record = json.loads(paths[1].read_text())
    del record["test_clean_accuracy"]
    paths[1].write_text(json.dumps(record))
    with pytest.raises(MetricError, match=r"seed1: no test_clean_accuracy"):
        collect_metrics(paths)


def test_table6_refuses_a_non_finite_rmse():
    row = {"experiment": "smoke", "group": "C4", "model": "cnn", "seed": 0, "parameters": 250000,
           "latent_equivariance_relative": 0.1, "future_rmse_h6": 0.8, "domain_rmse_h6": 0.6}
    runs = pd.DataFrame([row, {**row, "seed": 1, "domain_rmse_h6": float("inf")}])
    paper = pd.read_csv(PAPER / "table6.csv")
    with pytest.raises(MetricError, match=r"smoke/C4/cnn/seed1: domain_rmse_h6 = inf"):
        smoke.paper_table(runs, paper, {"cnn": "CNN"}, [6], 6)
    assert len(smoke.paper_table(runs.iloc[:1], paper, {"cnn": "CNN"}, [6], 6))


def test_table6_shows_no_latent_equivariance_for_a_model_without_a_latent_action():
    """The MLP's latent carries no C4 action: its runs have no latent metric ("–"); a model that
    has it in one run must have it in every run."""
    row = {"experiment": "smoke", "group": "C4", "model": "cnn", "seed": 0, "parameters": 250000,
           "latent_equivariance_relative": 0.1, "future_rmse_h6": 0.8, "domain_rmse_h6": 0.6}
    mlp = {**row, "model": "mlp", "latent_equivariance_relative": float("nan")}
    paper = pd.read_csv(PAPER / "table6.csv")
    table = smoke.paper_table(pd.DataFrame([row, mlp]), paper, {"cnn": "CNN", "mlp": "MLP"}, [6], 6)
    ours = table[table["Source"] == "this run"].set_index("Model")["latent equivariance (rel.)"]
    assert ours.to_dict() == {"CNN": "0.100", "MLP": "–"}
    with pytest.raises(MetricError, match=r"smoke/C4/cnn/seed1: latent_equivariance_relative"):
        smoke.paper_table(pd.DataFrame([row, {**row, "seed": 1, "latent_equivariance_relative": float("nan")}]),
                    paper, {"cnn": "CNN"}, [6], 6)


def test_exploratory_tables_refuse_a_non_finite_loss():
    metrics = {"experiment": "tmnist", "group": "C2", "model": "learned", "seed": 0,
               "test_reconstruction_mse": 0.01, "test_algebra": float("nan"), "test_equivariance_in": 0.1,
               "test_equivariance_out": 0.1, "input_action_homomorphism_error_max": 0.0}
    with pytest.raises(MetricError, match=r"tmnist/C2/learned/seed0: test_algebra = nan"):
        exploratory.results_table([metrics], [{}], pd.read_csv(PAPER / "table1.csv"))


def test_latex_tables_compile(tmp_path):
    """The .tex of a table with what broke pdflatex before (underscores, χ, →, ≅, –, ‖, many
    columns, seeds as floats) compiles with booktabs; integers print as integers."""
    from latex import compile_tables

    from approxeq.report.reporting import latex_table, write_table

    table = pd.DataFrame({"model_name": ["ours_bn_elu", "cnn"], "seed": [0.0, 1.0],
                          "m(χ_1)": [3.0, 4.5], "loss (X→Z)": [5e-6, 0.25], "group": ["D3 ≅ S3", "C4"],
                          "‖E(g·x) − ρ(g)E(x)‖": ["1.41 (–)", "0.30 (0.01)"], "100% & #$": ["{a}", "~^\\"],
                          "setting": ["paper's\u00a0literal", "λ\u00a0=\u00a00"]})
    tex = latex_table(table, "Caption with x_1, λ = 0.5 and 50% – QUICK RUN", "tab:test")
    assert "paper's~literal" in tex and "?" not in tex  # a no-break space is ~, no character unmapped
    assert "\\toprule" in tex and "0.000000" not in tex and " & 0 & " in tex and "5.0e-06" in tex
    out = {"csv": tmp_path / "t.csv", "tex": tmp_path / "t.tex", "html": tmp_path / "t.html"}
    write_table(out, table, "Table X: a_b", ["QUICK RUN: small.", "A note with χ."],
                Path(__file__).resolve().parents[2] / "reports/templates", "tab:x")
    assert "QUICK RUN" in out["tex"].read_text() and 'class="mark"' in out["html"].read_text()
    assert (compile_tables([out["tex"]], tmp_path / "latex")).stat().st_size > 1000


def test_not_trained_notes_name_each_row_as_its_table_does():
    from approxeq.report.reporting import not_trained_notes

    table4 = pd.DataFrame(dict(model=["pscnn"] * 3 + ["ours"] * 3, label=["PSCNN"] * 3 + ["Ours"] * 3,
                               group=["C4", "D1", "D4"] * 2))
    assert not_trained_notes(table4, {"pscnn": "no code"}) == ["PSCNN, imported from the paper: no code"]
    table5 = pd.DataFrame(dict(model=["scnn_so3", "cnn"], label=["SCNN", "CNN"], group=["SO(3)", "N/A"]))
    assert not_trained_notes(table5, {"scnn_so3": "not ported", "cnn": "x"}) == [
        "SCNN (SO(3)), imported from the paper: not ported", "CNN, imported from the paper: x"]
    table6 = pd.DataFrame(dict(model=["lift"], label=["Lift"]))
    assert not_trained_notes(table6, {}) == []


def test_table4_built_from_a_synthetic_mnist_says_so_everywhere(tmp_path):
    """Where MNIST was unreachable, Table 4 stands on a synthetic stand-in: the CSV column, the HTML
    and the LaTeX all say SYNTHETIC DATA (the end-to-end run in CI uses real MNIST)."""
    import runpy

    runs = collect_metrics(ddmnist_metrics(tmp_path, [0.5, 0.7]))
    runs["synthetic"] = True
    runs.to_csv(tmp_path / "runs.csv", index=False)
    out = {kind: str(tmp_path / f"table4.{kind}") for kind in ("csv", "tex", "html")}
    table4 = runpy.run_path(str(ROOT / "workflow/scripts/table4.py"))
    table4["main"](tmp_path / "runs.csv", PAPER / "table4.csv", ["C4", "D1", "D4"], {"cnn": "CNN"},
                   {"pscnn": "no public code"}, False, str(ROOT / "reports/templates"), out,
                   str(tmp_path / "table4.log"))
    table = pd.read_csv(out["csv"])
    assert table.loc[table["source"] == "trained here", "synthetic_data"].all()
    assert not table["quick_run"].any()
    assert "SYNTHETIC DATA" in Path(out["html"]).read_text()
    assert "SYNTHETIC" in Path(out["tex"]).read_text()
    assert "PSCNN, imported from the paper: no public code" in Path(out["html"]).read_text()


def write_metrics(tmp_path, records):
    paths = []
    for i, extra in enumerate(records):
        record = {"experiment": "ddmnist", "group": "D4", "model": "cnn", "seed": i, "test_accuracy": 0.5,
                  "test_clean_accuracy": 0.5, "parameters": 30000, "synthetic": False, "train_seconds": 1.0,
                  "chance_accuracy": 0.01, "test_samples": 5000, **extra}
        path = tmp_path / f"runs/seed{i}/metrics.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))
        paths.append(path)
    return paths


@pytest.mark.parametrize("key, good, value, allowed", [
    ("test_accuracy", 0.5, 7.0, "in [0, 1]"), ("test_accuracy", 0.5, -3, "in [0, 1]"),
    ("test_auc", 0.9, 1.2, "in [0, 1]"), ("future_rmse_h6", 0.3, -0.1, "≥ 0"),
    ("latent_equivariance_relative", 0.2, -1e-3, "≥ 0"), ("parameters", 30000, 3.5, "a non-negative integer"),
    ("epochs_run", 4, -1, "a non-negative integer"),
])
def test_a_metric_outside_its_meaning_is_refused_naming_file_key_and_range(tmp_path, key, good, value, allowed):
    paths = write_metrics(tmp_path, [{key: good}, {key: value}])
    with pytest.raises(MetricError) as caught:
        collect_metrics(paths)
    message = str(caught.value)
    assert str(paths[1]) in message and f"{key} = {value!r} (allowed: {allowed})" in message


def test_chance_threshold_is_three_standard_errors_or_half_of_chance():
    from approxeq.method.summary import chance_threshold
    assert chance_threshold(0.01, 5000) == pytest.approx(0.015)  # ½ × 1/100 dominates
    assert chance_threshold(0.5, 500) == pytest.approx(0.75)
    assert chance_threshold(0.01, 300) == pytest.approx(0.01 + 3 * (0.01 * 0.99 / 300) ** 0.5)


def test_runs_at_chance_are_flagged_in_table4_and_the_scorecard_not_averaged_away(tmp_path):
    """The probe of the checkpoint-identity issue: a run at lr 1.0 ended at 0.015 (chance 0.01)
    and entered the tables unflagged."""
    import runpy

    from approxeq.report import scorecard as sc

    runs = collect_metrics(write_metrics(tmp_path, [{"test_accuracy": 0.015}, {"test_accuracy": 0.8}]))
    assert runs["at_chance"].tolist() == [True, False]
    runs.to_csv(tmp_path / "runs.csv", index=False)
    out = {kind: str(tmp_path / f"table4.{kind}") for kind in ("csv", "tex", "html")}
    runpy.run_path(str(ROOT / "workflow/scripts/table4.py"))["main"](
        tmp_path / "runs.csv", PAPER / "table4.csv", ["C4", "D1", "D4"], {"cnn": "CNN"}, {}, False,
        str(ROOT / "reports/templates"), out, str(tmp_path / "table4.log"))
    html = Path(out["html"]).read_text()
    assert "0.408 (0.555) ‡" in html and "‡ at chance level: 1 of 2 runs" in html
    assert pd.read_csv(out["csv"]).set_index(["model", "group"]).loc[("cnn", "D4"), "at_chance"] == 1
    card = ddmnist.scorecard_rows(pd.read_csv(tmp_path / "runs.csv"), pd.read_csv(PAPER / "table4.csv"))
    row = next(r for r in card if r["model"] == "cnn" and r["column"] == "D4")
    assert row["at_chance_runs"] == 1
    from approxeq.report.page import scorecard_note
    assert scorecard_note(row) == "‡ 1 of 2 runs at chance level"
    assert row["ours_mean"] == pytest.approx(0.4075)  # kept in the mean, flagged beside it
    # the report's compact Table 4 marks the cell and explains the mark once
    from approxeq.report.page import comparison
    view = comparison(sc.verdicts(card, quick=False), 4)
    cnn = next(r for r in view["rows"] if r["label"] == "CNN")
    d4 = cnn["cells"][view["columns"].index("D4")]
    assert d4["ours"].endswith(" ‡")
    assert any(n.startswith("‡ at chance level: 1 of 2 runs in the marked cells") for n in view["notes"])


def test_the_command_line_summary_finds_the_runs_under_a_folder(tmp_path, capsys):
    from approxeq.method.summary import main
    ddmnist_metrics(tmp_path, [0.5, 0.7, 0.6])
    summary = main([str(tmp_path / "runs")])
    printed = capsys.readouterr().out
    assert summary["seeds"].tolist() == [3] and "0.600 (0.100)" in printed and "0:0.500 1:0.700 2:0.600" in printed
    with pytest.raises(SystemExit, match=r"no finished run \(metrics.json\) under .*nothing"):
        main([str(tmp_path / "nothing")])
