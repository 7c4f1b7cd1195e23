"""Snakemake `script:` entry point: validation accuracy per epoch of every DDMNIST run."""
import pandas as pd

from approxeq.report.figures import training_curves
from approxeq.runtime.logs import redirect_to_log


def main(histories, runs, labels, quick, runs_csv, output, log_path):
    with redirect_to_log(log_path):
        synthetic = bool(pd.read_csv(runs_csv)["synthetic"].any())
        training_curves({tuple(run): path for run, path in zip(runs, histories)}, labels, output,
                        quick, synthetic)


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.histories), p.runs, dict(p.labels), p.quick,  # noqa: F821
         snakemake.input.runs, snakemake.output[0], snakemake.log[0])  # noqa: F821
