# Reproduction of "Parameter-free approximate equivariance for tasks with finite group symmetry".
#   snakemake all --cores 8 --resources gpu=2      the paper's configuration (config.yaml)
#   snakemake --profile profiles/quick             the same DAG at small scale on CPU
from snakemake.utils import min_version

min_version("9.0")


# The repository's config.yaml, also when --directory runs the workflow elsewhere.
configfile: workflow.source_path("config.yaml")


# common.smk puts src/ on the path, validates the config against workflow/schemas/config.schema.yaml
# (an error in one screen: key, value, what is allowed) and checks what a schema cannot express.
include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/exploratory.smk"
include: "workflow/rules/medmnist.smk"
include: "workflow/rules/smoke.smk"
include: "workflow/rules/classification.smk"
include: "workflow/rules/study.smk"
include: "workflow/rules/report.smk"


# Light or network-bound rules run on the submitting host under a cluster executor
# (compute nodes are often offline).
localrules:
    all,
    fetch_mnist,
    fetch_fonts,
    fetch_cifar10,
    fetch_medmnist,
    aggregate_ddmnist,
    aggregate_exploratory,
    table4,
    table_exploratory,
    table5,
    table6,
    table_classification,
    aggregate_latent_study,
    latent_study_table,
    scorecard,
    report,


rule all:
    input:
        config["report"],
