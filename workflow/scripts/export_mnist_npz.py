"""Snakemake `script:` entry point: MNIST as one npz in medmnist's layout, the worked example of a
user's own classification data (approxeq.data.classification)."""
from approxeq.data.classification import mnist_classification_arrays, save_classification_npz
from approxeq.data.mnist import load_mnist
from approxeq.runtime.logs import redirect_to_log


def main(mnist_dir, val, output, log_path):
    with redirect_to_log(log_path):
        arrays = mnist_classification_arrays(load_mnist(mnist_dir), val)
        save_classification_npz(output, arrays)
        print(f"{output}: " + ", ".join(f"{k} {v.shape}" for k, v in arrays.items()))


if "snakemake" in globals():
    main(snakemake.params.mnist_dir, snakemake.params.val, snakemake.output[0],  # noqa: F821
         snakemake.log[0])  # noqa: F821
