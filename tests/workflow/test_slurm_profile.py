"""profiles/slurm: the profile's settings, and dry runs through it (which need no SLURM).

A real run on a one-machine SLURM cluster is .ci/slurm_smoke.sh (root, apt; not run here).
"""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from approxeq.experiments.ddmnist import study_variants

pytest.importorskip("snakemake_executor_plugin_slurm",
                    reason="snakemake-executor-plugin-slurm is not installed")

ROOT = Path(__file__).resolve().parents[2]
PROFILE = ROOT / "profiles" / "slurm"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]
MIN_JOB_AGE_DEFAULT = 300  # slurm.conf default; squeue forgets finished jobs after it


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


PROFILE_CONFIG = load(PROFILE / "config.yaml")


def dry_run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """`snakemake -n -F --profile profiles/slurm ARGS` from the repository root. -F lists
    every job whatever outputs earlier runs left in results/."""
    env = {**os.environ, "APPROXEQ_FAKE_GPUS": "", **(env or {})}
    return subprocess.run([*SNAKEMAKE, "-n", "-F", "--profile", "profiles/slurm", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=180, env=env)


def job_counts(output: str) -> dict[str, int]:
    table = output.split("Job stats:")[-1]
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)}


def rule_resources(output: str, rule: str) -> list[dict[str, str]]:
    """The `resources:` line of every job of `rule` in a dry run's output, as dicts."""
    found = []
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", output):
        if re.match(rf"(?:local)?rule {rule}:", block):
            line = re.search(r"^\s+resources: (.*)$", block, re.M)
            assert line, block
            found.append(dict(item.split("=", 1) for item in line[1].split(", ")))
    return found


def expected_train_jobs(*configfiles: str) -> int:
    """DDMNIST models × their groups × their seeds plus exploratory experiments × seeds, SMOKE models × seeds,
    MedMNIST3D data sets × models × seeds, the latent study's extra DDMNIST runs (its variants ×
    groups × seeds) and the user's classification data sets × models × seeds."""
    config = load(ROOT / "config.yaml")
    for name in configfiles:
        update_config(config, load(ROOT / name))
    ddm, exploratory, smoke = config["ddmnist"], config["exploratory"], config["smoke"]
    medmnist = config["medmnist"]
    return (sum(len(m.get("groups", ddm["groups"])) * len(m.get("seeds", ddm["seeds"])) for m in ddm["models"].values())
            + len(exploratory["experiments"]) * len(exploratory["seeds"])
            + len(smoke["models"]) * len(smoke["seeds"])
            + sum(len(m.get("datasets", medmnist["datasets"])) for m in medmnist["models"].values())
            * len(medmnist["seeds"])
            + len(study_variants(ddm)) * len(ddm["latent_study"]["groups"]) * len(ddm["latent_study"]["seeds"])
            + len(config["classification"]["datasets"]) * len(config["classification"]["models"])
            * len(config["classification"].get("seeds", [0, 1, 2])))


SLURM_COMMANDS = {"sbatch", "srun", "sinfo", "squeue", "sacct", "scontrol", "sacctmgr", "sshare"}


def path_without_slurm(tmp_path: Path) -> str:
    """A PATH with this Python's bin folder and a few basic tools (the plugin runs `which`),
    but no SLURM command, as on a laptop."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "sh", "which", "git"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    path = os.pathsep.join([str(Path(sys.executable).parent), str(bin_dir)])
    assert not any(shutil.which(cmd, path=path) for cmd in SLURM_COMMANDS)
    return path


# ---------------------------------------------------------------- the profile's settings


def test_profile_selects_the_slurm_executor_with_a_job_limit():
    assert PROFILE_CONFIG["executor"] == "slurm"
    assert isinstance(PROFILE_CONFIG["jobs"], int) and PROFILE_CONFIG["jobs"] >= 30
    assert PROFILE_CONFIG["rerun-incomplete"] is True
    assert PROFILE_CONFIG["latency-wait"] >= 5
    assert PROFILE_CONFIG["retries"] in (0, 1, 2)


def test_default_resources_name_partition_account_runtime_memory():
    defaults = PROFILE_CONFIG["default-resources"]
    assert {"slurm_partition", "slurm_account", "runtime", "mem_mb"} <= set(defaults)
    assert isinstance(defaults["slurm_partition"], str)  # "" = the cluster's default
    assert isinstance(defaults["slurm_account"], str)
    assert isinstance(defaults["runtime"], int) and defaults["runtime"] > 0  # minutes
    assert isinstance(defaults["mem_mb"], int) and defaults["mem_mb"] >= 1000


def test_training_asks_for_one_gpu_more_time_and_memory():
    defaults = PROFILE_CONFIG["default-resources"]
    train = PROFILE_CONFIG["set-resources"]["train"]
    assert train["gpu"] == 1  # the plugin turns it into sbatch --gpus=1
    assert train["runtime"] > defaults["runtime"]
    assert train["mem_mb"] > defaults["mem_mb"]
    rules = (ROOT / "workflow" / "rules" / "train.smk").read_text()
    assert re.search(r"^rule train:", rules, re.M), "set-resources names a rule that is gone"


def test_status_checks_work_without_accounting():
    # `sacct` (the plugin's default) needs slurmdbd; without it Snakemake waits for ever.
    assert PROFILE_CONFIG["slurm-status-command"] == "squeue"
    # The plugin falls back to sacct when MinJobAge < 3 x the initial interval.
    initial = PROFILE_CONFIG["slurm-init-seconds-before-status-checks"]
    assert isinstance(initial, int) and 0 < initial and 3 * initial <= MIN_JOB_AGE_DEFAULT


def test_every_profile_key_is_a_snakemake_option():
    from snakemake.cli import get_argument_parser

    options = {s for action in get_argument_parser()._actions for s in action.option_strings}
    unknown = [key for key in PROFILE_CONFIG if f"--{key}" not in options]
    assert not unknown, f"not Snakemake (or slurm plugin) options: {unknown}"


# ---------------------------------------------------------------- dry runs through it


def test_quick_dry_run_needs_no_slurm_and_requests_a_gpu_per_training_job(tmp_path):
    result = dry_run("--configfile", "config.quick.yaml",
                     env={"PATH": path_without_slurm(tmp_path)})
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    counts = job_counts(result.stdout)
    assert counts["train"] == expected_train_jobs("config.quick.yaml")
    assert "evaluate" not in counts  # each training job evaluates its own run
    train = PROFILE_CONFIG["set-resources"]["train"]
    defaults = PROFILE_CONFIG["default-resources"]
    jobs = rule_resources(result.stdout, "train")
    assert len(jobs) == counts["train"]
    for resources in jobs:
        assert resources["gpu"] == "1"
        assert resources["runtime"] == str(train["runtime"])
        assert resources["mem_mb"] == str(train["mem_mb"])
        assert resources["slurm_partition"] == str(train.get("slurm_partition",
                                                             defaults["slurm_partition"]))
    for resources in rule_resources(result.stdout, "build_ddmnist"):
        assert "gpu" not in resources
        assert resources["runtime"] == str(defaults["runtime"])
        assert resources["mem_mb"] == str(defaults["mem_mb"])


def readme_login_node_rules() -> set[str]:
    note = re.search(r"\*\*Login node\.\*\*(.*?)\n\n", (PROFILE / "README.md").read_text(), re.S)
    assert note, "profiles/slurm/README.md has no **Login node.** paragraph"
    return set(re.findall(r"`(\w+)`", note[1]))


def test_readme_names_the_rules_that_run_on_the_login_node():
    """The README once said fetch_mnist runs as a cluster job; the Snakefile makes it local."""
    block = re.search(r"^localrules:\n((?:[ \t]+\w+,?\n)+)", (ROOT / "Snakefile").read_text(), re.M)
    assert readme_login_node_rules() == set(block[1].replace(",", " ").split())
    assert "cluster job like the rest" not in (PROFILE / "README.md").read_text()


def test_full_dry_run_lists_every_training_job():
    result = dry_run()
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-3000:]
    counts = job_counts(result.stdout)
    # DDMNIST 3 groups × 6 models (CNN, ours, SCNN, RPP, Restriction, PSCNN) × 5 seeds + 3 exploratory
    # experiments × 5 seeds + 9 SMOKE models × 5 seeds
    # + 3 MedMNIST3D data sets × its models × 5 seeds + the latent study's 5 variants of ours on D4 seed 0
    medmnist_models = len(load(ROOT / "config.yaml")["medmnist"]["models"])
    assert counts["train"] == 3 * 6 * 5 + 3 * 5 + 9 * 5 + 3 * medmnist_models * 5 + 5 == expected_train_jobs()
    assert "results/runs/ddmnist/D4/ours/seed4/metrics.json" in result.stdout  # written by train
    assert "results/runs/ddmnist/D4/ours/seed4/model.pt" in result.stdout


def test_the_recovery_the_docs_describe_matches_the_profile():
    """docs/runtime.md tells what to do after an interruption: after a killed Snakemake, --unlock
    before --rerun-incomplete; on SLURM, the profile's own rerun-incomplete and retries, which must
    then be what profiles/slurm/config.yaml sets."""
    text = (ROOT / "docs" / "runtime.md").read_text()
    section = text[text.index("## Recovering after an interruption"):]
    assert "Directory cannot be locked" in section
    assert section.index("snakemake --unlock") < section.index("`--rerun-incomplete`")
    assert PROFILE_CONFIG["rerun-incomplete"] is True and PROFILE_CONFIG["retries"] >= 1
    assert f"`retries: {PROFILE_CONFIG['retries']}`" in section and "`rerun-incomplete: true`" in section
    assert "--slurm-requeue" in section  # the plugin's own flag for preemption, named as it is
