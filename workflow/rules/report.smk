# The reproducibility report: one self-contained HTML page rendered with Jinja.


rule report:
    input:
        runs=rules.aggregate_ddmnist.output[0],
        table4_csv=rules.table4.output.csv,
        table4_html=rules.table4.output.html,
        fig_examples=rules.figure_ddmnist_examples.output[0],
        fig_training=rules.figure_ddmnist_training.output[0],
        table1_html=f"{RESULTS}/tables/table1.html",
        table2_html=f"{RESULTS}/tables/table2.html",
        table3_html=f"{RESULTS}/tables/table3.html",
        fig3=rules.figure3_decoded.output[0],
        fig4=rules.figure4_eigenvalues.output[0],
        fig5=rules.figure5_tmnist.output[0],
        exploratory_runs=rules.aggregate_exploratory.output[0],
        table5_html=rules.table5.output.html,
        table5_details_html=rules.table5.output.details_html,
        fig_medmnist=rules.figure_medmnist.output[0],
        table6_html=rules.table6.output.html,
        fig2=rules.figure_smoke.output.figure2,
        fig7=rules.figure_smoke.output.figure7,
        latent_study_html=rules.latent_study_table.output.html,
        fig_latent_study=rules.figure_latent_study.output[0],
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
