"""Snakemake `script:` entry point: CIFAR10 into the rule's output directory, or the labelled
synthetic stand-in when the config allows it (approxeq.data.cifar10.fetch_cifar10)."""
from pathlib import Path

from approxeq.data.cifar10 import fetch_cifar10
from approxeq.runtime.logs import redirect_to_log


def main(url, md5, timeout, synthetic, out_dir, log_path):
    with redirect_to_log(log_path):
        fetch_cifar10(out_dir, url=url, md5=md5, timeout=timeout,
                      log=lambda message: print(message, flush=True),
                      allow_synthetic=dict(synthetic) if synthetic else None)


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(p.url, p.md5, p.timeout, p.synthetic, Path(snakemake.output.record).parent,  # noqa: F821
         snakemake.log[0])  # noqa: F821
