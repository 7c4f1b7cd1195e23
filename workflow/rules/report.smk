# The reproducibility report: one self-contained HTML page rendered with Jinja, led by the
# scorecard of the paper's numbers.


rule scorecard:
    input:
        table1=f"{RESULTS}/tables/table1.csv",
        table2=f"{RESULTS}/tables/table2.csv",
        table3=f"{RESULTS}/tables/table3.csv",
        ddmnist_runs=rules.aggregate_ddmnist.output[0],
        medmnist=medmnist_run_files("metrics.json"),
        smoke=smoke_run_files("metrics.json"),
        paper1=PAPER_TABLES / "table1.csv",
        paper2=PAPER_TABLES / "table2.csv",
        paper3=PAPER_TABLES / "table3.csv",
        paper4=PAPER_TABLES / "table4.csv",
        paper5=PAPER_TABLES / "table5.csv",
        paper6=PAPER_TABLES / "table6.csv",
    output:
        report(
            f"{RESULTS}/tables/scorecard.csv",
            caption="../report/scorecard.rst",
            category="Scorecard",
        ),
    params:
        flags={flag: d["label"] for flag, d in MEDMNIST["datasets"].items()},
        test_horizon=SMOKE["splits"]["test_horizon"],
        not_trained={4: not_trained("ddmnist"), 5: not_trained("medmnist"),
                     6: not_trained("smoke")},
        quick=config["quick"],
    log:
        f"{LOGS}/scorecard.log",
    benchmark:
        f"{BENCHMARKS}/scorecard.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/scorecard.py"


rule report:
    input:
        scorecard=rules.scorecard.output[0],
        runs=rules.aggregate_ddmnist.output[0],
        table4_csv=rules.table4.output.csv,
        table4_html=rules.table4.output.html,
        fig_examples=rules.figure_ddmnist_examples.output[0],
        fig_training=rules.figure_ddmnist_training.output[0],
        table1_csv=f"{RESULTS}/tables/table1.csv",
        table2_csv=f"{RESULTS}/tables/table2.csv",
        table3_csv=f"{RESULTS}/tables/table3.csv",
        table1_html=f"{RESULTS}/tables/table1.html",
        table2_html=f"{RESULTS}/tables/table2.html",
        table3_html=f"{RESULTS}/tables/table3.html",
        fig3=rules.figure3_decoded.output.figure,
        fig3_scores=rules.figure3_decoded.output.scores,
        fig4=rules.figure4_eigenvalues.output[0],
        fig5=rules.figure5_tmnist.output[0],
        exploratory_runs=rules.aggregate_exploratory.output[0],
        table5_csv=rules.table5.output.csv,
        table5_html=rules.table5.output.html,
        table5_details_csv=rules.table5.output.details_csv,
        table5_details_html=rules.table5.output.details_html,
        fig_medmnist=rules.figure_medmnist.output[0],
        table6_csv=rules.table6.output.csv,
        table6_html=rules.table6.output.html,
        fig2=rules.figure_smoke.output.figure2,
        fig7=rules.figure_smoke.output.figure7,
        latent_study_csv=rules.latent_study_table.output.csv,
        latent_study_html=rules.latent_study_table.output.html,
        fig_latent_study=rules.figure_latent_study.output[0],
        classification_csv=rules.table_classification.output.csv,
        classification_html=rules.table_classification.output.html,
        # provenance: every run's metrics (device, wall time, epochs) and every data file's hash
        metrics=list(
            dict.fromkeys(
                ddmnist_run_files("metrics.json")
                + latent_study_run_files("metrics.json")
                + exploratory_run_files("metrics.json")
                + medmnist_run_files("metrics.json")
                + smoke_run_files("metrics.json")
                + classification_run_files("metrics.json")
            )
        ),
        data=[f"{MNIST_DIR}/{name}" for name in MNIST_FILES]
        + ddmnist_data_files()
        + [f"{RESULTS}/data/tmnist.npz", f"{CIFAR10_DIR}/source.json"]
        + [f"{MEDMNIST_DIR}/{flag}.json" for flag in MEDMNIST["datasets"]]
        + smoke_files()
        + [d["npz"] for d in CLASSIFICATION["datasets"].values()],
        paper_settings=PAPER_TABLES / "settings.csv",
        paper5=PAPER_TABLES / "table5.csv",
        paper6=PAPER_TABLES / "table6.csv",
        paper4=PAPER_TABLES / "table4.csv",
        measured_runs=MEASURED_RUNS,
        templates=TEMPLATES / "report.html.j2",
    output:
        config["report"],
    params:
        templates=lambda w, input: os.path.dirname(input.templates),
    log:
        f"{LOGS}/report.log",
    benchmark:
        f"{BENCHMARKS}/report.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
