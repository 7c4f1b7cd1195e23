"""Snakemake `script:` entry point: Table 6 (SMOKE RMSE, Future / Domain) as CSV, LaTeX and HTML."""
import pandas as pd

from approxeq.experiments import smoke
from approxeq.method.summary import collect_metrics
from approxeq.report.reporting import not_trained_notes, source_row_classes, write_table
from approxeq.runtime.logs import redirect_to_log


def main(metric_files, paper_csv, labels, horizons, test_horizon, not_trained, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        runs = collect_metrics(metric_files)
        table = smoke.paper_table(runs, pd.read_csv(paper_csv), labels, horizons, test_horizon)
        notes = []
        if quick:
            notes.append("QUICK RUN: small-scale configuration (fewer, shorter, coarser simulations); "
                         "numbers are not comparable to the paper.")
        notes.append(f"Test horizon: {test_horizon} predicted frames as the paper's text says (the "
                     f"original test code rolls out 20); RMSE at every horizon {horizons} is shown. "
                     "Our SMOKE data are regenerated with PhiFlow 3.4, not the authors' files.")
        notes += not_trained_notes(pd.read_csv(paper_csv), not_trained)
        caption = "Table 6: SMOKE test RMSE, mean (std) over seeds; Par (M): parameters in millions."
        write_table(out, table, caption, notes, templates, "tab:smoke",
                    csv_table=table.assign(quick_run=quick), row_classes=source_row_classes(table["Source"]))
        print(table.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.metrics), snakemake.input.paper, dict(p.labels), list(p.horizons),  # noqa: F821
         p.test_horizon, dict(p.not_trained), p.quick, p.templates, dict(snakemake.output),  # noqa: F821
         snakemake.log[0])  # noqa: F821
