"""Snakemake `script:` entry point: a test volume of each MedMNIST3D data set and its rotations
g·v by a few elements of O (the exact voxel permutations used in training)."""
import numpy as np
import torch

from approxeq.algebra.actions import volume_action
from approxeq.algebra.groups import octahedral
from approxeq.data.medmnist3d import SIDE, load_medmnist
from approxeq.report.figures import volume_rotations
from approxeq.runtime.logs import redirect_to_log

# (name in groups.octahedral, what it is)
SHOWN = [("e", "identity"), ("(y,-x,z)", "90° about z"), ("(z,x,y)", "120° about (1,1,1)"),
         ("(-x,z,y)", "180° about (0,1,1)")]


def main(data_dir, flags, quick, out, log_path):
    with redirect_to_log(log_path):
        group = octahedral()
        action = volume_action(group, SIDE)
        samples, volumes = [], []
        for flag, label in flags.items():
            data = load_medmnist(data_dir, flag)
            images, labels = data["test"]
            i = int(np.argmax(labels == labels.max()))  # a volume of the last class
            class_name = data["info"]["labels"][int(labels[i])]
            samples.append((f"{label}: {class_name}", images[i], data["synthetic"]))
            volumes.append(images[i])
        batch = torch.from_numpy(np.stack(volumes)).unsqueeze(1)
        elements = []
        for name, meaning in SHOWN:
            g = torch.full((len(batch),), group.index(name))
            rotated = action(batch, g)[:, 0].numpy()
            elements.append((f"g = {name}: {meaning}", rotated))
        volume_rotations(samples, elements, out, quick)


if "snakemake" in globals():
    main(snakemake.params.data_dir, dict(snakemake.params.flags), snakemake.params.quick,  # noqa: F821
         snakemake.output[0], snakemake.log[0])  # noqa: F821
