# SMOKE (paper Section 6.3, Table 6): plumes regenerated with PhiFlow, then the generic train rule
# (which also evaluates; experiment = smoke, one job per model and seed), Table 6 and Figures 2 and 7.


rule simulate_smoke:
    output:
        smoke_files(),
    params:
        simulation=SMOKE["simulation"],
        batch_size=SMOKE["batch_size"],
    # PhiFlow's batched step is fastest on one thread on small CPUs (a 2-core box: 2 threads
    # were ~50× slower); the batch dimension is where the parallel work is.
    threads: 1
    log:
        f"{LOGS}/simulate_smoke.log",
    benchmark:
        f"{BENCHMARKS}/simulate_smoke.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/simulate_smoke.py"


rule table6:
    input:
        metrics=smoke_run_files("metrics.json"),
        paper=PAPER_TABLES / "table6.csv",
    output:
        csv=report(
            f"{RESULTS}/tables/table6.csv",
            caption="../report/table6.rst",
            category="Table 6 (SMOKE)",
        ),
        tex=f"{RESULTS}/tables/table6.tex",
        html=f"{RESULTS}/tables/table6.html",
    params:
        labels={name: m["label"] for name, m in SMOKE["models"].items()},
        horizons=SMOKE["horizons"],
        test_horizon=SMOKE["splits"]["test_horizon"],
        not_trained=not_trained("smoke"),
        quick=config["quick"],
        templates=str(TEMPLATES),
    log:
        f"{LOGS}/table6.log",
    benchmark:
        f"{BENCHMARKS}/table6.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/table6.py"


rule figure_smoke:
    input:
        simulation=smoke_files()[0],
    output:
        figure2=report(
            f"{RESULTS}/figures/figure2_smoke.png",
            caption="../report/figure2.rst",
            category="Table 6 (SMOKE)",
        ),
        figure7=report(
            f"{RESULTS}/figures/figure7_velocity_rotation.png",
            caption="../report/figure7.rst",
            category="Table 6 (SMOKE)",
        ),
    params:
        quick=config["quick"],
    log:
        f"{LOGS}/figure_smoke.log",
    benchmark:
        f"{BENCHMARKS}/figure_smoke.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure_smoke.py"
