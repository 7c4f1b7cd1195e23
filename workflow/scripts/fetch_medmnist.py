"""Snakemake `script:` entry point: one MedMNIST3D flag into its folder, MD5-checked, or the
labelled synthetic stand-in when the config allows it (approxeq.data.medmnist3d.fetch_medmnist)."""
from pathlib import Path

from approxeq.data.medmnist3d import fetch_medmnist
from approxeq.runtime.logs import redirect_to_log


def main(flag, timeout, synthetic, mirror, local_copy, out_dir, log_path):
    with redirect_to_log(log_path):
        fetch_medmnist(flag, out_dir, timeout=timeout, log=lambda message: print(message, flush=True),
                       allow_synthetic=dict(synthetic) if synthetic else None, mirror=mirror,
                       local_copy=local_copy)


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(snakemake.wildcards.flag, p.timeout, p.synthetic, p.mirror, p.local_copy,  # noqa: F821
         Path(snakemake.output.record).parent, snakemake.log[0])  # noqa: F821
