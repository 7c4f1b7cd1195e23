"""Snakemake `script:` entry point: fetch MNIST into the rule's output directory.

All logic lives in approxeq.mnist; this only wires the rule's params, output and log to it."""
import contextlib
import functools

from approxeq.mnist import fetch_mnist


def main(sources, md5, out_dir, log_path):
    with open(log_path, "w") as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        fetch_mnist(out_dir, [dict(s) for s in sources], md5s=dict(md5),
                    log=functools.partial(print, flush=True))


if "snakemake" in globals():
    main(snakemake.params.sources, snakemake.params.md5,  # noqa: F821
         snakemake.output[0], snakemake.log[0])  # noqa: F821
