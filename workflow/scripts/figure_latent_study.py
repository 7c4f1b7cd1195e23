"""Snakemake `script:` entry point: accuracy, relative equivariance error and latent norm per epoch
of every latent-study run."""
import pandas as pd

from approxeq.report.latent_study import study_curves
from approxeq.runtime.logs import redirect_to_log


def main(histories, runs, study, labels, quick, runs_csv, output, log_path):
    with redirect_to_log(log_path):
        study_curves({tuple(run): path for run, path in zip(runs, histories)}, pd.read_csv(runs_csv),
                     study, labels, output, quick)


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(list(snakemake.input.histories), p.runs, dict(p.study), dict(p.labels), p.quick,  # noqa: F821
         snakemake.input.runs, snakemake.output[0], snakemake.log[0])  # noqa: F821
