"""Snakemake `script:` entry point: build DDMNIST for one group from the fetched MNIST."""
from pathlib import Path

from approxeq.data.ddmnist import Canvas, build_ddmnist, save_ddmnist
from approxeq.data.mnist import load_mnist
from approxeq.runtime.logs import redirect_to_log


def main(mnist_dir, group, artefacts, seed, per_class, canvas, output, log_path):
    with redirect_to_log(log_path):
        mnist = load_mnist(mnist_dir)
        splits = build_ddmnist(mnist, group, artefacts, seed, per_class, Canvas(**canvas))
        meta = save_ddmnist(output, splits, {
            "group": group, "artefacts": artefacts, "seed": seed, "canvas": canvas,
            "per_class": per_class, "synthetic": bool(mnist["synthetic"])})
        print(f"DDMNIST {group}: {meta['sizes']}, artefacts={artefacts}, "
              f"synthetic MNIST={meta['synthetic']}, sha256 {meta['sha256']}")


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(Path(snakemake.input.record).parent, p.group, p.artefacts, p.seed,  # noqa: F821
         dict(p.per_class), dict(p.canvas), snakemake.output.data, snakemake.log[0])  # noqa: F821
