"""Snakemake `script:` entry point: Table 4 (DDMNIST test accuracy) as CSV, LaTeX and an HTML
fragment, our mean (std) over seeds beside the paper's values."""
import pandas as pd

from approxeq.experiments import ddmnist
from approxeq.method.summary import chance_note
from approxeq.report.reporting import not_trained_notes, source_row_classes, write_table
from approxeq.runtime.logs import redirect_to_log


def main(runs_csv, paper_csv, groups, labels, not_trained, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        runs = pd.read_csv(runs_csv)
        wide, long, summary = ddmnist.paper_table(runs, pd.read_csv(paper_csv), groups, labels)
        synthetic = bool(runs["synthetic"].any())
        notes = []
        if quick:
            notes.append("QUICK RUN: small-scale configuration, numbers are not comparable to the paper.")
        if synthetic:
            notes.append("SYNTHETIC DATA: built from a synthetic stand-in for MNIST.")
        notes += not_trained_notes(pd.read_csv(paper_csv), not_trained)
        notes += [note for note in [chance_note(int(summary["at_chance"].sum()), len(runs))] if note]
        long.insert(0, "quick_run", quick)
        long.insert(1, "synthetic_data", long["synthetic"].fillna(False).astype(bool))
        caption = ("Table 4: DDMNIST test accuracy on the transformed test set, mean (std) over seeds "
                   "(the clean test set: ours_clean_mean in the CSV); Par (M): parameters in millions.")
        write_table(out, wide, caption, notes, templates, "tab:ddmnist",
                    csv_table=long.drop(columns=["synthetic"]), row_classes=source_row_classes(wide["Source"]))
        print(wide.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(snakemake.input.runs, snakemake.input.paper, list(p.groups), dict(p.labels),  # noqa: F821
         dict(p.not_trained), p.quick, p.templates, dict(snakemake.output), snakemake.log[0])  # noqa: F821
