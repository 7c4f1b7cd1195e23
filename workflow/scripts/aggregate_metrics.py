"""Snakemake `script:` entry point: one CSV row per run from every metrics.json of an experiment."""
from approxeq.method.summary import collect_metrics
from approxeq.runtime.io import atomic_path
from approxeq.runtime.logs import redirect_to_log


def main(metric_files, output, log_path):
    with redirect_to_log(log_path):
        runs = collect_metrics(metric_files)
        with atomic_path(output) as tmp:
            runs.to_csv(tmp, index=False)
        print(runs.to_string())


if "snakemake" in globals():
    main(list(snakemake.input), snakemake.output[0], snakemake.log[0])  # noqa: F821
