"""Snakemake `script:` entry point: check a user's classification npz (layout, sha256 where
configured, the configured domain) before any training job, and write the record its runs read."""
from approxeq.data.classification import ClassificationDataError, describe
from approxeq.runtime.io import write_json_atomic
from approxeq.runtime.logs import redirect_to_log


def main(name, npz, sha256, domain, output, log_path):
    with redirect_to_log(log_path):
        record = describe(npz, sha256)
        if record["domain"] != domain:
            raise ClassificationDataError(
                f"{npz} holds {record['domain']}s (shape of train_images), but "
                f"classification.datasets.{name}.domain is {domain!r}")
        write_json_atomic(output, record)
        print(record)


if "snakemake" in globals():
    p = snakemake.params  # noqa: F821
    main(snakemake.wildcards.dataset, snakemake.input.npz, p.sha256, p.domain,  # noqa: F821
         snakemake.output[0], snakemake.log[0])  # noqa: F821
