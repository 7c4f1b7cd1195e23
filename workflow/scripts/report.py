"""Snakemake `script:` entry point: the reproducibility report, one self-contained HTML page: the
scorecard first, then the paper's sections in the paper's order, methods and settings, provenance."""
import datetime
import json
import os
import platform
from pathlib import Path

import pandas as pd
import yaml

from approxeq.report.claims import VERDICTS, Evidence, claims_table
from approxeq.report.figures import experiment_title
from approxeq.report.measured import beside_paper, read_record
from approxeq.report.page import (
    comparison,
    config_hash,
    data_files,
    git_state,
    not_run_reasons,
    package_versions,
    run_provenance,
    scorecard_rows,
    settings_beside_paper,
    synthetic_among,
)
from approxeq.report.reporting import csv_data_uri, png_data_uri, readable, render_template
from approxeq.report.scorecard import QUICK, counts
from approxeq.runtime.io import write_text_atomic
from approxeq.runtime.logs import redirect_to_log


def classification_section(block):
    """What the report says about the user's own data sets: one line per data set."""
    return [{"name": name, "label": d["label"], "npz": d["npz"], "group": d["group"], "domain": d["domain"]}
            for name, d in block["datasets"].items()]


def medmnist_cnn_params(scorecard):
    """This run's MedMNIST3D CNN in millions of parameters (as the Methods quote it), or None."""
    rows = scorecard[(scorecard["table"] == 5) & (scorecard["model"] == "cnn") & (scorecard["ours_n"] > 0)]
    return None if rows.empty else f"{rows['ours_params_m'].max():.2f}"


def main(inputs, config, template_dir, repo, output, log_path):
    with redirect_to_log(log_path):
        scorecard = pd.read_csv(inputs["scorecard"])
        runs = pd.read_csv(inputs["runs"])
        exploratory_runs = pd.read_csv(inputs["exploratory_runs"])
        measured = read_record(inputs["measured_runs"])
        claims = claims_table(Evidence(scorecard, {n: pd.read_csv(inputs[f"table{n}_csv"]) for n in (1, 2, 3)},
                                       bool(config["quick"])))

        html = render_template(
            "report.html.j2", template_dir,
            config=config, quick=config["quick"],
            ddmnist_synthetic=bool(runs["synthetic"].any()),
            exploratory_synthetic={e: bool(block["synthetic"].any())
                                   for e, block in exploratory_runs.groupby("experiment")},
            medmnist_synthetic=bool(scorecard.loc[scorecard["table"] == 5, "synthetic"].any()),
            generated=datetime.datetime.now().isoformat(timespec="seconds"),
            git=git_state(repo), python=platform.python_version(),
            scorecard=scorecard_rows(scorecard), counts=counts(scorecard),
            claims=claims.to_dict("records"),
            paper_settings=settings_beside_paper(config, pd.read_csv(inputs["paper_settings"], dtype={"table": str})),
            fig3_scores={experiment_title(k): v for k, v in json.loads(open(inputs["fig3_scores"]).read()).items()},
            medmnist_cnn_params=medmnist_cnn_params(scorecard),
            quick_synthetic=synthetic_among(scorecard, QUICK), not_run_reasons=not_run_reasons(scorecard),
            claim_counts={v: int((claims["verdict"] == v).sum()) for v in VERDICTS},
            # the paper's Tables 5 and 6 give their Group / Aug columns to the comparisons
            comparisons={n: comparison(scorecard, n, pd.read_csv(inputs[f"paper{n}"], keep_default_na=False)
                                       if n in (5, 6) else None) for n in range(1, 7)},
            tables={name: open(inputs[name]).read() for name in
                    ("table1_html", "table2_html", "table3_html", "table4_html", "table5_html",
                     "table5_details_html", "table6_html", "latent_study_html", "classification_html")},
            links={name: csv_data_uri(inputs[name]) for name in
                   ("scorecard", "runs", "exploratory_runs", "measured_runs", "table1_csv", "table2_csv", "table3_csv",
                    "table4_csv", "table5_csv", "table5_details_csv", "table6_csv", "latent_study_csv",
                    "classification_csv")},
            classification=classification_section(config["classification"]),
            # paper-scale runs measured by us (a committed record), beside the paper's Table 4
            measured=beside_paper(measured, pd.read_csv(inputs["paper4"])).to_dict("records"),
            measured_runs=readable(measured), measured_path="/".join(Path(inputs["measured_runs"]).parts[-3:]),
            runs=readable(runs), exploratory_runs=readable(exploratory_runs),
            config_yaml=yaml.safe_dump(json.loads(json.dumps(config, default=str)), sort_keys=False),
            config_hash=config_hash(config), data=data_files(list(inputs["data"])),
            packages=package_versions(),
            run_provenance=readable(run_provenance(list(inputs["metrics"]))),
            figures={name: png_data_uri(inputs[name])
                     for name in ("fig_examples", "fig_training", "fig3", "fig4", "fig5", "fig2", "fig7",
                                  "fig_medmnist", "fig_latent_study")})
        write_text_atomic(output, html)
        print(f"wrote {output}")


if "snakemake" in globals():
    inputs = {k: v for k, v in snakemake.input.items()}  # noqa: F821
    repo = os.path.dirname(os.path.dirname(snakemake.scriptdir))  # noqa: F821  (workflow/scripts → repo)
    main(inputs, dict(snakemake.config), snakemake.params.templates, repo,  # noqa: F821
         snakemake.output[0], snakemake.log[0])  # noqa: F821
