"""Snakemake `script:` entry point: decompose one run's learned latent representation into
irreducibles (character inner products; eigenvalue snapping for cyclic groups), keeping how far
the multiplicities are from integers and the matrices from a representation."""
import numpy as np
import torch

from approxeq.algebra.decomposition import decompose, element_matrices, snap_eigenvalues
from approxeq.algebra.groups import group_from_name
from approxeq.method.learned import LearnedRepresentation
from approxeq.runtime.io import atomic_path, read_json, write_json_atomic
from approxeq.runtime.logs import redirect_to_log


def main(model_path, info_path, output, log_path):
    with redirect_to_log(log_path):
        run = read_json(info_path)["run"]
        group = group_from_name(run["group"])
        state = torch.load(model_path, map_location="cpu", weights_only=True)
        generators = state["representation.generator_matrices"].double().numpy()
        matrices = element_matrices(group, generators)
        decomposition = decompose(group, matrices)
        result = decomposition.as_dict()
        result["real_labels"] = list(decomposition.real_labels)  # in character-table order
        # The same decomposition of the matrices the run started from: random matrices have
        # traces near 0, so their characters already look like multiples of the regular
        # representation; only a small homomorphism error makes the counts meaningful.
        initial = LearnedRepresentation(group, generators.shape[-1], run["init"],
                                        torch.Generator().manual_seed(run["seed"]))
        start = initial.generator_matrices.detach().double().numpy()
        at_init = decompose(group, element_matrices(group, start))
        result["initial"] = {"real_multiplicities": at_init.as_dict()["real_multiplicities"],
                             "real_distance_to_integers": at_init.real_distance_to_integers,
                             "homomorphism_error": at_init.homomorphism_error}
        if group.name.startswith("C"):  # cyclic: the paper snaps the eigenvalues of W_r
            snapped = snap_eigenvalues(generators[0], group.order)
            result["eigenvalue_snapping"] = {
                "labels": snapped["labels"],
                "counts_by_label": snapped["counts_by_label"], "max_distance": snapped["max_distance"],
                "eigenvalues_real": snapped["eigenvalues"].real.tolist(),
                "eigenvalues_imag": snapped["eigenvalues"].imag.tolist()}
        result.update(experiment=run["experiment"], group=group.name, seed=run["seed"],
                      latent_dim=int(generators.shape[-1]))
        print(result)
        write_json_atomic(output["decomposition"], result)
        with atomic_path(output["matrices"]) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, generators=generators, elements=matrices,
                                    element_names=np.array(group.elements))


if "snakemake" in globals():
    main(snakemake.input.model, snakemake.input.info, dict(snakemake.output),  # noqa: F821
         snakemake.log[0])  # noqa: F821
