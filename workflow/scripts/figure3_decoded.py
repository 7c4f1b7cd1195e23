"""Snakemake `script:` entry point: Figure 3, decoded latent transformations D(W_g E(x)) beside
g·x for the autoencoder experiments (the first seed of each)."""
import torch

from approxeq.experiments import setup_experiment
from approxeq.figures import image_grid, label_suffix
from approxeq.groups import group_from_name
from approxeq.io import read_json
from approxeq.logs import redirect_to_log
from approxeq.representations import apply_matrices

AUTOENCODERS = ("tmnist", "mnist_d3")
N_EXAMPLES = 8


@torch.no_grad()
def rows_for(run, model_path):
    setup = setup_experiment(run, torch.device("cpu"))
    model = setup.model
    model.load_state_dict(torch.load(model_path, map_location="cpu", weights_only=True))
    model.eval()
    group = group_from_name(run["group"])
    x = setup.test_sets["test"][0][:N_EXAMPLES]
    name = run["experiment"]
    rows = [(f"{name}: x", x[:, 0].numpy()), (f"{name}: D(E(x))", model(x)[:, 0].numpy())]
    matrices = model.representation.element_matrices()
    z = model.encoder(x)
    for g in range(group.order):
        if g == group.identity:
            continue
        elements = torch.full((len(x),), g)
        label = group.elements[g]
        rows.append((f"{name}: g·x, g={label}", setup.input_action(x, elements)[:, 0].numpy()))
        decoded = model.head(apply_matrices(matrices, elements, z))
        rows.append((f"{name}: D(W_g E(x)), g={label}", decoded[:, 0].numpy()))
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
        image_grid(rows, output, "Decoded latent transformations D(W_g E(x)) beside g·x"
                   + label_suffix(quick, synthetic))


if "snakemake" in globals():
    main(list(snakemake.input.models), list(snakemake.input.infos),  # noqa: F821
         snakemake.params.quick, snakemake.output[0], snakemake.log[0])  # noqa: F821
