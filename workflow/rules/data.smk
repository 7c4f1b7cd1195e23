# Data: MNIST from the configured sources (hash-checked), DDMNIST built from it per group.


rule fetch_mnist:
    output:
        record=f"{MNIST_DIR}/source.json",
        files=[f"{MNIST_DIR}/{name}" for name in MNIST_FILES],
    params:
        sources=config["mnist"]["sources"],
        md5=config["mnist"]["md5"],
        timeout=config["mnist"]["timeout_seconds"],
    log:
        f"{LOGS}/fetch_mnist.log",
    benchmark:
        f"{BENCHMARKS}/fetch_mnist.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/fetch_mnist.py"


rule build_ddmnist:
    input:
        record=rules.fetch_mnist.output.record,
        files=rules.fetch_mnist.output.files,
    output:
        data=f"{RESULTS}/data/ddmnist/{{draw}}.npz",
        meta=f"{RESULTS}/data/ddmnist/{{draw}}.npz.json",
    wildcard_constraints:
        draw="[A-Z][0-9]*(_seed[0-9]+)?",  # a group, or a group and the seed of its draw
    params:
        group=lambda w: ddmnist_draw(w.draw)[0],
        artefacts=lambda w: DDM["artefacts"][ddmnist_draw(w.draw)[0]],
        seed=lambda w: ddmnist_draw(w.draw)[1],
        per_class=DDM["per_class"],
        canvas=DDM["canvas"],
    log:
        f"{LOGS}/build_ddmnist/{{draw}}.log",
    benchmark:
        f"{BENCHMARKS}/build_ddmnist/{{draw}}.tsv",
    conda:
        "../../envs/torch.yaml"
    script:
        "../scripts/build_ddmnist.py"
