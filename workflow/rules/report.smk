# The reproducibility report: one self-contained HTML page rendered with Jinja.


rule report:
    input:
        runs=rules.aggregate_ddmnist.output[0],
        table4_csv=rules.table4.output.csv,
        table4_html=rules.table4.output.html,
        fig_examples=rules.figure_ddmnist_examples.output[0],
        fig_training=rules.figure_ddmnist_training.output[0],
        templates=TEMPLATES / "report.html.j2",
    output:
        config["report"],
    params:
        templates=lambda w, input: os.path.dirname(input.templates),
    log:
        f"{LOGS}/report.log",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/report.py"
