"""Snakemake `script:` entry point: fetch the two TMNIST fonts (npm, hash-pinned) beside the
rule's `fonts.json` record (approxeq.data.fonts.fetch_fonts)."""
from pathlib import Path

from approxeq.data.fonts import fetch_fonts
from approxeq.runtime.logs import redirect_to_log


def main(fonts, out_dir, timeout, allow_synthetic, log_path):
    with redirect_to_log(log_path):
        fetch_fonts(out_dir, [dict(font) for font in fonts], timeout=timeout,
                    log=lambda message: print(message, flush=True), allow_synthetic=allow_synthetic)


if "snakemake" in globals():
    main(snakemake.params.fonts, Path(snakemake.output.record).parent,  # noqa: F821
         snakemake.params.timeout, snakemake.params.allow_synthetic, snakemake.log[0])  # noqa: F821
