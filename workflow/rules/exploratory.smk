# Exploratory experiments of Section 4: data, decomposition of the learned representations,
# Tables 1-3 and Figures 3-5. Training and evaluation use the generic rules of train.smk
# (experiment = tmnist | mnist_d3 | cifar10, model = learned).


rule fetch_fonts:
    output:
        record=f"{TMNIST_DIR}/fonts.json",
    params:
        fonts=config["tmnist"]["fonts"],
        timeout=config["tmnist"]["timeout_seconds"],
        allow_synthetic=config["tmnist"]["synthetic_fallback"],
    log:
        f"{LOGS}/fetch_fonts.log",
    benchmark:
        f"{BENCHMARKS}/fetch_fonts.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/fetch_fonts.py"


rule build_tmnist:
    input:
        record=rules.fetch_fonts.output.record,
    output:
        data=f"{RESULTS}/data/tmnist.npz",
        meta=f"{RESULTS}/data/tmnist.npz.json",
    params:
        sizes=config["tmnist"]["sizes"],
        angle_range=config["tmnist"]["angle_range"],
        scale_range=config["tmnist"]["scale_range"],
        seed=config["tmnist"]["seed"],
    log:
        f"{LOGS}/build_tmnist.log",
    benchmark:
        f"{BENCHMARKS}/build_tmnist.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/build_tmnist.py"


rule fetch_cifar10:
    output:
        record=f"{CIFAR10_DIR}/source.json",
        data=f"{CIFAR10_DIR}/cifar10.npz",
    params:
        url=config["cifar10"]["url"],
        md5=config["cifar10"]["md5"],
        timeout=config["cifar10"]["timeout_seconds"],
        synthetic=config["cifar10"]["synthetic"],
    log:
        f"{LOGS}/fetch_cifar10.log",
    benchmark:
        f"{BENCHMARKS}/fetch_cifar10.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/fetch_cifar10.py"


rule decompose:
    input:
        model=f"{RUN_DIR}/model.pt",
        info=f"{RUN_DIR}/train.json",
    output:
        decomposition=f"{RUN_DIR}/decomposition.json",
        matrices=f"{RUN_DIR}/learned_matrices.npz",
    log:
        f"{LOGS}/decompose/{{experiment}}/{{group}}/{{model}}/seed{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/decompose/{{experiment}}/{{group}}/{{model}}/seed{{seed}}.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/decompose.py"


rule aggregate_exploratory:
    input:
        exploratory_run_files("metrics.json"),
    output:
        f"{RESULTS}/metrics/exploratory_runs.csv",
    log:
        f"{LOGS}/aggregate_exploratory.log",
    benchmark:
        f"{BENCHMARKS}/aggregate_exploratory.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/aggregate_metrics.py"


rule table_exploratory:
    input:
        metrics=lambda w: exploratory_run_files("metrics.json", table_experiment(w.number)),
        decompositions=lambda w: exploratory_run_files(
            "decomposition.json", table_experiment(w.number)
        ),
        paper=PAPER_TABLES / "table{number}.csv",
    output:
        csv=report(
            f"{RESULTS}/tables/table{{number}}.csv",
            caption="../report/table_exploratory.rst",
            category="Tables 1-3 (learned representations)",
        ),
        tex=f"{RESULTS}/tables/table{{number}}.tex",
        html=f"{RESULTS}/tables/table{{number}}.html",
    params:
        experiment=lambda w: table_experiment(w.number),
        quick=config["quick"],
        templates=str(TEMPLATES),
    wildcard_constraints:
        number="[123]",
    log:
        f"{LOGS}/table{{number}}.log",
    benchmark:
        f"{BENCHMARKS}/table_exploratory/table{{number}}.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/table_exploratory.py"


rule figure3_decoded:
    input:
        models=first_seed_files("model.pt", ["tmnist", "mnist_d3"]),
        infos=first_seed_files("train.json", ["tmnist", "mnist_d3"]),
    output:
        figure=report(
            f"{RESULTS}/figures/figure3_decoded.png",
            caption="../report/figure3.rst",
            category="Figures 3-5 (learned representations)",
        ),
        scores=f"{RESULTS}/figures/figure3_decoded.json",
    params:
        quick=config["quick"],
    log:
        f"{LOGS}/figure3_decoded.log",
    benchmark:
        f"{BENCHMARKS}/figure3_decoded.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure3_decoded.py"


rule figure4_eigenvalues:
    input:
        histories=first_seed_files("history.jsonl", list(EXPLORATORY)),
        infos=first_seed_files("train.json", list(EXPLORATORY)),
    output:
        report(
            f"{RESULTS}/figures/figure4_eigenvalues.png",
            caption="../report/figure4.rst",
            category="Figures 3-5 (learned representations)",
        ),
    params:
        quick=config["quick"],
    log:
        f"{LOGS}/figure4_eigenvalues.log",
    benchmark:
        f"{BENCHMARKS}/figure4_eigenvalues.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure4_eigenvalues.py"


rule figure5_tmnist:
    input:
        data=rules.build_tmnist.output.data,
    output:
        report(
            f"{RESULTS}/figures/figure5_tmnist.png",
            caption="../report/figure5.rst",
            category="Figures 3-5 (learned representations)",
        ),
    params:
        quick=config["quick"],
    log:
        f"{LOGS}/figure5_tmnist.log",
    benchmark:
        f"{BENCHMARKS}/figure5_tmnist.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure5_tmnist.py"
