"""The scorecard on hand-made metrics with known values: Δ, σ, Δ/σ, verdicts and their counts."""
import math

import pandas as pd
import pytest

from approxeq.experiments import ddmnist, exploratory, medmnist, mnist_d3, smoke, tmnist
from approxeq.method.summary import MetricError
from approxeq.report import scorecard as sc
from approxeq.report.page import comparison

PAPER4 = pd.DataFrame([
    dict(model="cnn", label="CNN", group="C4", mean=0.900, std=0.003, params_m=0.03),
    dict(model="ours", label="Ours", group="C4", mean=0.915, std=0.004, params_m=0.03),
    dict(model="scnn", label="SCNN", group="C4", mean=0.484, std=0.008, params_m=0.12),
])


def ddmnist_runs(values: dict[str, list[float]], synthetic=False) -> pd.DataFrame:
    return pd.DataFrame([dict(experiment="ddmnist", group="C4", model=m, seed=s, test_accuracy=v,
                              synthetic=synthetic)
                         for m, vs in values.items() for s, v in enumerate(vs)])


def test_table4_delta_sigma_and_verdicts():
    # cnn: mean 0.904, sample std 0.004 → σ = sqrt(0.004² + 0.003²) = 0.005, Δ = +0.004 → 0.8σ, within.
    # ours: mean 0.885, std 0.003 → σ = 0.005, Δ = −0.030 → −6σ, outside. scnn: not trained → not run.
    runs = ddmnist_runs({"cnn": [0.900, 0.904, 0.908], "ours": [0.882, 0.885, 0.888]})
    card = sc.verdicts(ddmnist.scorecard_rows(runs, PAPER4), quick=False).set_index("model")
    assert card.loc["cnn", "delta"] == pytest.approx(0.004)
    assert card.loc["cnn", "sigma"] == pytest.approx(0.005)
    assert card.loc["cnn", "delta_sigma"] == pytest.approx(0.8)
    assert card.loc["cnn", "verdict"] == sc.WITHIN
    assert card.loc["ours", "delta_sigma"] == pytest.approx(-6.0)
    assert card.loc["ours", "verdict"] == sc.OUTSIDE
    assert card.loc["scnn", "verdict"] == sc.NOT_RUN and card.loc["scnn", "ours_n"] == 0
    assert math.isnan(card.loc["scnn", "delta"])
    assert sc.counts(card) == {sc.WITHIN: 1, sc.OUTSIDE: 1, sc.QUICK: 0, sc.SYNTHETIC: 0, sc.NOT_RUN: 1}


def test_single_seed_uses_the_papers_std_alone_and_quick_synthetic_are_not_comparable():
    runs = ddmnist_runs({"cnn": [0.906]})  # Δ = 0.006 = 2σ with σ = 0.003: the edge counts as within
    card = sc.verdicts(ddmnist.scorecard_rows(runs, PAPER4), quick=False).set_index("model")
    assert math.isnan(card.loc["cnn", "ours_std"]) and card.loc["cnn", "ours_n"] == 1
    assert card.loc["cnn", "delta_sigma"] == pytest.approx(2.0)
    assert card.loc["cnn", "verdict"] == sc.WITHIN
    quick = sc.verdicts(ddmnist.scorecard_rows(runs, PAPER4), quick=True)
    assert list(quick["verdict"]) == [sc.QUICK, sc.NOT_RUN, sc.NOT_RUN]
    synthetic = sc.verdicts(ddmnist.scorecard_rows(ddmnist_runs({"cnn": [0.9]}, True), PAPER4), quick=False)
    assert synthetic.loc[0, "verdict"] == sc.SYNTHETIC


def test_any_trained_model_with_a_paper_row_is_compared():
    runs = ddmnist_runs({"scnn": [0.48, 0.49]})  # a baseline trained here: no list of models needed
    card = sc.verdicts(ddmnist.scorecard_rows(runs, PAPER4), quick=False).set_index("model")
    assert card.loc["scnn", "ours_n"] == 2 and card.loc["scnn", "verdict"] == sc.WITHIN


def test_non_finite_metric_is_refused():
    runs = ddmnist_runs({"cnn": [0.9, float("nan")]})
    with pytest.raises(MetricError, match="seed1"):
        ddmnist.scorecard_rows(runs, PAPER4)


def test_tables_5_6_and_exploratory_rows():
    paper5 = pd.DataFrame([dict(model="ours", label="Ours", group="S4", aug="Yes", a_mean=0.8, a_std=0.0,
                                b_mean=0.5, b_std=0.1, params_m=0.19)])
    runs5 = pd.DataFrame([dict(experiment="a", group="O", model="ours", seed=s, test_accuracy=v, synthetic=False)
                          for s, v in enumerate([0.8, 0.8])])
    card5 = sc.verdicts(medmnist.scorecard_rows(runs5, paper5, {"a": "A", "b": "B"}), quick=False)
    assert list(card5["column"]) == ["A", "B"]
    assert card5.loc[0, "verdict"] == sc.WITHIN and card5.loc[0, "delta_sigma"] == 0.0  # σ = 0, Δ = 0
    assert card5.loc[1, "verdict"] == sc.NOT_RUN  # data set b not run here
    paper6 = pd.DataFrame([dict(model="cnn", label="CNN", aug="No", future_mean=0.81, future_std=0.01,
                                domain_mean=0.63, domain_std=0.0, params_m=0.25)])
    runs6 = pd.DataFrame([dict(experiment="smoke", group="C4", model="cnn", seed=0, future_rmse_h6=0.81,
                               domain_rmse_h6=0.65, synthetic=False, parameters=250_000)])
    card6 = sc.verdicts(smoke.scorecard_rows(runs6, paper6, 6), quick=False)
    # Domain: the paper prints std 0.00 (two decimals: below 0.005), so σ = 0.005, not 0: Δ = 0.02 → 4σ
    assert list(card6["verdict"]) == [sc.WITHIN, sc.OUTSIDE]
    assert card6.loc[1, "sigma"] == pytest.approx(0.005) and card6.loc[1, "delta_sigma"] == pytest.approx(4.0)
    assert card6.loc[1, "ours_params_m"] == 0.25 and card6.loc[1, "paper_params_m"] == 0.25
    paper1 = pd.DataFrame(dict(run=[1, 2, 3, 4, 5], plus_one=[22, 21, 22, 21, 21], minus_one=[20, 21, 20, 21, 21]))
    ours1 = pd.DataFrame({"run": ["1", "2", "mean", "std"], "eig 1": [30, 32, 31, 1.41], "eig -1": [12, 10, 11, 1.41],
                          "synthetic": [False, False, False, False]})
    card1 = sc.verdicts(exploratory.scorecard_rows(tmnist.PAPER_TABLE, ours1, paper1), quick=False)
    assert list(card1["column"]) == ["+1", "−1"]
    assert card1.loc[0, "paper_mean"] == pytest.approx(21.4) and card1.loc[0, "ours_mean"] == 31
    assert card1.loc[0, "ours_n"] == 2 and card1.loc[0, "verdict"] == sc.OUTSIDE
    paper2 = pd.DataFrame(dict(run=[1], trivial=[5.0], sign=[5.0], standard=[10.0]))
    missing = sc.verdicts(exploratory.scorecard_rows(mnist_d3.PAPER_TABLE, None, paper2), quick=False)
    assert set(missing["verdict"]) == {sc.NOT_RUN} and len(missing) == 3
    total = sc.verdicts(exploratory.scorecard_rows(tmnist.PAPER_TABLE, ours1, paper1)
                        + smoke.scorecard_rows(runs6, paper6, 6), quick=False)
    assert sc.counts(total) == {sc.WITHIN: 1, sc.OUTSIDE: 3, sc.QUICK: 0, sc.SYNTHETIC: 0, sc.NOT_RUN: 0}


def test_not_run_rows_carry_the_configured_reason_and_parameter_counts():
    runs = ddmnist_runs({"ours": [0.88, 0.87]}).assign(parameters=31_000)
    reason = "not reproducible here: needs the authors' modified escnn"
    card = sc.verdicts(ddmnist.scorecard_rows(runs, PAPER4, {"scnn": reason, "other": "unused"}), quick=False)
    card = card.set_index("model")
    assert card.loc["scnn", "verdict"] == sc.NOT_RUN and card.loc["scnn", "note"] == reason
    assert card.loc["scnn", "paper_params_m"] == 0.12 and math.isnan(card.loc["scnn", "ours_params_m"])
    assert card.loc["ours", "note"] == "" and card.loc["ours", "ours_params_m"] == pytest.approx(0.031)
    table = comparison(card.reset_index(), 4)
    assert f"SCNN: {reason}" in table["notes"]


@pytest.mark.parametrize("ours, paper, shown", [
    (0.1402, 0.19, "0.14 / 0.19"), (0.0021, 0.13, "0.0021 / 0.13"), (0.0, 0.13, "0.00 / 0.13"),
    (math.nan, 4.17, "– / 4.17"), (0.00049, math.nan, "0.00049 / –"), (math.nan, math.nan, "–")])
def test_parameter_counts_show_small_networks_without_rounding_them_to_zero(ours, paper, shown):
    from approxeq.report.page import params_pair
    assert params_pair({"ours_params_m": ours, "paper_params_m": paper}) == shown
