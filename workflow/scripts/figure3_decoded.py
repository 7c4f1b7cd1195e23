"""Snakemake `script:` entry point: Figure 3, decoded latent transformations D(W_g E(x)) beside
g·x for the autoencoder experiments (the first seed of each)."""
import torch

from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import apply_matrices
from approxeq.experiments import setup_experiment
from approxeq.report.figures import image_grid, label_suffix
from approxeq.runtime.io import read_json
from approxeq.runtime.logs import redirect_to_log

AUTOENCODERS = ("tmnist", "mnist_d3")
N_EXAMPLES = 4


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
    x = setup.test_sets["test"][0][:N_EXAMPLES]
    name = run["experiment"]
    rows = [(f"{name}\ng = e", pairs(x, model(x)))]
    matrices = model.representation.element_matrices()
    z = model.encoder(x)
    for g in range(group.order):
        if g == group.identity:
            continue
        elements = torch.full((len(x),), g)
        label = group.elements[g]
        decoded = model.head(apply_matrices(matrices, elements, z))
        rows.append((f"{name}\ng = {label}", pairs(setup.input_action(x, elements), decoded)))
    return rows, setup.synthetic


def main(models, infos, quick, output, log_path):
    with redirect_to_log(log_path):
        rows, synthetic, seen = [], False, set()
        for model_path, info_path in zip(models, infos):
            run = read_json(info_path)["run"]
            if run["experiment"] in AUTOENCODERS and run["experiment"] not in seen:
                seen.add(run["experiment"])
                new_rows, fake = rows_for(run, model_path)
                rows += new_rows
                synthetic |= fake
        image_grid(rows, output, "Figure 3: decoded latent transformations (each pair: g·x, then D(W_g E(x)))"
                   + label_suffix(quick, synthetic),
                   column_titles=["g·x", "D(W_g E(x))"] * N_EXAMPLES)


if "snakemake" in globals():
    main(list(snakemake.input.models), list(snakemake.input.infos),  # noqa: F821
         snakemake.params.quick, snakemake.output[0], snakemake.log[0])  # noqa: F821
