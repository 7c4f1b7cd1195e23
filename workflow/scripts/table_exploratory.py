"""Snakemake `script:` entry point: one of Tables 1-3 (irreducible counts of the learned latent
representation, per run, with mean and std) as CSV, LaTeX and an HTML fragment."""
import pandas as pd

from approxeq.experiments import EXPLORATORY_TABLES, exploratory
from approxeq.report.claims import HOMOMORPHISM_THRESHOLD
from approxeq.report.reporting import write_table
from approxeq.runtime.io import read_json
from approxeq.runtime.logs import redirect_to_log


def shown_table(table: pd.DataFrame, paper_table: exploratory.PaperTable) -> pd.DataFrame:
    """The table as shown (HTML, LaTeX): each of the paper's count columns right after ours of the
    same irreducible, then how far the run is from a representation; the losses stay in the CSV."""
    paper = [c for c in table.columns if c.startswith("paper ")]
    counts = [c for c in table.columns if c.startswith(("eig ", "m("))]
    ours_of = {p: o for p, (o, _) in paper_table.columns.items()}
    label_of = {p: label for p, (_, label) in paper_table.columns.items()}
    columns = ["run", "seed"]
    for column in counts:
        columns.append(column)
        columns += [p for p in paper if ours_of.get(p.removeprefix("paper ")) == column and p not in columns]
    columns += [p for p in paper if p not in columns]
    columns += [c for c in ("max eigenvalue distance", "distance to integers", "homomorphism error",
                            "representation", "algebra loss") if c in table.columns]
    shown = table[columns].rename(
        columns={p: "paper: " + label_of.get(p.removeprefix("paper "), p.removeprefix("paper ")) for p in paper})
    return shown


def main(metric_files, decomposition_files, paper_csv, experiment, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        paper_table = EXPLORATORY_TABLES[experiment].PAPER_TABLE
        table = exploratory.results_table([read_json(f) for f in metric_files],
                                          [read_json(f) for f in decomposition_files], pd.read_csv(paper_csv))
        notes = []
        if quick:
            notes.append("QUICK RUN: small-scale configuration, numbers are not comparable to the paper.")
        if table["synthetic"].any():
            notes.append("SYNTHETIC DATA: trained on a synthetic stand-in for the real data set.")
        if experiment == "cifar10":
            notes.append("The paper's column labels for Table 3 were lost in its text; its columns are "
                         "shown in the paper's order, ours as eigenvalues 1, i, -1, -i.")
        caption = paper_table.title + ": every run, then mean and std over runs"
        runs = ~table["run"].isin(["mean", "std"])
        # counts identify a representation only when the learned matrices are one
        table.loc[runs, "representation"] = table.loc[runs, "homomorphism error"].map(
            lambda e: "yes" if e <= HOMOMORPHISM_THRESHOLD else "no")
        failing = int((table.loc[runs, "representation"] == "no").sum())
        if failing:
            notes.append(f"NOT A REPRESENTATION: {failing} of {int(runs.sum())} runs learned matrices whose "
                         f"homomorphism error (max ‖W_g W_h − W_gh‖ / ‖W_gh‖) is above {HOMOMORPHISM_THRESHOLD}; "
                         "their eigenvalue and irreducible counts do not identify a representation. The raw "
                         "multiplicities m(·) and their distance to integers show how far they are from one.")
        shown = shown_table(table, paper_table)
        write_table(out, shown, caption, notes, templates, f"tab:{experiment}",
                    csv_table=table.assign(quick_run=quick),
                    row_classes=["summary" if r in ("mean", "std") else "not-representation" if rep == "no" else ""
                                 for r, rep in zip(table["run"], table["representation"])])
        print(table.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.metrics), list(snakemake.input.decompositions),  # noqa: F821
         snakemake.input.paper, p.experiment, p.quick, p.templates, dict(snakemake.output),  # noqa: F821
         snakemake.log[0])  # noqa: F821
