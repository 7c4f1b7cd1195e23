"""Snakemake `script:` entry point: Figure 5, augmented TMNIST glyphs and their C2 font swaps."""
import torch

from approxeq.data.tmnist import as_pair_channels, font_swap_action, load_tmnist
from approxeq.report.figures import image_grid, label_suffix
from approxeq.runtime.logs import redirect_to_log

N_EXAMPLES = 10


def main(data_path, quick, output, log_path):
    with redirect_to_log(log_path):
        splits, meta = load_tmnist(data_path)
        test = {k: v[:N_EXAMPLES] for k, v in splits["test"].items()}
        x = torch.from_numpy(as_pair_channels(test))
        swapped = font_swap_action(x, torch.ones(len(x), dtype=torch.long))
        titles = [f"{d}: {a:+.0f}°, ×{s:.2f}"
                  for d, a, s in zip(test["digits"], test["angles"], test["scales"])]
        image_grid([("x (own font)", x[:, 0].numpy()), ("g·x (font swapped)", swapped[:, 0].numpy()),
                    (meta["fonts"][0], test["pairs"][:, 0]), (meta["fonts"][1], test["pairs"][:, 1])],
                   output, "TMNIST: augmented glyphs and their font swaps"
                   + label_suffix(quick, bool(meta.get("synthetic", False))), titles)


if "snakemake" in globals():
    main(snakemake.input.data, snakemake.params.quick, snakemake.output[0],  # noqa: F821
         snakemake.log[0])  # noqa: F821
