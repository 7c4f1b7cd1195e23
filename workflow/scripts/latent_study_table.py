"""Snakemake `script:` entry point: the latent study table (placement × penalty against the CNN)
as CSV (every number, with stds), LaTeX and an HTML fragment."""
import pandas as pd

from approxeq.report.latent_study import shown_table, study_table
from approxeq.report.reporting import write_table
from approxeq.runtime.logs import redirect_to_log


def main(runs_csv, paper_csv, study, labels, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        runs = pd.read_csv(runs_csv)
        table = study_table(runs, study, pd.read_csv(paper_csv), labels)
        notes = []
        if quick:
            notes.append("QUICK RUN: small-scale configuration, numbers are not comparable to the paper.")
        if table["synthetic"].any():
            notes.append("SYNTHETIC DATA: built from a synthetic stand-in for MNIST.")
        caption = ("DDMNIST latent study: test accuracy on the transformed and the clean test set, "
                   "relative equivariance error ‖E(g·x) − ρ(g)E(x)‖ / ‖ρ(g)E(x)‖ at the latent "
                   "(√2 ≈ 1.41: not equivariant) and at the head's input, mean latent norm.")
        table.insert(0, "quick_run", quick)
        shown = shown_table(table)
        write_table(out, shown, caption, notes, templates, "tab:latent-study", csv_table=table,
                    row_classes=["" if p == "–" else "ours" for p in shown["Penalty"]])
        print(shown.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(snakemake.input.runs, snakemake.input.paper, dict(p.study), dict(p.labels),  # noqa: F821
         p.quick, p.templates, dict(snakemake.output), snakemake.log[0])  # noqa: F821
