# Analysis: metrics over seeds with pandas, Table 4 and the DDMNIST figures.


rule aggregate_ddmnist:
    input:
        ddmnist_run_files("metrics.json"),
    output:
        f"{RESULTS}/metrics/ddmnist_runs.csv",
    log:
        f"{LOGS}/aggregate_ddmnist.log",
    benchmark:
        f"{BENCHMARKS}/aggregate_ddmnist.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/aggregate_metrics.py"


rule table4:
    input:
        runs=rules.aggregate_ddmnist.output[0],
        paper=PAPER_TABLES / "table4.csv",
    output:
        csv=report(
            f"{RESULTS}/tables/table4.csv",
            caption="../report/table4.rst",
            category="Table 4 (DDMNIST)",
        ),
        tex=f"{RESULTS}/tables/table4.tex",
        html=f"{RESULTS}/tables/table4.html",
    params:
        groups=DDM["groups"],
        labels=model_labels(),
        not_trained=not_trained("ddmnist"),
        quick=config["quick"],
        templates=str(TEMPLATES),
    log:
        f"{LOGS}/table4.log",
    benchmark:
        f"{BENCHMARKS}/table4.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/table4.py"


rule figure_ddmnist_examples:
    input:
        [ddmnist_data(g) for g in DDM["groups"]],
    output:
        report(
            f"{RESULTS}/figures/ddmnist_examples.png",
            caption="../report/ddmnist_examples.rst",
            category="Table 4 (DDMNIST)",
        ),
    params:
        groups=DDM["groups"],
        quick=config["quick"],
    log:
        f"{LOGS}/figure_ddmnist_examples.log",
    benchmark:
        f"{BENCHMARKS}/figure_ddmnist_examples.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure_ddmnist_examples.py"


rule figure_ddmnist_training:
    input:
        histories=ddmnist_run_files("history.jsonl"),
        runs=rules.aggregate_ddmnist.output[0],
    output:
        report(
            f"{RESULTS}/figures/ddmnist_training.png",
            caption="../report/ddmnist_training.rst",
            category="Table 4 (DDMNIST)",
        ),
    params:
        runs=[list(r) for r in ddmnist_runs()],
        labels=model_labels(),
        quick=config["quick"],
    log:
        f"{LOGS}/figure_ddmnist_training.log",
    benchmark:
        f"{BENCHMARKS}/figure_ddmnist_training.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure_training_curves.py"
