# Your own data and group (experiments/classification.py): each data set's npz checked (layout,
# sha256, domain) before any job, then the generic train rule (experiment = the data set's name,
# one job per group, model and seed), and one table for the report. The worked example of the quick
# configuration exports MNIST into that layout.


rule mnist_classification_npz:
    input:
        record=rules.fetch_mnist.output.record,
        files=rules.fetch_mnist.output.files,
    output:
        f"{MNIST_DIR}/mnist_classification.npz",
    params:
        mnist_dir=lambda w, input: os.path.dirname(input.record),
        val=5000,  # the last 5,000 training digits validate, as is usual for MNIST
    log:
        f"{LOGS}/mnist_classification_npz.log",
    benchmark:
        f"{BENCHMARKS}/mnist_classification_npz.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/export_mnist_npz.py"


rule check_classification_data:
    input:
        npz=lambda w: CLASSIFICATION["datasets"][w.dataset]["npz"],
    output:
        f"{RESULTS}/data/classification/{{dataset}}.json",
    params:
        sha256=lambda w: CLASSIFICATION["datasets"][w.dataset].get("sha256"),
        domain=lambda w: CLASSIFICATION["datasets"][w.dataset]["domain"],
    wildcard_constraints:
        dataset="[a-z][a-z0-9_]*",
    log:
        f"{LOGS}/check_classification_data/{{dataset}}.log",
    benchmark:
        f"{BENCHMARKS}/check_classification_data/{{dataset}}.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/check_classification_data.py"


rule table_classification:
    input:
        metrics=classification_run_files("metrics.json"),
    output:
        csv=report(
            f"{RESULTS}/tables/classification.csv",
            caption="../report/classification.rst",
            category="Your data sets",
        ),
        tex=f"{RESULTS}/tables/classification.tex",
        html=f"{RESULTS}/tables/classification.html",
    params:
        datasets=CLASSIFICATION["datasets"],
        models={name: {"label": m["label"], "aug": m["aug"]} for name, m in CLASSIFICATION["models"].items()},
        quick=config["quick"],
        templates=str(TEMPLATES),
    log:
        f"{LOGS}/table_classification.log",
    benchmark:
        f"{BENCHMARKS}/table_classification.tsv",
    conda:
        "../../envs/report.yaml"
    script:
        "../scripts/table_classification.py"
