"""Snakemake `script:` entry point: one of Tables 1-3 (irreducible counts of the learned latent
representation, per run, with mean and std) as CSV, LaTeX and an HTML fragment."""
import pandas as pd

from approxeq.io import read_json
from approxeq.logs import redirect_to_log
from approxeq.reporting import write_table
from approxeq.tables import exploratory_table

TITLES = {"tmnist": "Table 1: TMNIST autoencoder, C2, d = 42",
          "mnist_d3": "Table 2: MNIST autoencoder, D3 ≅ S3, d = 30",
          "cifar10": "Table 3: CIFAR10 classifier, C4, d = 64"}


def main(metric_files, decomposition_files, paper_csv, experiment, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        table = exploratory_table([read_json(f) for f in metric_files],
                                  [read_json(f) for f in decomposition_files], pd.read_csv(paper_csv))
        notes = []
        if quick:
            notes.append("QUICK RUN: small-scale configuration, numbers are not comparable to the paper.")
        if table["synthetic"].any():
            notes.append("SYNTHETIC DATA: trained on a synthetic stand-in for the real data set.")
        if experiment == "cifar10":
            notes.append("The paper's column labels for Table 3 were lost in its text; its columns are "
                         "shown in the paper's order, ours as eigenvalues 1, i, -1, -i.")
        caption = " ".join([TITLES.get(experiment, experiment)] + notes)
        shown = table.round(4).astype(object).fillna("–")
        write_table(out, shown, caption, notes, templates, f"tab:{experiment}",
                    csv_table=table.assign(quick_run=quick),
                    row_classes=["summary" if r in ("mean", "std") else "" for r in table["run"]])
        print(table.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.metrics), list(snakemake.input.decompositions),  # noqa: F821
         snakemake.input.paper, p.experiment, p.quick, p.templates, dict(snakemake.output),  # noqa: F821
         snakemake.log[0])  # noqa: F821
