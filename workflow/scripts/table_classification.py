"""Snakemake `script:` entry point: the table of your own data sets (classification.datasets), as
CSV, LaTeX and HTML (with no data set configured: an empty table)."""
import pandas as pd

from approxeq.experiments import classification
from approxeq.method.summary import chance_note, collect_metrics
from approxeq.report.reporting import write_table
from approxeq.runtime.logs import redirect_to_log


def main(metric_files, datasets, models, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        runs = (collect_metrics(metric_files) if metric_files else
                pd.DataFrame(columns=["experiment", "model", "synthetic", "at_chance"]))
        table = classification.results_table(runs, datasets, models)
        synthetic = bool(runs["synthetic"].any())
        notes = []
        if synthetic:
            notes.append("SYNTHETIC DATA: a data set was built from a synthetic stand-in (the worked "
                         "example's MNIST when offline); its rows are not results on real data.")
        if quick:
            notes.append("QUICK RUN: small-scale configuration.")
        notes += [note for note in [chance_note(int(runs["at_chance"].sum()), len(runs))] if note]
        caption = ("Your data sets: test accuracy as stored and with every test sample moved by a "
                   "seeded element of the group (the same for every run), mean (std) over seeds, and "
                   "the latent's relative equivariance error ‖E(g·x) − ρ(g)E(x)‖ / ‖ρ(g)E(x)‖ (≈ 1.41 "
                   "for unrelated vectors), mean over seeds.")
        write_table(out, table, caption, notes, templates, "tab:classification",
                    csv_table=table.assign(quick_run=quick, synthetic=synthetic))
        print(table.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.metrics), dict(p.datasets), dict(p.models), p.quick,  # noqa: F821
         p.templates, dict(snakemake.output), snakemake.log[0])  # noqa: F821
