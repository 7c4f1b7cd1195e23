# Helpers shared by the rules: paths, the run list and per-run parameters.
import os
import sys
from pathlib import Path

# Scripts import the project's package from src/ (also inside conda envs and cluster jobs).
REPO = Path(workflow.basedir)  # repository files are found here even with --directory
SRC = str(REPO / "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, (SRC, os.getenv("PYTHONPATH")))))

from approxeq.config import check_config  # noqa: E402

check_config(config)

PAPER_TABLES = REPO / "workflow" / "paper"
TEMPLATES = REPO / "reports" / "templates"
RESULTS = config["results"]
LOGS = f"logs/{config['run_name']}"
MNIST_DIR = config["mnist"]["dir"]
MNIST_FILES = [
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
]
DDM = config["ddmnist"]
RUN_DIR = f"{RESULTS}/runs/{{experiment}}/{{group}}/{{model}}/seed{{seed}}"


wildcard_constraints:
    experiment="[a-z0-9_]+",
    group="[A-Z][0-9]+",
    model="[a-z0-9_]+",
    seed="[0-9]+",


def ddmnist_data(group):
    return f"{RESULTS}/data/ddmnist/{group}.npz"


def ddmnist_runs():
    """(group, model, seed) of every DDMNIST training run in the configuration."""
    return [(g, m, s) for g in DDM["groups"] for m in DDM["models"] for s in DDM["seeds"]]


def ddmnist_run_files(name):
    return [
        expand(f"{RUN_DIR}/{name}", experiment="ddmnist", group=g, model=m, seed=s)[0]
        for g, m, s in ddmnist_runs()
    ]


def model_labels():
    return {name: m["label"] for name, m in DDM["models"].items()}


def dataset_for(wildcards):
    if wildcards.experiment == "ddmnist":
        return ddmnist_data(wildcards.group)
    raise ValueError(f"no dataset rule for experiment {wildcards.experiment!r}")


def run_settings(wildcards):
    """Everything a training job needs, as one dict (also written into its train.json)."""
    model = DDM["models"][wildcards.model]
    training = DDM["training"]
    return {
        "experiment": wildcards.experiment,
        "group": wildcards.group,
        "model": wildcards.model,
        "seed": int(wildcards.seed),
        "data": dataset_for(wildcards),
        "network": dict(DDM["network"]),
        "lr": model["lr"][wildcards.group],
        "weights": {
            "task": model["weights"]["task"],
            "shift": model["weights"]["shift"],
            "equivariance": model["lambda"][wildcards.group],
        },
        "batch_size": training["batch_size"],
        "epochs": training["epochs"],
        "patience": training["patience"],
        "weight_decay": training["weight_decay"],
        "deterministic": config["compute"]["deterministic"],
    }
