# Helpers shared by the rules: paths, the run list and per-run parameters.
import os
import sys
from pathlib import Path

# Scripts import the project's package from src/ (also inside conda envs and cluster jobs).
REPO = Path(workflow.basedir)  # repository files are found here even with --directory
SRC = str(REPO / "src")
sys.path.insert(0, SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, (SRC, os.getenv("PYTHONPATH")))))

from approxeq.config import check_config, typed_command_line_config, validate_config  # noqa: E402
from approxeq.experiments import run_data as experiment_run_data  # noqa: E402
from approxeq.experiments import run_network as experiment_run_network  # noqa: E402
from approxeq.experiments import run_settings as experiment_run_settings  # noqa: E402
from approxeq.experiments.base import model_network  # noqa: E402
from approxeq.experiments.ddmnist import data_draw as ddmnist_data_draw  # noqa: E402
from approxeq.experiments.ddmnist import data_file as ddmnist_data_file  # noqa: E402
from approxeq.experiments.ddmnist import model_settings, study_cells  # noqa: E402
from approxeq.experiments.smoke import simulation_files as smoke_simulation_files  # noqa: E402
from approxeq.experiments.smoke import simulation_folder as smoke_simulation_folder  # noqa: E402
from approxeq.experiments.exploratory import LEARNED  # noqa: E402
from approxeq.nn.registry import missing_package, network_problem  # noqa: E402
from snakemake.exceptions import WorkflowError  # noqa: E402
from snakemake.logging import logger  # noqa: E402

typed_command_line_config(config, workflow.config_settings.overwrite_config)
validate_config(config, str(REPO / "workflow" / "schemas" / "config.schema.yaml"))
check_config(config)

PAPER_TABLES = REPO / "workflow" / "paper"
TEMPLATES = REPO / "reports" / "templates"
# Paper-scale runs measured by us and committed (approxeq.report.measured): every report shows them
MEASURED_RUNS = REPO / "reports" / "measured" / "ddmnist_paper_scale.csv"
RESULTS = config["results"]
# Logs live beside the results they explain: two configurations with different `results:`
# folders never write the same log (run_name need not differ between them).
LOGS = f"{RESULTS}/logs"
# Snakemake's per-job benchmark records (wall time, CPU time, peak memory), mirroring the logs:
# benchmarks/summarize.py turns a run's folder of them into the per-rule table of benchmarks/README.md.
BENCHMARKS = f"{RESULTS}/benchmarks"
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
    group="[A-Z][0-9]*",
    model="[a-z0-9_]+",
    seed="[0-9]+",


def models_not_buildable(block):
    """{model: why} for the models of an experiment block whose network needs a package this
    environment lacks (escnn for the baselines): they are left out of the default targets."""
    return {name: problem for name, settings in block["models"].items()
            if (problem := missing_package(model_network(block, settings)["name"]))}


# Models that cannot be trained in this environment: the default targets still build, with these
# models in Tables 4-6 and in the scorecard as not trained here (the reason and the install
# command in the note), and Snakemake says so once, here. Asking for one of their runs by name
# still stops (require_network).
UNBUILDABLE = {e: models_not_buildable(config[e]) for e in ("ddmnist", "medmnist", "smoke")}
if any(UNBUILDABLE.values()):
    listed = ", ".join(f"{e}.models.{m}" for e, models in UNBUILDABLE.items() for m in models)
    reason = next(why for models in UNBUILDABLE.values() for why in models.values())
    logger.warning(f"Not trained in this environment, shown as not trained here in Tables 4-6 "
                   f"and the scorecard: {listed}. {reason}")


def not_trained(experiment):
    """The configured `not_trained` models of an experiment and those this environment cannot build."""
    reasons = {m: f"not trained here: {why}" for m, why in UNBUILDABLE[experiment].items()}
    return {**config[experiment].get("not_trained", {}), **reasons}


def ddmnist_data(group, seed=None):
    """The DDMNIST file a run of `seed` reads (one per group, or per group and seed: data_draw)."""
    return ddmnist_data_file(config, group, seed)


def ddmnist_data_files():
    """Every DDMNIST file the configured runs read."""
    seeds = set(DDM["seeds"]) | set(DDM["latent_study"]["seeds"])
    return sorted({ddmnist_data(g, s) for g in DDM["groups"] for s in seeds})


def ddmnist_draw(name):
    """(group, seed of the draw) of a DDMNIST file name without its .npz (see ddmnist_data)."""
    return ddmnist_data_draw(config, name)


def ddmnist_runs():
    """(group, model, seed) of every DDMNIST training run in the configuration (a model's own
    `groups` and `seeds`, else ddmnist.groups and ddmnist.seeds)."""
    return [(g, m, s) for g in DDM["groups"] for m, settings in DDM["models"].items()
            if m not in UNBUILDABLE["ddmnist"] and g in settings.get("groups", DDM["groups"])
            for s in settings.get("seeds", DDM["seeds"])]


def ddmnist_run_files(name):
    return [
        expand(f"{RUN_DIR}/{name}", experiment="ddmnist", group=g, model=m, seed=s)[0]
        for g, m, s in ddmnist_runs()
    ]


def model_labels():
    return {name: m["label"] for name, m in DDM["models"].items()}


def latent_study_runs():
    """(group, model, seed) of every run the latent study reads, each once (the study's own cell of
    the model and the baseline are the Table 4 runs)."""
    return list(dict.fromkeys((c["group"], c["run"], c["seed"]) for c in study_cells(DDM)))


def latent_study_run_files(name):
    return [
        expand(f"{RUN_DIR}/{name}", experiment="ddmnist", group=g, model=m, seed=s)[0]
        for g, m, s in latent_study_runs()
    ]


def latent_study_labels():
    return {m: model_settings(DDM, m)["label"] for _, m, _ in latent_study_runs()}


EXPLORATORY = config["exploratory"]["experiments"]
TMNIST_DIR = config["tmnist"]["dir"]
CIFAR10_DIR = config["cifar10"]["dir"]
SMOKE = config["smoke"]
SMOKE_DIR = smoke_simulation_folder(config)


def smoke_files():
    """One file per simulation k = 1..n_simulations."""
    return smoke_simulation_files(config)


def smoke_run_files(name):
    return [
        expand(f"{RUN_DIR}/{name}", experiment="smoke", group="C4", model=m, seed=s)[0]
        for m in SMOKE["models"]
        if m not in UNBUILDABLE["smoke"]
        for s in SMOKE["seeds"]
    ]


MEDMNIST = config["medmnist"]
MEDMNIST_DIR = MEDMNIST["dir"]


def medmnist_runs():
    """(flag, model, seed) of every MedMNIST3D training run (a model's own `datasets`, else every
    configured one); the flag is the experiment's name."""
    return [(f, m, s) for f in MEDMNIST["datasets"] for m, settings in MEDMNIST["models"].items()
            if m not in UNBUILDABLE["medmnist"] and f in settings.get("datasets", MEDMNIST["datasets"])
            for s in MEDMNIST["seeds"]]


def medmnist_run_files(name):
    return [
        expand(f"{RUN_DIR}/{name}", experiment=f, group=MEDMNIST["group"], model=m, seed=s)[0]
        for f, m, s in medmnist_runs()
    ]


CLASSIFICATION = config["classification"]


def classification_runs():
    """(data set, group, model, seed) of every run on the user's own data sets."""
    return [(name, d["group"], m, s) for name, d in CLASSIFICATION["datasets"].items()
            for m in CLASSIFICATION["models"] for s in CLASSIFICATION["seeds"]]


def classification_run_files(name):
    return [
        expand(f"{RUN_DIR}/{name}", experiment=x, group=g, model=m, seed=s)[0]
        for x, g, m, s in classification_runs()
    ]


def exploratory_runs(experiment=None):
    """(experiment, group, seed) of every exploratory run, optionally of one experiment."""
    return [
        (name, e["group"], s)
        for name, e in EXPLORATORY.items()
        if experiment in (None, name)
        for s in config["exploratory"]["seeds"]
    ]


def exploratory_run_files(name, experiment=None):
    return [
        expand(f"{RUN_DIR}/{name}", experiment=x, group=g, model=LEARNED, seed=s)[0]
        for x, g, s in exploratory_runs(experiment)
    ]


def first_seed_files(name, experiments):
    """One file of the first seed's run of each given exploratory experiment (for figures that
    show one run per experiment, so they need no other run)."""
    seed = config["exploratory"]["seeds"][0]
    return [
        expand(f"{RUN_DIR}/{name}", experiment=x, group=EXPLORATORY[x]["group"], model=LEARNED, seed=seed)[0]
        for x in experiments
        if x in EXPLORATORY
    ]


def table_experiment(number):
    """The exploratory experiment whose runs make paper table `number`."""
    for name, e in EXPLORATORY.items():
        if e["table"] == int(number):
            return name
    raise ValueError(f"no exploratory experiment is configured for table {number}")


def require_network(wildcards):
    """Stop before any job when a run needs an optional network whose package is missing (escnn
    for the baselines), with the model key and how to install it; other targets still build."""
    network = experiment_run_network(config, wildcards.experiment, wildcards.model)
    problem = network and network_problem(network[1])
    if problem:
        raise WorkflowError(f"{network[0]} (network {network[1]!r}) cannot be built: {problem}")


def dataset_for(wildcards):
    """The data files a run waits for (its experiment module's data_files)."""
    require_network(wildcards)
    return experiment_run_data(config, wildcards.experiment, wildcards.group, wildcards.seed)[0]


def run_settings(wildcards):
    """Everything a training job needs, as one dict (also written into its train.json): the
    experiment's module builds it from the configuration (approxeq.experiments)."""
    data = experiment_run_data(config, wildcards.experiment, wildcards.group, wildcards.seed)[1]
    return experiment_run_settings(config, wildcards.experiment, wildcards.group, wildcards.model,
                                   int(wildcards.seed), data)
