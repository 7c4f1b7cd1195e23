"""The paper's claims get verdicts computed from the tables: supported, contradicted, inconclusive
(within seed noise) or not tested at this scale (quick run, synthetic data, too few seeds)."""
import pandas as pd
import pytest

from approxeq.report import claims as cl


def card(cells, table=4, synthetic=False):
    """cells: (model, column, mean, std, n, params_m)."""
    return pd.DataFrame([dict(table=table, model=m, label=m.upper(), column=c, ours_mean=mean, ours_std=std,
                              ours_n=n, ours_params_m=p, synthetic=synthetic)
                         for m, c, mean, std, n, p in cells])


def verdict(key, scorecard, quick=False, exploratory=None):
    evidence = cl.Evidence(scorecard, exploratory or {}, quick)
    return next(c for c in cl.CLAIMS if c.key == key).check(evidence)


def ddmnist(ours_d4=0.868, cnn_d4=0.800, n=5, std=0.002):
    return card([(m, g, mean if g != "D4" else d4, std, n, p)
                 for m, mean, d4, p in (("cnn", 0.80, cnn_d4, 0.03), ("ours", 0.85, ours_d4, 0.03))
                 for g in ("C4", "D1", "D4")])


def test_the_method_beating_the_cnn_in_every_group_supports_the_ablation():
    assert verdict("ddmnist_cnn", ddmnist()).verdict == cl.SUPPORTED


def test_the_cnn_beating_the_method_in_one_group_contradicts_it():
    finding = verdict("ddmnist_cnn", ddmnist(ours_d4=0.744, cnn_d4=0.747, std=0.0005))
    assert finding.verdict == cl.CONTRADICTED and "D4: OURS 0.744" in finding.evidence


def test_a_difference_within_seed_noise_is_inconclusive():
    assert verdict("ddmnist_cnn", ddmnist(ours_d4=0.801, cnn_d4=0.800, std=0.01)).verdict == cl.INCONCLUSIVE


@pytest.mark.parametrize("quick, n, synthetic, why", [
    (True, 5, False, "quick run"), (False, 1, False, "fewer than 2 seeds"), (False, 5, True, "synthetic"),
])
def test_quick_runs_single_seeds_and_synthetic_data_test_nothing(quick, n, synthetic, why):
    scorecard = ddmnist(n=n).assign(synthetic=synthetic)
    finding = verdict("ddmnist_cnn", scorecard, quick=quick)
    assert finding.verdict == cl.NOT_TESTED and why in finding.evidence


def test_more_parameters_than_a_baseline_contradicts_the_parameter_claim():
    scorecard = pd.concat([ddmnist(), card([("scnn", g, 0.70, 0.002, 5, 0.01) for g in ("C4", "D1", "D4")])])
    finding = verdict("ddmnist_all", scorecard)
    assert finding.verdict == cl.CONTRADICTED and "more parameters than SCNN" in finding.evidence


def exploratory(counts, error, number=2):
    columns = list(cl.REGULAR_COUNTS[number])
    row = {"run": "1", **dict(zip(columns, counts)), "homomorphism error": error, "synthetic": False}
    return pd.DataFrame([row, {**row, "run": "mean"}])


@pytest.mark.parametrize("counts, error, expected", [
    ((5.0, 5.1, 9.9), 0.01, cl.SUPPORTED),        # 1 : 1 : 2, the regular representation of D3
    ((10.0, 0.0, 5.0), 0.01, cl.CONTRADICTED),    # no sign at all: not a multiple of the regular one
    ((5.0, 5.1, 9.9), 0.4, cl.NOT_TESTED),        # not a representation: its counts say nothing
])
def test_the_regular_representation_claim_reads_the_counts_of_true_representations(counts, error, expected):
    finding = cl.regular_counts(2, exploratory(counts, error), quick=False)
    assert finding.verdict == expected and "homomorphism error" in finding.evidence
    whole = cl.regular_representation(cl.Evidence(pd.DataFrame(), {2: exploratory(counts, error)}, False))
    assert whole.verdict == (cl.CONTRADICTED if expected == cl.CONTRADICTED else
                             cl.NOT_TESTED if expected == cl.NOT_TESTED else cl.INCONCLUSIVE)  # 1, 3 not run


def test_organ_needs_the_cnn_above_its_augmented_twin_and_ours_above_the_augmented_cnn():
    cells = [("cnn", "Organ3D", 0.90, 0.005, 5, 0.19), ("cnn_aug", "Organ3D", 0.80, 0.005, 5, 0.19),
             ("ours", "Organ3D", 0.85, 0.005, 5, 0.19)]
    assert verdict("medmnist_organ", card(cells, table=5)).verdict == cl.SUPPORTED
    cells[2] = ("ours", "Organ3D", 0.70, 0.005, 5, 0.19)
    assert verdict("medmnist_organ", card(cells, table=5)).verdict == cl.CONTRADICTED


def test_smoke_leaves_pscnn_out_and_lower_rmse_is_better():
    cells = [(m, c, rmse, 0.01, 5, 1.0) for c in ("Future", "Domain")
             for m, rmse in (("cnn", 1.0), ("pscnn", 0.5), ("ours", 0.8))]
    assert verdict("smoke", card(cells, table=6)).verdict == cl.SUPPORTED


def test_every_claim_gets_a_verdict_from_an_empty_run():
    table = cl.claims_table(cl.Evidence(card([]).reindex(columns=["table", "model", "label", "column", "ours_mean",
                                                                  "ours_std", "ours_n", "ours_params_m",
                                                                  "synthetic"]), {}, False))
    assert len(table) == len(cl.CLAIMS) and table["verdict"].isin(cl.VERDICTS).all()


def test_tables_1_to_3_say_when_a_run_learned_no_representation(tmp_path):
    """Counts of matrices that are not a representation are marked, not shown as clean counts."""
    import json
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sys.path.insert(0, str(root / "workflow" / "scripts"))
    import table_exploratory

    metrics, decompositions = [], []
    for seed, error in ((0, 0.01), (1, 0.4)):
        m = dict(experiment="mnist_d3", seed=seed, test_algebra=1e-4, test_equivariance_in=0.01,
                 test_equivariance_out=0.02, input_action_homomorphism_error_max=0.1,
                 test_reconstruction_mse=0.05, synthetic=False)
        d = dict(real_multiplicities={"trivial": 5.0, "sign": 5.0, "standard": 10.0},
                 real_labels=["trivial", "sign", "standard"], real_distance_to_integers=0.0,
                 homomorphism_error=error, initial={"homomorphism_error": 1.4})
        for folder, record in (("m", m), ("d", d)):
            (tmp_path / folder).mkdir(exist_ok=True)
            (tmp_path / folder / f"{seed}.json").write_text(json.dumps(record))
        metrics.append(str(tmp_path / "m" / f"{seed}.json"))
        decompositions.append(str(tmp_path / "d" / f"{seed}.json"))
    out = {k: str(tmp_path / f"table2.{k}") for k in ("csv", "tex", "html")}
    table_exploratory.main(metrics, decompositions, str(root / "workflow/paper/table2.csv"), "mnist_d3",
                           False, str(root / "reports/templates"), out, str(tmp_path / "log"))
    table = pd.read_csv(out["csv"])
    assert list(table["representation"].iloc[:2]) == ["yes", "no"]
    html = Path(out["html"]).read_text()
    assert "NOT A REPRESENTATION: 1 of 2 runs" in html and 'class="not-representation"' in html


def test_a_quick_run_says_so_once_per_claim():
    table = cl.claims_table(cl.Evidence(ddmnist(), {}, quick=True))
    assert (table["verdict"] == cl.NOT_TESTED).all()
    assert table["evidence"].str.startswith("Quick run").all()
    assert not table["evidence"].str.contains("Not tested: quick run").any()
