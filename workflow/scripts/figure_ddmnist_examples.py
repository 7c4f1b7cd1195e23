"""Snakemake `script:` entry point: figure of DDMNIST examples, clean / transformed / g·x."""
from approxeq.data.ddmnist import load_ddmnist
from approxeq.report.figures import ddmnist_examples
from approxeq.runtime.logs import redirect_to_log


def main(data_files, groups, quick, output, log_path):
    with redirect_to_log(log_path):
        ddmnist_examples({g: load_ddmnist(f) for g, f in zip(groups, data_files)}, output, quick)


if "snakemake" in globals():
    main(list(snakemake.input), list(snakemake.params.groups), snakemake.params.quick,  # noqa: F821
         snakemake.output[0], snakemake.log[0])  # noqa: F821
