"""Experiments as configuration: each entry turns a dataset file and a config block into a model,
the trainer's TaskData and the test sets. Adding an experiment means adding a setup function here
(plus its data rule and network), not a new training loop.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from . import ddmnist
from .actions import trivial_action
from .evaluate import accuracy, latent_equivariance_error
from .loss import Action, LossWeights, method_objective
from .models import (DDMNIST_PLACEMENTS, EncoderHead, build_model, ddmnist_latent_encoder, takes_argument,
                     takes_group)
from .representations import apply_matrices, latent_representation
from .train import EpochViews, TaskData


@dataclass
class ExperimentSetup:
    model: EncoderHead
    data: TaskData
    test_sets: dict[str, tuple[torch.Tensor, torch.Tensor]]  # name → (x, y) on the device
    test_metric: Callable[[EncoderHead, torch.Tensor, torch.Tensor], float]
    metric_name: str
    synthetic: bool  # the data derive from a synthetic stand-in, not the real data set
    input_action: Action
    latent_action: Action | None  # None: the latent carries no group action (nothing measured)
    output_action: Action = trivial_action
    task_loss: Callable = F.cross_entropy
    # experiment-specific test metrics of a trained model (e.g. losses of a learned representation)
    extra_metrics: Callable[[EncoderHead], dict] | None = None
    # classes of a classification task: its chance accuracy is recorded, so a run at chance level
    # is flagged in the tables (tables.flag_chance_level); None for other tasks
    n_classes: int | None = None


# Validation images on which every epoch records the latent diagnostics (a fixed seeded subset,
# small next to an epoch of training).
DDMNIST_DIAGNOSTIC_SAMPLES = 512


def ddmnist_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: data (DDMNIST file), group (C4/D1/D4), network, weights (task, shift, equivariance),
    latent (placement: where ρ_Z acts, a key of models.DDMNIST_PLACEMENTS; penalty: "mse" or
    "normalised", see loss.equivariance_penalty)."""
    data_path, group, network = run["data"], run["group"], run["network"]
    if "latent" not in run:
        raise KeyError("DDMNIST run settings lack 'latent' ({placement, penalty}); runs trained "
                       "before the latent study must be trained again")
    placement, penalty = run["latent"]["placement"], run["latent"]["penalty"]
    splits, meta = ddmnist.load_ddmnist(data_path)
    if meta["group"] != group:
        raise ValueError(f"{data_path} holds DDMNIST for {meta['group']}, not {group}")
    canvas = ddmnist.Canvas(**meta["canvas"])
    product = ddmnist.product_group(group)
    input_action = ddmnist.pair_action(group, canvas).to(device)
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
    per_group = {"group": group} if takes_group(network["name"]) else {}  # a steerable baseline
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
                    epoch_views=ddmnist_epoch_views(run, meta, canvas, splits["train"]["clean"], device))
    return ExperimentSetup(model=model.to(device), data=data,
                           test_sets={"test": (x_test, y_test), "test_clean": tensors("test", "clean")},
                           test_metric=metric, metric_name="accuracy",
                           synthetic=bool(meta.get("synthetic", False)),
                           input_action=input_action, latent_action=latent_action,
                           extra_metrics=extra_metrics, n_classes=network["n_classes"])


# DDMNIST's augmentation when a run does not say (runs of library users and older settings): the
# data set's one stored draw, and the method's second view g·x formed exactly.
DDMNIST_AUGMENTATION = {"per_epoch": False, "second_view": "exact", "angle": "integer"}


def ddmnist_epoch_views(run: dict, meta: dict, canvas, clean_train, device):
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
    augment = ddmnist.PairAugmentation(meta["group"], canvas, bool(meta["artefacts"]), device)
    order = augment.factor.order ** 2
    clean_train = torch.from_numpy(clean_train).unsqueeze(1).to(device)  # uint8 N×1×H×W, as x_train

    def angles(n: int, generator: torch.Generator):
        if not augment.artefacts:
            return None
        return ddmnist.draw_artefact_angles((n, 2), generator, settings["angle"]).to(device)

    def epoch_views(generator: torch.Generator, elements: torch.Tensor):
        n = len(clean_train)
        first = torch.randint(order, (n,), generator=generator).to(device)
        x1 = augment(clean_train, first, angles(n, generator))
        if settings["second_view"] == "exact":
            return EpochViews(x1)
        return EpochViews(x1, gx=augment(x1, elements, angles(n, generator)))

    return epoch_views


EXPERIMENTS: dict[str, Callable[..., ExperimentSetup]] = {"ddmnist": ddmnist_setup}


def augments_per_epoch(run: dict) -> bool:
    """Whether a run's training inputs are augmented afresh every epoch (`augmentation.per_epoch`
    of its experiment's config). Absent, as in runs of library users and older settings: False,
    the stored draw every epoch."""
    return bool(run.get("augmentation", {}).get("per_epoch", False))


def group_element_views(x_train: torch.Tensor, group_order: int, action: Action):
    """epoch_views moving every training sample by a fresh, uniformly drawn group element each
    epoch (labels invariant), as the authors' data sets draw one when a sample is fetched."""
    def epoch_views(generator: torch.Generator, elements: torch.Tensor) -> EpochViews:
        drawn = torch.randint(group_order, (len(x_train),), generator=generator).to(x_train.device)
        return EpochViews(action(x_train, drawn))

    return epoch_views


def setup_experiment(run: dict, device: torch.device) -> ExperimentSetup:
    """Build the experiment named by run["experiment"] from the run's settings (one dict, the
    same that the workflow writes into train.json)."""
    name = run["experiment"]
    if name not in EXPERIMENTS:
        raise KeyError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    return EXPERIMENTS[name](run, device)


def evaluate_experiment(setup: ExperimentSetup, run: dict) -> dict:
    """The test metrics of setup.model (its trained state already loaded): the task metric on every
    test set, the latent equivariance error on the first (where the latent carries an action), the
    experiment's own extra metrics, and the run's identity and settings."""
    from .models import count_parameters

    model = setup.model
    was_training = model.training
    model.eval()
    metrics = {f"{name}_{setup.metric_name}": setup.test_metric(model, x, y)
               for name, (x, y) in setup.test_sets.items()}
    first_test_set = next(iter(setup.test_sets.values()))[0]
    if setup.latent_action is not None:  # None: a latent without a group action (SMOKE MLP)
        metrics.update(latent_equivariance_error(
            model, first_test_set, setup.data.group_order, setup.input_action,
            setup.latent_action, setup.data.prepare, seed=run["seed"]))
    if setup.extra_metrics is not None:
        metrics.update(setup.extra_metrics(model))
    if setup.n_classes:
        metrics.update(chance_accuracy=1.0 / setup.n_classes, test_samples=len(first_test_set))
    model.train(was_training)
    metrics.update({
        "experiment": run["experiment"], "group": run["group"], "model": run["model"],
        "seed": run["seed"], "parameters": count_parameters(model), "synthetic": setup.synthetic,
        "lr": run["lr"], "lambda": run["weights"].get("equivariance", 0.0)})
    return metrics


# ---------------------------------------------------------------------------------------------
# Exploratory experiments (Section 4): the latent representation is learned.
# ---------------------------------------------------------------------------------------------

def learned_setup(run: dict, device: torch.device, splits: dict, input_action: Action,
                  output_action: Action, task_loss: Callable, metric: Callable, metric_name: str,
                  maximize: bool, synthetic: bool, n_classes: int | None = None,
                  epoch_views: Callable | None = None) -> ExperimentSetup:
    """Shared by the three exploratory experiments: network + learnable W_s + the Section 4 loss.

    `splits` maps train/val/test to (x, y) float tensors already on the device; `epoch_views`
    (TaskData's) gives fresh training views every epoch, None trains on splits["train"]."""
    from .groups import group_from_name
    from .learned import (LearnedRepresentation, LearnedWeights, eigenvalue_record, learned_metrics,
                          learned_objective)
    from .rotations import homomorphism_error

    group = group_from_name(run["group"])
    network = run["network"]
    model = build_model(network["name"], **{k: v for k, v in network.items() if k != "name"})
    model.representation = LearnedRepresentation(
        group, model.latent_dim, run["init"], torch.Generator().manual_seed(run["seed"]))
    model = model.to(device)
    objective = learned_objective(LearnedWeights(**run["weights"]), task_loss, input_action,
                                  output_action)

    def latent_action(z, g):
        return apply_matrices(model.representation.element_matrices(), g, z)

    def extra_metrics(trained) -> dict:
        x, y = splits["test"]
        metrics = {f"test_{k}": v for k, v in learned_metrics(
            trained, x, y, group.order, task_loss, input_action, output_action, lambda t: t,
            seed=run["seed"]).items()}
        # how far the input action itself is from a homomorphism (0 for exact permutations,
        # nonzero for the interpolated 120° rotation of D3)
        defect = homomorphism_error(input_action, group, x[:256])
        metrics.update(input_action_homomorphism_error_mean=defect["mean"],
                       input_action_homomorphism_error_max=defect["max"])
        return metrics

    (x_train, y_train), (x_val, y_val) = splits["train"], splits["val"]
    data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                    group_order=group.order, objective=objective, val_metric=metric,
                    maximize=maximize, epoch_metrics=eigenvalue_record, epoch_views=epoch_views)
    return ExperimentSetup(model=model, data=data, test_sets={"test": splits["test"]},
                           test_metric=metric, metric_name=metric_name, synthetic=synthetic,
                           input_action=input_action, latent_action=latent_action,
                           output_action=output_action, task_loss=task_loss,
                           extra_metrics=extra_metrics, n_classes=n_classes)


def reconstruction_error(model, x, y, batch_size: int = 1000) -> float:
    """Mean squared reconstruction error of an autoencoder (y: target images, first channel)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        total = sum(F.mse_loss(model(x[i:i + batch_size]), y[i:i + batch_size, :1], reduction="sum").item()
                    for i in range(0, len(x), batch_size))
    model.train(was_training)
    return total / y[:, :1].numel()


def image_mse(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Autoencoder task loss: MSE against the target's first channel (its own image)."""
    return F.mse_loss(output, target[:, :1])


def tmnist_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """C2 on two typefaces: a sample is (own font, other font); g = 1 swaps the channels."""
    from . import tmnist

    stored, meta = tmnist.load_tmnist(run["data"])
    splits = {}
    for split in ("train", "val", "test"):
        x = torch.from_numpy(tmnist.as_pair_channels(stored[split])).to(device).float().div_(255)
        splits[split] = (x, x)  # an autoencoder: the target is the input
    epoch_views = None
    if augments_per_epoch(run):
        if "clean" not in stored["train"]:
            raise KeyError(f"{run['data']} holds no untransformed pairs (train_clean) for the "
                           "per-epoch augmentation; rebuild it")
        clean = torch.from_numpy(tmnist.as_pair_channels(
            {"pairs": stored["train"]["clean"], "fonts": stored["train"]["fonts"]})).to(device)

        def epoch_views(generator: torch.Generator, elements: torch.Tensor) -> EpochViews:
            # a fresh rotation and scale per sample every epoch, the data set's ranges
            x = tmnist.augment_pairs(clean, generator, meta["angle_range"], meta["scale_range"])
            return EpochViews(x, y=x)  # an autoencoder: the target is the augmented input
    return learned_setup(run, device, splits, tmnist.font_swap_action, tmnist.font_swap_action,
                         image_mse, reconstruction_error, "reconstruction_mse", maximize=False,
                         synthetic=bool(meta.get("synthetic", False)), epoch_views=epoch_views)


def mnist_d3_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """D3 on MNIST augmented by arbitrary rotations: r a 120° rotation, s a flip about the vertical
    axis (bilinear interpolation, so the action is only approximately a homomorphism)."""
    from .mnist import load_mnist
    from .rotations import d3_image_action, rotate_bilinear

    mnist = load_mnist(run["data"])
    sizes = run["sizes"]
    rng = torch.Generator().manual_seed(run["data_seed"])
    train = torch.from_numpy(mnist["train_images"])
    chosen = torch.randperm(len(train), generator=rng)[: sizes["train"] + sizes["val"]]
    parts = {"train": train[chosen[: sizes["train"]]], "val": train[chosen[sizes["train"]:]],
             "test": torch.from_numpy(mnist["test_images"])[: sizes["test"]]}
    splits = {}
    for split, images in parts.items():
        x = images.unsqueeze(1).float().div_(255)
        # "augmented by arbitrary rotations"; drawn for every split, so that validation and test
        # are the same draws whether or not training is augmented per epoch
        angles = torch.rand(len(x), generator=rng) * 360.0
        x = rotate_bilinear(x, angles).to(device)
        splits[split] = (x, x)
    epoch_views = None
    if augments_per_epoch(run):  # a fresh angle per training image every epoch
        clean_train = parts["train"].unsqueeze(1).to(device).float().div_(255)

        def epoch_views(generator: torch.Generator, elements: torch.Tensor) -> EpochViews:
            angles = torch.rand(len(clean_train), generator=generator).to(device) * 360.0
            x = rotate_bilinear(clean_train, angles)
            return EpochViews(x, y=x)  # an autoencoder: the target is the augmented input
    action = d3_image_action(run["rotation_degrees"])
    return learned_setup(run, device, splits, action, action, image_mse, reconstruction_error,
                         "reconstruction_mse", maximize=False, synthetic=bool(mnist["synthetic"]),
                         epoch_views=epoch_views)


def cifar10_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """C4 acting on 32×32 RGB images by quarter turns; labels invariant."""
    from .actions import image_action
    from .cifar10 import load_cifar10
    from .groups import group_from_name

    data = load_cifar10(run["data"])
    sizes = run["sizes"]

    def tensors(images, labels, count):
        x = torch.from_numpy(images[:count]).permute(0, 3, 1, 2).float().div_(255).to(device)
        return x, torch.from_numpy(labels[:count]).long().to(device)

    n_train = sizes["train"]
    splits = {
        "train": tensors(data["train_images"], data["train_labels"], n_train),
        "val": tensors(data["train_images"][n_train:], data["train_labels"][n_train:], sizes["val"]),
        "test": tensors(data["test_images"], data["test_labels"], sizes["test"]),
    }
    group = group_from_name(run["group"])
    action = image_action(group, 32).to(device)

    def metric(model, x, y):
        return accuracy(model, x, y)

    # per epoch: every training image turned by a fresh quarter turn (the authors' x1)
    epoch_views = (group_element_views(splits["train"][0], group.order, action)
                   if augments_per_epoch(run) else None)
    return learned_setup(run, device, splits, action, trivial_action, F.cross_entropy, metric,
                         "accuracy", maximize=True, synthetic=bool(data["synthetic"]), n_classes=10,
                         epoch_views=epoch_views)


EXPERIMENTS.update({"tmnist": tmnist_setup, "mnist_d3": mnist_d3_setup, "cifar10": cifar10_setup})


# ---------------------------------------------------------------------------------------------
# SMOKE (Section 6.3): autoregressive prediction of velocity fields, C4 on grid and vectors.
# ---------------------------------------------------------------------------------------------

def smoke_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: data (folder of sim_KK.npz), splits (SmokeSplits fields), horizons, network, weights."""
    from pathlib import Path

    from .smoke_data import SmokeSplits, gather_windows, split_windows
    from .smoke_sim import load_simulation
    from .smoke_task import SmokeWeights, rollout_rmse, smoke_objective
    from .velocity import rotate_grid, rotate_velocity

    splits = SmokeSplits.from_config(run["splits"])
    paths = sorted(Path(run["data"]).glob("sim_*.npz"))
    loaded = [load_simulation(p) for p in paths]
    ks = [int(meta["k"]) for _, meta in loaded]
    frames = torch.stack([torch.from_numpy(arrays["velocity"]) for arrays, _ in loaded]).to(device)
    index_of_k = {k: i for i, k in enumerate(ks)}
    longest = max(run["horizons"])  # test windows must hold the longest rollout that is reported
    horizons = {"train": splits.train_horizon, "val": splits.train_horizon, "future": longest,
                "domain": longest}
    windows = {name: w.to(device) for name, w in split_windows(splits, frames.shape[1], horizons).items()}

    def inputs_of(batch):
        return gather_windows(frames, index_of_k, batch, splits.frame_offset, splits.input_frames)

    def targets_of(batch, horizon):
        return gather_windows(frames, index_of_k, batch, splits.frame_offset + splits.input_frames, horizon)

    def val_rmse(model, x, y):
        return rollout_rmse(model, y, inputs_of, targets_of, splits.train_horizon)

    network = run["network"]
    # a network that reads the whole frame (the MLP, Lift's MLP) is told the grid's side
    grid = {"grid": frames.shape[-1]} if takes_argument(network["name"], "grid") else {}
    model = build_model(network["name"], **grid, **{k: v for k, v in network.items() if k != "name"}).to(device)
    if getattr(model, "latent_action", rotate_grid) is None and run["weights"].get("equivariance", 0.0) > 0:
        raise ValueError(f"network {network['name']!r} has no latent action: its latent equivariance "
                         "weight must be 0")
    objective = smoke_objective(SmokeWeights(**run["weights"]), targets_of, splits.train_horizon)
    data = TaskData(x_train=windows["train"], y_train=windows["train"], x_val=windows["val"],
                    y_val=windows["val"], group_order=4, objective=objective, val_metric=val_rmse,
                    prepare=inputs_of, maximize=False)
    # The trainer gathers inputs with `prepare`; targets travel as window indices (y = windows).
    def extra_metrics(trained) -> dict:  # RMSE at every configured test horizon
        return {f"{name}_rmse_h{h}": rollout_rmse(trained, windows[name], inputs_of, targets_of, h)
                for name in ("future", "domain") for h in run["horizons"]}

    return ExperimentSetup(
        model=model, data=data,
        test_sets={name: (windows[name], windows[name]) for name in ("future", "domain")},
        test_metric=val_rmse, metric_name="rmse", synthetic=False,
        input_action=rotate_velocity, output_action=rotate_velocity,
        # the ConvNet's latent is acted on by turning the grid; a baseline brings its own (E2CNN:
        # grid and regular fields, baselines.e2cnn_latent_action), or None where its latent
        # carries no action (the MLP: no latent equivariance is measured)
        latent_action=getattr(model, "latent_action", rotate_grid),
        extra_metrics=extra_metrics)


EXPERIMENTS["smoke"] = smoke_setup


# ---------------------------------------------------------------------------------------------
# MedMNIST3D (Section 6.2): O ≅ S4 rotating 28³ volumes by exact voxel permutations.
# ---------------------------------------------------------------------------------------------

SPLIT_SEEDS = {"train": 0, "val": 1, "test": 2}


def stratified_sample(labels, count: int, seed) -> "np.ndarray":
    """Sorted indices of `count` samples drawn round-robin over the classes in a seeded random
    order, so a small subset still holds every class (AUC is undefined for an absent class)."""
    import numpy as np

    order = np.random.default_rng(seed).permutation(len(labels))
    rank = np.empty(len(labels), dtype=np.int64)
    for c in np.unique(labels):
        members = order[labels[order] == c]
        rank[members] = np.arange(len(members))
    position = np.empty(len(labels), dtype=np.int64)
    position[order] = np.arange(len(labels))
    chosen = np.lexsort((position, rank))[:count]
    return np.sort(chosen)


def medmnist_setup(run: dict, device: torch.device) -> ExperimentSetup:
    """run: experiment (the medmnist flag), data (folder of {flag}.npz), group (O), network,
    weights, eval_batch_size, rotated_test_seed, subset (None, or at most this many volumes per
    split, a seeded sample by data_seed).

    Test sets: the unrotated test split (the paper's number) and the same volumes each rotated by a
    seeded random element of O (identical for every model and seed). Extra metrics: AUC and
    accuracy by medmnist's Evaluator functions on both."""
    import numpy as np

    from .actions import volume_action
    from .groups import group_from_name
    from .medmnist3d import SIDE, load_medmnist

    flag = run["experiment"]
    data = load_medmnist(run["data"], flag)
    info = data["info"]
    group = group_from_name(run["group"])
    input_action = volume_action(group, SIDE).to(device)
    network = dict(run["network"], n_classes=info["n_classes"], n_channels=info["n_channels"])
    rep = latent_representation(group, network["latent_dim"]).to(device)
    eval_batch = run["eval_batch_size"]

    subset = run.get("subset") or {}

    def tensors(split: str):
        images, labels = data[split]
        if split in subset and subset[split] < len(labels):  # quick runs on real data
            keep = stratified_sample(labels, subset[split], [run["data_seed"], SPLIT_SEEDS[split]])
            images, labels = images[keep], labels[keep]
        return torch.from_numpy(images).unsqueeze(1).to(device), torch.from_numpy(labels).to(device)

    def prepare(x: torch.Tensor) -> torch.Tensor:  # protocols.md: (x/255 − 0.5)/0.5
        return x.float().div_(255.0).sub_(0.5).div_(0.5)

    def metric(model, x, y):
        return accuracy(model, x, y, prepare, eval_batch)

    def latent_action(z, g):
        return apply_matrices(rep, g, z)

    x_test, y_test = tensors("test")
    rotation = torch.randint(group.order, (len(x_test),),
                             generator=torch.Generator().manual_seed(run["rotated_test_seed"]))
    x_test_rotated = input_action(x_test, rotation.to(device))

    model = build_model(network.pop("name"), **network).to(device)
    objective = method_objective(LossWeights(**run["weights"]), F.cross_entropy, input_action,
                                 latent_action, trivial_action)
    (x_train, y_train), (x_val, y_val) = tensors("train"), tensors("val")
    # per epoch: every training volume rotated by a fresh element of O (the authors' x1 = g1·x);
    # the objective's shifted term then sees g·x1, their x2
    task_data = TaskData(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                         group_order=group.order, objective=objective, val_metric=metric,
                         prepare=prepare, maximize=True,
                         epoch_views=(group_element_views(x_train, group.order, input_action)
                                      if augments_per_epoch(run) else None))

    def extra_metrics(trained) -> dict:
        # medmnist's own metric functions (those its Evaluator calls), on our labels: a subset of
        # the test split has fewer labels than the Evaluator would read from the file
        from medmnist.evaluator import getACC, getAUC

        metrics = {}
        labels = y_test.cpu().numpy()
        for name, x in (("test", x_test), ("test_rotated", x_test_rotated)):
            was_training = trained.training
            trained.eval()
            with torch.no_grad():
                scores = torch.cat([torch.softmax(trained(prepare(x[i:i + eval_batch])), 1)
                                    for i in range(0, len(x), eval_batch)]).cpu().double().numpy()
            trained.train(was_training)
            metrics[f"{name}_auc"] = float(getAUC(labels, scores, info["task"]))
            metrics[f"{name}_evaluator_accuracy"] = float(getACC(labels, scores, info["task"]))
        return metrics

    return ExperimentSetup(model=model, data=task_data,
                           test_sets={"test": (x_test, y_test), "test_rotated": (x_test_rotated, y_test)},
                           test_metric=metric, metric_name="accuracy", synthetic=data["synthetic"],
                           input_action=input_action, latent_action=latent_action,
                           extra_metrics=extra_metrics, n_classes=info["n_classes"])


EXPERIMENTS.update({flag: medmnist_setup for flag in ("nodulemnist3d", "synapsemnist3d", "organmnist3d")})
