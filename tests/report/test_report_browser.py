"""The report as a reader sees it: a tiny report built from hand-made inputs (known scorecard),
rendered by the report script and checked in headless Chromium (skipped, saying so, where no
Chromium is installed). The quick run's report gets the same checks in test_workflow.py."""
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from browser import check_report, require_chromium, screenshot  # noqa: E402
from snakemake.utils import validate  # noqa: E402

from approxeq.experiments import cifar10, ddmnist, exploratory, medmnist, mnist_d3, smoke, tmnist  # noqa: E402
from approxeq.report import scorecard as sc  # noqa: E402
from approxeq.report.reporting import render_table  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "workflow" / "scripts"))
import report as report_script  # noqa: E402

ARTEFACTS = ROOT / "results" / "browser"


def figure(path: Path, width_in: float) -> str:
    fig, ax = plt.subplots(figsize=(width_in, 2))
    ax.plot([0, 1], [0, 1])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return str(path)


def tiny_inputs(tmp_path: Path) -> tuple[dict, dict, pd.DataFrame]:
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))
    config["report"] = str(tmp_path / "reports/report.html")
    paper = {n: pd.read_csv(ROOT / f"workflow/paper/table{n}.csv") for n in range(1, 7)}
    ddmnist_runs = pd.DataFrame([dict(experiment="ddmnist", group=g, model=m, seed=s,
                                      test_accuracy=acc + 0.001 * s, test_clean_accuracy=acc,
                                      parameters=33742, synthetic=False, train_seconds=12.5)
                                 for g, m, acc, seeds in [("C4", "cnn", 0.907, 2), ("D1", "cnn", 0.5, 1),
                                                          ("C4", "ours", 0.915, 2)]
                                 for s in range(seeds)])
    ours1 = pd.DataFrame({"run": ["1", "2", "mean", "std"], "eig 1": [22, 21, 21.5, 0.7],
                          "eig -1": [20, 21, 20.5, 0.7], "synthetic": [False] * 4})
    flags = {f: f[:-7].capitalize() + "3D" for f in ("nodulemnist3d", "synapsemnist3d", "organmnist3d")}
    rows = (exploratory.scorecard_rows(tmnist.PAPER_TABLE, ours1, paper[1])
            + exploratory.scorecard_rows(mnist_d3.PAPER_TABLE, None, paper[2])
            + exploratory.scorecard_rows(cifar10.PAPER_TABLE, None, paper[3])
            + ddmnist.scorecard_rows(ddmnist_runs, paper[4])
            + medmnist.scorecard_rows(None, paper[5], flags)
            + smoke.scorecard_rows(None, paper[6], 6))
    card = sc.verdicts(rows, quick=False)
    files = tmp_path / "results"
    files.mkdir()
    inputs = {"scorecard": files / "scorecard.csv", "runs": files / "ddmnist_runs.csv",
              "exploratory_runs": files / "exploratory_runs.csv"}
    card.to_csv(inputs["scorecard"], index=False)
    ddmnist_runs.to_csv(inputs["runs"], index=False)
    pd.DataFrame([dict(experiment="tmnist", group="C2", model="learned", seed=0, test_algebra=5e-6,
                       synthetic=False)]).to_csv(inputs["exploratory_runs"], index=False)
    wide = pd.DataFrame({f"column_{i}": [0.123456, 7.0] for i in range(18)}).assign(model=["cnn", "ours"])
    for name in ("table1", "table2", "table3", "table4", "table5", "table5_details", "table6", "latent_study",
                 "classification"):
        inputs[f"{name}_csv"] = files / f"{name}.csv"
        wide.to_csv(inputs[f"{name}_csv"], index=False)
        inputs[f"{name}_html"] = files / f"{name}.html"
        notes = ["SYNTHETIC DATA: stand-in."] if name == "table5" else []
        inputs[f"{name}_html"].write_text(render_table(wide, f"{name}, 19 columns", notes + ["A note."]))
    for name in ("fig_examples", "fig_training", "fig3", "fig4", "fig5", "fig2", "fig7", "fig_medmnist",
                 "fig_latent_study"):
        inputs[name] = figure(files / f"{name}.png", 30 if name == "fig3" else 6)  # one 3000 px wide
    inputs["paper_settings"] = ROOT / "workflow/paper/settings.csv"
    inputs["paper5"], inputs["paper6"] = ROOT / "workflow/paper/table5.csv", ROOT / "workflow/paper/table6.csv"
    inputs["paper4"], inputs["measured_runs"] = (ROOT / "workflow/paper/table4.csv",
                                                 ROOT / "reports/measured/ddmnist_paper_scale.csv")
    inputs["fig3_scores"] = files / "figure3_decoded.json"
    inputs["fig3_scores"].write_text(json.dumps({"tmnist": {"reconstruction": 0.95, "transformed": 0.9, "images": 256},
                                                 "mnist_d3": {"reconstruction": 0.6, "transformed": 0.03,
                                                              "images": 256}}))
    metrics = files / "metrics.json"
    metrics.write_text(json.dumps(dict(experiment="ddmnist", group="C4", model="cnn", seed=0, device="cpu",
                                       train_seconds=1.5, epochs_run=3, best_epoch=2)))
    inputs["metrics"] = [str(metrics)]
    inputs["data"] = [str(inputs["runs"])]
    return {k: str(v) if isinstance(v, Path) else v for k, v in inputs.items()}, config, card


def build_tiny_report(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    inputs, config, card = tiny_inputs(tmp_path)
    report_script.main(inputs, config, str(ROOT / "reports/templates"), str(ROOT), config["report"],
                       str(tmp_path / "report.log"))
    return Path(config["report"]), card


def test_tiny_report_holds_the_scorecard_and_the_papers_order(tmp_path):
    html_path, card = build_tiny_report(tmp_path)
    html = html_path.read_text()
    counts = sc.counts(card)
    # Table 1: 2 numbers (+1 within, −1 within); Table 4: CNN C4 within, CNN D1 outside, Ours C4 within
    assert counts == {sc.WITHIN: 4, sc.OUTSIDE: 1, sc.QUICK: 0, sc.SYNTHETIC: 0, sc.NOT_RUN: len(card) - 5}
    assert html.count('class="scorecard-row"') == len(card)
    for verdict, n in counts.items():
        assert f'data-verdict="{verdict}">{verdict}: <strong>{n}</strong>' in html
    order = [html.index(f'id="{anchor}"') for anchor in
             ("scorecard", "section4", "table1", "table2", "table3", "figure3", "figure4", "figure5",
              "section6", "table4", "figure6", "table5", "table6", "figure2", "figure7", "your-data", "methods",
              "provenance")]
    assert order == sorted(order)
    assert "None configured." in html  # the paper configuration has no data set of the user's
    # Table 5's comparison keeps the paper's Group and Aug columns, Table 6's its Aug and Par (M)
    table5 = html[html.index('id="comparison-table5"'):html.index('id="comparison-table6"')]
    assert "<th>Group</th><th>Aug</th>" in table5 and '<td class="text">SO(3)</td><td class="text">No</td>' in table5
    table6 = html[html.index('id="comparison-table6"'):]
    assert "<th>Aug</th>" in table6.split("</thead>")[0] and "Par (M)" in table6.split("</thead>")[0]
    # Figure 3's caption says what the decodings show, measured
    assert "TMNIST autoencoder 0.90\n(reconstruction 0.95): the decodings\nmatch g·x;" in html
    assert "MNIST autoencoder 0.03\n(reconstruction 0.60): the decodings\ndo not match g·x." in html
    # not a quick run: no QUICK RUN banner or section mark; the one synthetic table marked, and only it
    assert "<strong>QUICK RUN</strong>" not in html and 'title="QUICK RUN"' not in html
    assert html.count('title="SYNTHETIC DATA: stand-in."') == 1
    # a single seed's std is "–", in the scorecard and in the compact Table 4
    assert "<td>0.500 (–)</td><td>1</td>" in html and '<span class="ours">0.500 (–)</span>' in html
    # the committed paper-scale record sits in Table 4's section, each model beside the paper's number
    assert html.index('id="table4"') < html.index('id="paper-scale-table"') < html.index('id="figure6"')
    scale = html[html.index('id="paper-scale-table"'):].split("</table>")[0]
    assert "<td>0.800 (0.001)</td>" in scale and "<td>0.868 (0.002)</td>" in scale


def test_tiny_report_in_chromium(tmp_path):
    chromium = require_chromium()
    html_path, card = build_tiny_report(tmp_path)
    check_report(chromium, html_path, tmp_path, expected_rows=len(card))
    png = screenshot(chromium, html_path, ARTEFACTS / "report_tiny_first_screen.png")
    assert png.stat().st_size > 10_000


def test_methods_describe_the_runs_own_configuration(tmp_path):
    inputs, config, _ = tiny_inputs(tmp_path)
    config["smoke"]["simulation"].update(n_simulations=8, resolution=32, steps=60)
    config["medmnist"]["network"].update(c=3, latent_dim=24)
    config["ddmnist"]["models"]["ours"]["lr"]["D4"] = 1e-3
    report_script.main(inputs, config, str(ROOT / "reports/templates"), str(ROOT), config["report"],
                       str(tmp_path / "report.log"))
    html = Path(config["report"]).read_text()
    methods = html[html.index('id="methods"'):html.index('id="provenance"')]
    assert "8 plumes (32×32 grid, 60 steps; the paper's\n36 at 64×64, not this run’s)" in methods
    assert "24-dim output of residual block 3" in methods and "= 1 copy of the 24-dim" in methods
    assert "36 plumes" not in methods and "48-dim" not in methods
    # the paper's hyperparameters beside the run's (the paper configuration matches every one)
    n = len(pd.read_csv(ROOT / "workflow/paper/settings.csv"))
    assert f"{n - 1} of {n} the same, 1 differ</summary>" in html and "<td>0.001 (differs)</td>" in html
