# The DDMNIST latent study (issue 11): the method at every latent placement × penalty form against
# the CNN, the relative equivariance error beside the accuracy. Its own target:
#   snakemake results/tables/latent_study.csv --cores 8 --resources gpu=2


rule aggregate_latent_study:
    input:
        latent_study_run_files("metrics.json"),
    output:
        f"{RESULTS}/metrics/latent_study_runs.csv",
    log:
        f"{LOGS}/aggregate_latent_study.log",
    benchmark:
        f"{BENCHMARKS}/aggregate_latent_study.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/aggregate_metrics.py"


rule latent_study_table:
    input:
        runs=rules.aggregate_latent_study.output[0],
        paper=PAPER_TABLES / "table4.csv",
    output:
        csv=report(
            f"{RESULTS}/tables/latent_study.csv",
            caption="../report/latent_study.rst",
            category="Latent study (DDMNIST)",
        ),
        tex=f"{RESULTS}/tables/latent_study.tex",
        html=f"{RESULTS}/tables/latent_study.html",
    params:
        study=DDM.get("latent_study", {}),
        labels=latent_study_labels(),
        quick=config["quick"],
        templates=str(TEMPLATES),
    log:
        f"{LOGS}/latent_study_table.log",
    benchmark:
        f"{BENCHMARKS}/latent_study_table.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/latent_study_table.py"


rule figure_latent_study:
    input:
        histories=latent_study_run_files("history.jsonl"),
        runs=rules.aggregate_latent_study.output[0],
    output:
        report(
            f"{RESULTS}/figures/latent_study_training.png",
            caption="../report/latent_study_training.rst",
            category="Latent study (DDMNIST)",
        ),
    params:
        runs=[list(r) for r in latent_study_runs()],
        study=DDM.get("latent_study", {}),
        labels=latent_study_labels(),
        quick=config["quick"],
    log:
        f"{LOGS}/figure_latent_study.log",
    benchmark:
        f"{BENCHMARKS}/figure_latent_study.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure_latent_study.py"
