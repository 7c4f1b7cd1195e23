"""Snakemake `script:` entry point: Figure 4, eigenvalues of W_r over training (first seed of each
exploratory experiment)."""
from approxeq.report.figures import eigenvalue_trajectories, experiment_title
from approxeq.runtime.io import read_json
from approxeq.runtime.logs import redirect_to_log


def main(histories, infos, quick, output, log_path):
    with redirect_to_log(log_path):
        chosen, synthetic, seen = {}, False, set()
        for history, info_path in zip(histories, infos):
            info = read_json(info_path)
            run = info["run"]
            title = (f"{experiment_title(run['experiment'])}, {run['group']}\n"
                     f"d = {run['network']['latent_dim']}, seed {run['seed']}")
            if info.get("synthetic"):
                title += " [SYNTHETIC]"
            if run["experiment"] not in seen:
                seen.add(run["experiment"])
                chosen[title] = (history, run["group"])
            synthetic |= bool(info.get("synthetic", False))
        eigenvalue_trajectories(chosen, output, quick, synthetic)


if "snakemake" in globals():
    main(list(snakemake.input.histories), list(snakemake.input.infos),  # noqa: F821
         snakemake.params.quick, snakemake.output[0], snakemake.log[0])  # noqa: F821
