"""Snakemake `script:` entry point: Table 5 (MedMNIST3D test accuracy) as CSV, LaTeX and HTML, and
its per-run details (rotated test set, AUC, latent equivariance)."""
import pandas as pd

from approxeq.experiments import medmnist
from approxeq.method.summary import chance_note, collect_metrics
from approxeq.report.reporting import (
    not_trained_notes,
    render_table,
    source_row_classes,
    write_table,
)
from approxeq.runtime.io import write_text_atomic
from approxeq.runtime.logs import redirect_to_log


def main(metric_files, paper_csv, flags, labels, augs, not_trained, quick, templates, out, log_path):
    with redirect_to_log(log_path):
        runs = collect_metrics(metric_files)
        synthetic = bool(runs["synthetic"].any())
        # keep_default_na=False: the paper's group "N/A" of the CNN rows is text, not a missing value
        paper = pd.read_csv(paper_csv, keep_default_na=False)
        table = medmnist.paper_table(runs, paper, flags, labels)
        notes = []
        if synthetic:
            notes.append("SYNTHETIC DATA: MedMNIST3D could not be downloaded; our rows were computed on a "
                         "synthetic stand-in with the same file layout and are not MedMNIST results.")
        if quick:
            notes.append("QUICK RUN: small-scale configuration; numbers are not comparable to the paper.")
        notes += not_trained_notes(paper, not_trained)
        notes += [note for note in [chance_note(int(runs["at_chance"].sum()), len(runs))] if note]
        caption = ("Table 5: MedMNIST3D test accuracy (unrotated test set), mean (std) over seeds. "
                   "Par (M): parameters in millions, computed from our model for our rows.")
        write_table(out, table, caption, notes, templates, "tab:medmnist",
                    csv_table=table.assign(quick_run=quick, synthetic=synthetic),
                    row_classes=source_row_classes(table["Source"]))
        details = medmnist.details_table(runs, flags, labels, augs)
        write_text_atomic(out["details_csv"], details.assign(quick_run=quick, synthetic=synthetic)
                          .to_csv(index=False))
        detail_caption = ("Table 5, details: accuracy and AUC (medmnist Evaluator) on the unrotated "
                          "test set and on the same volumes rotated by a seeded random element of O, "
                          "and the latent's relative equivariance error ‖E(g·x) − ρ(g)E(x)‖ / ‖ρ(g)E(x)‖ "
                          "(≈ 1.41 for unrelated vectors), means over seeds.")
        write_text_atomic(out["details_html"], render_table(details, detail_caption, notes, templates,
                                                            ["ours"] * len(details)))
        print(table.to_string())
        print(details.to_string())


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.metrics), snakemake.input.paper, dict(p.flags), dict(p.labels),  # noqa: F821
         dict(p.augs), dict(p.not_trained), p.quick, p.templates, dict(snakemake.output),  # noqa: F821
         snakemake.log[0])  # noqa: F821
