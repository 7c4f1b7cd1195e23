# MedMNIST3D (paper Section 6.2, Table 5): the three flags fetched (MD5 of medmnist.INFO), then the
# generic train rule, which also evaluates (experiment = flag, group = O, models cnn / cnn_aug / ours),
# Table 5 and a figure of the group acting on volumes.


rule fetch_medmnist:
    output:
        # only the record: a {flag}.npz placed by hand must never be deleted as a stale output
        record=f"{MEDMNIST_DIR}/{{flag}}.json",
    params:
        timeout=MEDMNIST["timeout_seconds"],
        synthetic=MEDMNIST["synthetic"],
        mirror=MEDMNIST["mirror"],
        local_copy=MEDMNIST["local_copy"],
    wildcard_constraints:
        flag="[a-z0-9]+mnist3d",
    log:
        f"{LOGS}/fetch_medmnist/{{flag}}.log",
    benchmark:
        f"{BENCHMARKS}/fetch_medmnist/{{flag}}.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/fetch_medmnist.py"


rule table5:
    input:
        metrics=medmnist_run_files("metrics.json"),
        paper=PAPER_TABLES / "table5.csv",
    output:
        csv=report(
            f"{RESULTS}/tables/table5.csv",
            caption="../report/table5.rst",
            category="Table 5 (MedMNIST3D)",
        ),
        tex=f"{RESULTS}/tables/table5.tex",
        html=f"{RESULTS}/tables/table5.html",
        details_csv=f"{RESULTS}/tables/table5_details.csv",
        details_html=f"{RESULTS}/tables/table5_details.html",
    params:
        flags={flag: d["label"] for flag, d in MEDMNIST["datasets"].items()},
        labels={name: m["label"] for name, m in MEDMNIST["models"].items()},
        augs={name: m["aug"] for name, m in MEDMNIST["models"].items()},
        not_trained=not_trained("medmnist"),
        quick=config["quick"],
        templates=str(TEMPLATES),
    log:
        f"{LOGS}/table5.log",
    benchmark:
        f"{BENCHMARKS}/table5.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/table5.py"


rule figure_medmnist:
    input:
        [f"{MEDMNIST_DIR}/{flag}.json" for flag in MEDMNIST["datasets"]],
    output:
        report(
            f"{RESULTS}/figures/medmnist_rotations.png",
            caption="../report/medmnist_rotations.rst",
            category="Table 5 (MedMNIST3D)",
        ),
    params:
        data_dir=lambda w, input: os.path.dirname(input[0]),
        flags={flag: d["label"] for flag, d in MEDMNIST["datasets"].items()},
        quick=config["quick"],
    log:
        f"{LOGS}/figure_medmnist.log",
    benchmark:
        f"{BENCHMARKS}/figure_medmnist.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/figure_medmnist.py"
