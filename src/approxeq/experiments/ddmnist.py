"""DDMNIST (paper Section 6.1, Table 4): two MNIST digits on one canvas, G×G acting one factor per
digit; per-epoch augmentation of the clean pairs (docs/ddmnist-protocol.md); Table 4 and its
scorecard rows."""
from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F

from approxeq.algebra.actions import trivial_action
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.algebra.symmetry import symmetry
from approxeq.data import ddmnist as ddmnist_data
from approxeq.experiments.base import ExperimentSetup, model_network
from approxeq.method.comparison import at_chance_count, comparison_row, not_run_note, params_m, stats
from approxeq.method.evaluate import accuracy, latent_equivariance_error
from approxeq.method.loss import LossWeights, method_objective
from approxeq.method.summary import CHANCE_MARK, mean_std, require_finite, summarise
from approxeq.method.train import EpochViews, TaskData
from approxeq.nn.networks import DDMNIST_PLACEMENTS, ddmnist_latent_encoder
from approxeq.nn.registry import build_model, takes_group

# ---------------------------------------------------------------------------------------------
# The runs: configured models and the latent study's variants (issue 11). A study cell is (group,
# seed, placement, penalty) of one model (`ours`); the cell equal to the model's own configuration
# IS its Table 4 run, every other cell a run of its own named `<model>_<placement>_<penalty>`; the
# baseline (the CNN) is trained once and measured at every placement.
# ---------------------------------------------------------------------------------------------

DEFAULT_LATENT = {"placement": "conv", "penalty": "mse"}  # the paper's literal choice


def model_latent(ddm: dict, name: str) -> dict:
    """Placement and penalty of a configured DDMNIST model: its own `latent`, else `ddmnist.latent`."""
    return {**DEFAULT_LATENT, **ddm.get("latent", {}), **ddm["models"][name].get("latent", {})}


def variant_name(model: str, placement: str, penalty: str) -> str:
    return f"{model}_{placement}_{penalty}"


def study_pairs(study: dict) -> list[tuple[str, str]]:
    """(placement, penalty) of every cell of the model: the explicit `cells` where the study lists
    them (a subset, e.g. the two settings worth paper-scale CPU hours), else placements × penalties."""
    if study.get("cells"):
        return [(c["placement"], c["penalty"]) for c in study["cells"]]
    return [(p, q) for p in study["placements"] for q in study["penalties"]]


def study_placements(study: dict) -> list[str]:
    """The placements the study's cells use, in order: where the baseline is measured."""
    return list(dict.fromkeys(p for p, _ in study_pairs(study)))


def study_variants(ddm: dict) -> dict[str, dict]:
    """Runs the study adds: name → {model, placement, penalty} (the model's own cell excluded)."""
    study = ddm.get("latent_study")
    if not study:
        return {}
    model = study["model"]
    own = model_latent(ddm, model)
    return {variant_name(model, p, q): {"model": model, "placement": p, "penalty": q}
            for p, q in study_pairs(study) if (p, q) != (own["placement"], own["penalty"])}


def model_settings(ddm: dict, name: str) -> dict:
    """Everything that defines a DDMNIST model (label, weights, lr, lambda, latent), for a
    configured model or a study variant."""
    if name in ddm["models"]:
        return {**ddm["models"][name], "latent": model_latent(ddm, name)}
    variants = study_variants(ddm)
    if name not in variants:
        raise KeyError(f"{name!r} is neither in ddmnist.models {sorted(ddm['models'])} nor a "
                       f"ddmnist.latent_study variant {sorted(variants)}")
    variant = variants[name]
    base = ddm["models"][variant["model"]]
    return {**base, "label": f"{base['label']} ({variant['placement']}, {variant['penalty']})",
            "latent": {"placement": variant["placement"], "penalty": variant["penalty"]}}


def study_cells(ddm: dict) -> list[dict]:
    """Every (group, seed, run) the study table reads: the baseline once per (group, seed), the
    model once per (group, seed, placement, penalty)."""
    study = ddm.get("latent_study")
    if not study:
        return []
    model, own = study["model"], model_latent(ddm, study["model"])
    cells = []
    for group in study["groups"]:
        for seed in study["seeds"]:
            cells.append({"group": group, "seed": seed, "run": study["baseline"], "role": "baseline"})
            for p, q in study_pairs(study):
                mine = (p, q) == (own["placement"], own["penalty"])
                cells.append({"group": group, "seed": seed, "role": "model",
                              "run": model if mine else variant_name(model, p, q)})
    return cells


def data_file(config: dict, group: str, seed: int | None = None) -> str:
    """The DDMNIST file a run of `seed` reads: with data_draw "shared" one per group, drawn with
    data_seed, for every seed; with "per_seed" one per (group, seed), drawn with that seed (None:
    the first configured seed's)."""
    ddm, folder = config["ddmnist"], f"{config['results']}/data/ddmnist"
    if ddm["data_draw"] == "shared":
        return f"{folder}/{group}.npz"
    return f"{folder}/{group}_seed{ddm['seeds'][0] if seed is None else seed}.npz"


def data_draw(config: dict, name: str) -> tuple[str, int]:
    """(group, seed of the draw) of a DDMNIST file name without its .npz (see data_file)."""
    group, _, seed = name.partition("_seed")
    return group, int(seed) if seed else config["ddmnist"]["data_seed"]


def data_files(config: dict, experiment: str, group: str, seed: int) -> tuple[list[str], str]:
    """(the files the workflow makes before a run starts, the file or folder the run reads)."""
    data = data_file(config, group, seed)
    return [data], data


def network_key(config: dict, model: str) -> tuple[str, str]:
    """(config key, network name) of a model: what the workflow checks is buildable before a job."""
    ddm = config["ddmnist"]
    return f"ddmnist.models.{model}", model_network(ddm, model_settings(ddm, model))["name"]


def run_settings(config: dict, experiment: str, group: str, model: str, seed: int, data: str) -> dict:
    """Everything a DDMNIST training job needs, as one dict (also written into its train.json)."""
    ddm = config["ddmnist"]
    settings = model_settings(ddm, model)  # a configured model or a latent-study variant
    training = ddm["training"]
    return {
        "experiment": experiment,
        "group": group,
        "model": model,
        "seed": seed,
        "data": data,
        "network": model_network(ddm, settings),
        "lr": settings["lr"][group],
        "weights": {
            "task": settings["weights"]["task"],
            "shift": settings["weights"]["shift"],
            "equivariance": settings["weights"]["equivariance"][group],
        },
        "latent": dict(settings["latent"]),
        "augmentation": dict(ddm["augmentation"]),
        "normalisation": dict(ddm["normalisation"]),
        "batch_size": training["batch_size"],
        "epochs": settings.get("epochs", training["epochs"]),
        "patience": training["patience"],
        "weight_decay": training["weight_decay"],
        "deterministic": config["compute"]["deterministic"],
    }


# Validation images on which every epoch records the latent diagnostics (a fixed seeded subset,
# small next to an epoch of training).
DDMNIST_DIAGNOSTIC_SAMPLES = 512


def setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: data (DDMNIST file), group (C4/D1/D4), network, weights (task, shift, equivariance),
    latent (placement: where ρ_Z acts, a key of nn.networks.DDMNIST_PLACEMENTS; penalty: "mse" or
    "normalised", see loss.equivariance_penalty)."""
    data_path, group, network = run["data"], run["group"], run["network"]
    if "latent" not in run:
        raise KeyError("DDMNIST run settings lack 'latent' ({placement, penalty}); runs trained "
                       "before the latent study must be trained again")
    placement, penalty = run["latent"]["placement"], run["latent"]["penalty"]
    splits, meta = ddmnist_data.load_ddmnist(data_path)
    if meta["group"] != group:
        raise ValueError(f"{data_path} holds DDMNIST for {meta['group']}, not {group}")
    canvas = ddmnist_data.Canvas(**meta["canvas"])
    acting = symmetry(group, "image")  # the run's group, read once: a subgroup of D4 per digit
    product = ddmnist_data.product_group(acting)
    input_action = ddmnist_data.pair_action(acting, canvas).to(device)
    rep = latent_representation(product, network["latent_dim"]).to(device)

    def tensors(split: str, images: str = "images"):
        x = torch.from_numpy(splits[split][images]).unsqueeze(1).to(device)  # uint8 N×1×H×W
        return x, torch.from_numpy(splits[split]["labels"]).to(device)

    # (x/255 − mean)/std; mean 0, std 1 (the default) is x/255
    normalisation = {"mean": 0.0, "std": 1.0, **run.get("normalisation", {})}
    mean, std = float(normalisation["mean"]), float(normalisation["std"])

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.float().div_(255.0)
        return x if (mean, std) == (0.0, 1.0) else x.sub_(mean).div_(std)

    def metric(model, x, y):
        return accuracy(model, x, y, prepare)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    x_train, y_train = tensors("train")
    x_val, y_val = tensors("val")
    x_test, y_test = tensors("test")
    # a steerable baseline gets the group object read above (its escnn gspace and trivial subgroup)
    per_group = {"group": acting} if takes_group(network["name"]) else {}
    model = build_model(network["name"], latent=placement, **per_group,
                        **{k: v for k, v in network.items() if k != "name"})
    objective = method_objective(LossWeights(**run["weights"]), F.cross_entropy, input_action,
                                 latent_action, trivial_action, penalty=penalty)
    chosen = torch.randperm(len(x_val), generator=torch.Generator().manual_seed(run["seed"]))
    x_diagnostic = x_val[chosen[:DDMNIST_DIAGNOSTIC_SAMPLES].to(device)]

    def epoch_metrics(trained) -> dict:
        """Latent norm, MSE and relative equivariance error at the run's placement, per epoch. Eval
        mode, no gradients, its own generator: training draws exactly what it would without it."""
        error = latent_equivariance_error(trained, x_diagnostic, product.order, input_action,
                                          latent_action, prepare, seed=run["seed"])
        return {f"val_{k}": v for k, v in error.items()}

    def extra_metrics(trained) -> dict:
        """The same diagnostics at every placement on the transformed test set: one network's
        equivariance where the penalty acts and where the head reads it."""
        metrics = {}
        for where in DDMNIST_PLACEMENTS:
            error = latent_equivariance_error(ddmnist_latent_encoder(trained, where), x_test,
                                              product.order, input_action, latent_action, prepare,
                                              seed=run["seed"])
            metrics.update({f"{k}_at_{where}": v for k, v in error.items()})
        metrics.update(placement=placement, penalty=penalty)
        return metrics

    data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                    group_order=product.order, objective=objective, val_metric=metric,
                    prepare=prepare, maximize=True, epoch_metrics=epoch_metrics,
                    epoch_views=ddmnist_epoch_views(run, meta, acting, canvas, splits["train"]["clean"],
                                                    device))
    return ExperimentSetup(model=model.to(device), data=data,
                           test_sets={"test": (x_test, y_test), "test_clean": tensors("test", "clean")},
                           test_metric=metric, metric_name="accuracy",
                           synthetic=bool(meta.get("synthetic", False)),
                           input_action=input_action, latent_action=latent_action,
                           extra_metrics=extra_metrics, n_classes=network["n_classes"])


# DDMNIST's augmentation when a run does not say (runs of library users and older settings): the
# data set's one stored draw, and the method's second view g·x formed exactly.
DDMNIST_AUGMENTATION = {"per_epoch": False, "second_view": "exact", "angle": "integer"}


def ddmnist_epoch_views(run: dict, meta: dict, acting, canvas, clean_train, device):
    """The trainer's epoch_views for DDMNIST, or None (the data set's one stored draw, g·x exact).

    per_epoch: every epoch each training pair gets a fresh element per digit of G×G and, where the
    data set has artefacts, fresh angles (`angle`: integer or real degrees), applied to the clean
    digits, as both public codebases augment when a sample is fetched. second_view "authors": the
    method's pair is x1 and a fresh element g of G×G applied to x1's digits with artefacts of its
    own (the authors' PairedD4xD4DDMNIST), g being the element of the latent term; "exact": the
    objective forms g·x1 by the exact permutation."""
    settings = {**DDMNIST_AUGMENTATION, **run.get("augmentation", {})}
    if settings["second_view"] not in ("exact", "authors"):
        raise ValueError(f"unknown second_view {settings['second_view']!r}; known: ['exact', 'authors']")
    if not settings["per_epoch"]:
        if settings["second_view"] == "authors":
            raise ValueError("second_view 'authors' needs per_epoch: true (it transforms the epoch's "
                             "fresh first view again)")
        return None
    if "artefacts" not in meta:
        raise KeyError(f"{run['data']} does not record whether its group has artefacts; rebuild it")
    augment = ddmnist_data.PairAugmentation(acting, canvas, bool(meta["artefacts"]), device)
    order = augment.factor.order ** 2
    clean_train = torch.from_numpy(clean_train).unsqueeze(1).to(device)  # uint8 N×1×H×W, as x_train

    def angles(n: int, generator: torch.Generator):
        if not augment.artefacts:
            return None
        return ddmnist_data.draw_artefact_angles((n, 2), generator, settings["angle"]).to(device)

    def epoch_views(generator: torch.Generator, elements: torch.Tensor):
        n = len(clean_train)
        first = torch.randint(order, (n,), generator=generator).to(device)
        x1 = augment(clean_train, first, angles(n, generator))
        if settings["second_view"] == "exact":
            return EpochViews(x1)
        return EpochViews(x1, gx=augment(x1, elements, angles(n, generator)))

    return epoch_views


# --- Table 4 and its scorecard rows -------------------------------------------------------------

def paper_table(runs: pd.DataFrame, paper: pd.DataFrame, groups: list[str],
                labels: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Table 4 from the runs' metrics (summary.collect_metrics) and the paper's values: (the table
    as the paper lays it out, the long table with every (model, group) of ours and the paper's,
    the summary per (group, model) over seeds). The clean test set (the same digit pairs
    untransformed) is kept beside the transformed one: the authors' code tests on both and the
    paper does not say which its Table 4 reports."""
    summary = summarise(runs, "test_accuracy")
    long = compare_with_paper(summary, paper, labels)
    clean = summarise(runs, "test_clean_accuracy")[["group", "model", "mean", "std"]]
    long = long.merge(clean.rename(columns={"mean": "ours_clean_mean", "std": "ours_clean_std"}),
                      on=["group", "model"], how="left")
    return wide_table(long, groups), long, summary


def compare_with_paper(summary: pd.DataFrame, paper: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Long table: every (model, group) of ours and of the paper; `source` says which were trained
    here and which are imported from the paper."""
    ours = summary.rename(columns={"mean": "ours_mean", "std": "ours_std"})
    ours["label"] = ours["model"].map(labels).fillna(ours["model"])
    paper = paper.rename(columns={"mean": "paper_mean", "std": "paper_std", "params_m": "paper_params_m"})
    table = paper.merge(ours.drop(columns=["label"]), on=["model", "group"], how="outer")
    table["label"] = table["label"].fillna(table["model"].map(labels)).fillna(table["model"])
    table["difference"] = table["ours_mean"] - table["paper_mean"]
    table["ours_params_m"] = table["parameters"] / 1e6
    table["source"] = table["ours_mean"].notna().map({True: "trained here", False: "imported from paper"})
    order = {label: i for i, label in enumerate(list(labels.values()) + list(paper["label"]))}
    table["_order"] = table["label"].map(order)
    columns = ["label", "model", "group", "source", "ours_mean", "ours_std", "seeds", "paper_mean",
               "paper_std", "difference", "ours_params_m", "paper_params_m", "parameters", "synthetic",
               "train_seconds", "at_chance"]
    return table.sort_values(["_order", "group"], ignore_index=True)[columns]


def wide_table(long: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """The paper's layout: one row per model, per group a 'mean (std)' cell and Par (M).

    Models trained here get two rows: ours and the paper's value for the same model."""
    rows = []
    for label, block in long.groupby("label", sort=False):
        by_group = block.set_index("group")
        trained = block["source"].eq("trained here").any()
        variants = [("this run", "ours_mean", "ours_std", "ours_params_m")] if trained else []
        if block["paper_mean"].notna().any():
            variants.append(("paper" if trained else "paper (imported)", "paper_mean", "paper_std",
                             "paper_params_m"))
        for source, mean_col, std_col, par_col in variants:
            row = {"Model": label, "Source": source}
            for group in groups:
                if group in by_group.index:
                    r = by_group.loc[group]
                    row[group] = mean_std(r[mean_col], r[std_col],
                                          n=r["seeds"] if source == "this run" else None)
                    if source == "this run" and r.get("at_chance", 0) > 0:
                        row[group] += f" {CHANCE_MARK}"
                    row[f"Par (M) {group}"] = "–" if pd.isna(r[par_col]) else f"{r[par_col]:.2f}"
                else:
                    row[group], row[f"Par (M) {group}"] = "–", "–"
            rows.append(row)
    return pd.DataFrame(rows)


def scorecard_rows(runs: pd.DataFrame | None, paper: pd.DataFrame,
                 not_trained: dict[str, str] | None = None) -> list[dict]:
    """Table 4: test accuracy (transformed test set) per (model, group)."""
    if runs is not None and len(runs):
        require_finite(runs, ["test_accuracy"], "the scorecard (Table 4)")
    rows = []
    for _, p in paper.iterrows():
        ours = None if runs is None else runs[(runs["model"] == p["model"]) & (runs["group"] == p["group"])]
        found = ours is not None and len(ours) > 0
        rows.append(comparison_row(4, "DDMNIST", "test accuracy", p["model"], p["label"], p["group"],
                                   (p["mean"], p["std"], 5), stats(ours["test_accuracy"]) if found else None,
                                   found and bool(ours["synthetic"].any()),
                                   not_run_note(p["model"], found, not_trained),
                                   (p["params_m"], params_m(ours if found else None)),
                                   at_chance_count(ours if found else None)))
    return rows
