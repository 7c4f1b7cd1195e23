"""Snakemake `script:` entry point: fetch MNIST into the rule's output directory (approxeq.data.mnist)."""
from pathlib import Path

from approxeq.data.mnist import fetch_mnist
from approxeq.runtime.logs import redirect_to_log


def main(sources, md5, out_dir, timeout, log_path):
    with redirect_to_log(log_path):
        fetch_mnist(out_dir, [dict(s) for s in sources], md5s=dict(md5), timeout=timeout,
                    log=lambda message: print(message, flush=True))


if "snakemake" in globals():
    main(snakemake.params.sources, snakemake.params.md5,  # noqa: F821
         Path(snakemake.output.record).parent, snakemake.params.timeout,  # noqa: F821
         snakemake.log[0])  # noqa: F821
