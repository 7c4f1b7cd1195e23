"""Snakemake `script:` entry point: regenerate the SMOKE plumes (approxeq.data.smoke_sim) as one
`sim_KK.npz` (+ `.json` sidecar) per output; the outputs name the simulations k to run."""
import re
from pathlib import Path

import torch

from approxeq.data.smoke_files import generate
from approxeq.data.smoke_sim import SmokeConfig
from approxeq.runtime.logs import redirect_to_log


def simulations_of(outputs) -> tuple[Path, list[int]]:
    """The common directory of the outputs and the k of each `sim_KK.npz`, in output order."""
    paths = [Path(p) for p in outputs]
    if not paths:
        raise ValueError("simulate_smoke needs at least one output")
    folders = {p.parent for p in paths}
    if len(folders) != 1:
        raise ValueError(f"all outputs must be in one directory, got {sorted(map(str, folders))}")
    ks = []
    for p in paths:
        match = re.fullmatch(r"sim_(\d+)\.npz", p.name)
        if match is None or p.name != f"sim_{int(match.group(1)):02d}.npz":
            raise ValueError(f"output {p} is not named sim_KK.npz")
        ks.append(int(match.group(1)))
    return folders.pop(), ks


def main(simulation: dict, batch_size, outputs, threads: int, log_path):
    with redirect_to_log(log_path):
        torch.set_num_threads(threads)
        config = SmokeConfig.from_dict(simulation)
        out_dir, ks = simulations_of(outputs)
        print(f"SMOKE: {len(ks)} simulations, batch size {batch_size}, {threads} threads; {config}",
              flush=True)
        written = generate(config, out_dir, ks, batch_size=batch_size,
                           log=lambda message: print(message, flush=True))
        if [Path(p) for p in written] != [Path(p) for p in outputs]:
            raise RuntimeError(f"wrote {written}, expected {list(outputs)}")


if "snakemake" in globals():
    main(dict(snakemake.params.simulation), snakemake.params.batch_size,  # noqa: F821
         list(snakemake.output), snakemake.threads, snakemake.log[0])  # noqa: F821
