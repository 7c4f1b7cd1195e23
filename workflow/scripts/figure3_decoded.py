"""Snakemake `script:` entry point: Figure 3, decoded latent transformations D(W_g E(x)) beside
g·x for the autoencoder experiments (the first seed of each), and how well they match (a JSON the
report's caption is written from)."""
import torch

from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import apply_matrices
from approxeq.experiments import setup_experiment
from approxeq.report.figures import experiment_title, image_grid, label_suffix
from approxeq.runtime.io import read_json, write_json_atomic
from approxeq.runtime.logs import redirect_to_log

AUTOENCODERS = ("tmnist", "mnist_d3")
N_EXAMPLES = 4
SCORED_IMAGES = 256


def match_score(decoded: torch.Tensor, target: torch.Tensor) -> float:
    """1 − ‖decoded − target‖² / ‖target − mean target‖²: 1 when every decoding is exact, 0 when it is
    no better than the mean image (a blurred average, the same for every input), below 0 when worse."""
    spread = (target - target.mean(0, keepdim=True)).pow(2).sum()
    return float(1.0 - (decoded - target).pow(2).sum() / spread.clamp_min(1e-12))


def pairs(target, decoded):
    """Images of one row: each example's target g·x, then its decoding D(W_g E(x)) beside it."""
    return torch.stack([target[:, 0], decoded[:, 0]], dim=1).flatten(0, 1).numpy()


@torch.no_grad()
def rows_for(run, model_path):
    setup = setup_experiment(run, torch.device("cpu"))
    model = setup.model
    model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
    model.eval()
    group = group_from_name(run["group"])
    scored = setup.test_sets["test"][0][:SCORED_IMAGES]
    x = scored[:N_EXAMPLES]
    name = f"{experiment_title(run['experiment'])}\n{run['group']}"
    rows = [(f"{name}, g = e", pairs(x, model(x)))]
    matrices = model.representation.element_matrices()
    z, z_scored = model.encoder(x), model.encoder(scored)
    transformed = []
    for g in range(group.order):
        if g == group.identity:
            continue
        elements = torch.full((len(x),), g)
        label = group.elements[g]
        decoded = model.head(apply_matrices(matrices, elements, z))
        rows.append((f"{name}, g = {label}", pairs(setup.input_action(x, elements), decoded)))
        every = torch.full((len(scored),), g)
        transformed.append(match_score(model.head(apply_matrices(matrices, every, z_scored))[:, :1],
                                       setup.input_action(scored, every)[:, :1]))
    scores = {"reconstruction": match_score(model(scored)[:, :1], scored[:, :1]),
              "transformed": sum(transformed) / len(transformed), "images": len(scored)}
    return rows, setup.synthetic, scores


def main(models, infos, quick, output, scores_path, log_path):
    with redirect_to_log(log_path):
        rows, synthetic, seen, scores = [], False, set(), {}
        for model_path, info_path in zip(models, infos):
            run = read_json(info_path)["run"]
            if run["experiment"] in AUTOENCODERS and run["experiment"] not in seen:
                seen.add(run["experiment"])
                new_rows, fake, scores[run["experiment"]] = rows_for(run, model_path)
                rows += new_rows
                synthetic |= fake
        write_json_atomic(scores_path, scores)
        print(scores)
        image_grid(rows, output, "Figure 3: decoded latent transformations (each pair: g·x, then D(W_g E(x)))"
                   + label_suffix(quick, synthetic),
                   column_titles=["g·x", "D(W_g E(x))"] * N_EXAMPLES)


if "snakemake" in globals():
    main(list(snakemake.input.models), list(snakemake.input.infos),  # noqa: F821
         snakemake.params.quick, snakemake.output.figure, snakemake.output.scores,  # noqa: F821
         snakemake.log[0])  # noqa: F821
