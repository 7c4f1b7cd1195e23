"""Snakemake `script:` entry point: Table 4 (DDMNIST test accuracy) as CSV, LaTeX and an HTML
fragment, our mean (std) over seeds beside the paper's values."""
import pandas as pd

from approxeq.report.reporting import not_trained_notes, source_row_classes, write_table
from approxeq.report.tables import (
    chance_note,
    compare_with_paper,
    summarise,
    wide_table,
)
from approxeq.runtime.logs import redirect_to_log


def main(runs_csv, paper_csv, groups, labels, not_trained, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        runs = pd.read_csv(runs_csv)
        summary = summarise(runs, "test_accuracy")
        long = compare_with_paper(summary, pd.read_csv(paper_csv), labels)
        # The clean test set (the same digit pairs untransformed) beside the transformed one: the
        # authors' code tests on both and the paper does not say which its Table 4 reports.
        clean = summarise(runs, "test_clean_accuracy")[["group", "model", "mean", "std"]]
        long = long.merge(clean.rename(columns={"mean": "ours_clean_mean", "std": "ours_clean_std"}),
                          on=["group", "model"], how="left")
        wide = wide_table(long, groups)
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
