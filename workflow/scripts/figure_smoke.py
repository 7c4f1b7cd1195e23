"""Snakemake `script:` entry point: Figure 2 (density and velocity of one plume) and Figure 7
(a velocity field, its grid rotation, and the reoriented vectors of the C4 action)."""
import numpy as np
import torch

from approxeq.algebra.velocity import rotate_grid, rotate_velocity
from approxeq.data.smoke_files import load_simulation
from approxeq.report.figures import label_suffix, smoke_frames, velocity_rotation
from approxeq.runtime.logs import redirect_to_log


def main(simulation, quick, out, log_path):
    with redirect_to_log(log_path):
        arrays, meta = load_simulation(simulation)
        velocity, density = arrays["velocity"], arrays["density"]
        n = len(velocity)
        frames = sorted({int(f) for f in np.linspace(0, n - 1, 5)})
        suffix = label_suffix(quick, False)
        smoke_frames(density, velocity, frames, out["figure2"],
                     f"Figure 2: one regenerated plume (simulation {meta['k']}, inflow position "
                     f"{meta['inflow'] + 1} of 4)" + suffix)
        v = torch.from_numpy(velocity[n // 2][None])  # (1, 2, H, W)
        g = torch.tensor([1])
        velocity_rotation(v[0].numpy(), rotate_grid(v, g)[0].numpy(), rotate_velocity(v, g)[0].numpy(),
                          out["figure7"], "Figure 7: C4 acting on a velocity field (a 90° counter-clockwise turn)" + suffix)


if "snakemake" in globals():
    main(snakemake.input.simulation, snakemake.params.quick, dict(snakemake.output),  # noqa: F821
         snakemake.log[0])  # noqa: F821
