"""Snakemake `script:` entry point: fetch MNIST into the rule's output directory (approxeq.mnist)."""
from pathlib import Path

from approxeq.logs import redirect_to_log
from approxeq.mnist import fetch_mnist


def main(sources, md5, out_dir, timeout, log_path):
    with redirect_to_log(log_path):
        fetch_mnist(out_dir, [dict(s) for s in sources], md5s=dict(md5), timeout=timeout,
                    log=lambda message: print(message, flush=True))


if "snakemake" in globals():
    main(snakemake.params.sources, snakemake.params.md5,  # noqa: F821
         Path(snakemake.output.record).parent, snakemake.params.timeout,  # noqa: F821
         snakemake.log[0])  # noqa: F821
