"""Snakemake `script:` entry point: the reproducibility report, one self-contained HTML page."""
import datetime
import platform
import subprocess

import pandas as pd

from approxeq.io import write_text_atomic
from approxeq.logs import redirect_to_log
from approxeq.reporting import png_data_uri, render_template


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(inputs, config, template_dir, output, log_path):
    with redirect_to_log(log_path):
        runs = pd.read_csv(inputs["runs"])
        synthetic_sources = pd.read_csv(inputs["exploratory_runs"])["synthetic"].any()
        comparison = pd.read_csv(inputs["table4_csv"])
        html = render_template(
            "report.html.j2", template_dir,
            config=config, quick=config["quick"], synthetic=bool(runs["synthetic"].any()),
            exploratory_synthetic=bool(synthetic_sources),
            generated=datetime.datetime.now().isoformat(timespec="seconds"),
            commit=git_commit(), python=platform.python_version(),
            table4=open(inputs["table4_html"]).read(),
            comparison=comparison.round(4).fillna("–"),
            runs=runs.round(4),
            exploratory_tables=[open(inputs[f"table{n}_html"]).read() for n in (1, 2, 3)],
            table5=open(inputs["table5_html"]).read(),
            table5_details=open(inputs["table5_details_html"]).read(),
            table6=open(inputs["table6_html"]).read(),
            latent_study=open(inputs["latent_study_html"]).read(),
            exploratory_runs=pd.read_csv(inputs["exploratory_runs"]).round(5),
            figures={name: png_data_uri(inputs[name])
                     for name in ("fig_examples", "fig_training", "fig3", "fig4", "fig5", "fig2", "fig7",
                                  "fig_medmnist", "fig_latent_study")})
        write_text_atomic(output, html)
        print(f"wrote {output}")


if "snakemake" in globals():
    main(dict(snakemake.input), dict(snakemake.config), snakemake.params.templates,  # noqa: F821
         snakemake.output[0], snakemake.log[0])  # noqa: F821
