"""What every experiment returns to the trainer and the evaluation (ExperimentSetup), the test
metrics of a trained run, and the per-epoch augmentation helpers the experiments share."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from approxeq.algebra.actions import trivial_action
from approxeq.method.evaluate import latent_equivariance_error
from approxeq.method.loss import Action
from approxeq.method.train import EpochViews, TaskData
from approxeq.nn.encoder_head import EncoderHead, count_parameters


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


def evaluate_experiment(setup: ExperimentSetup, run: dict) -> dict:
    """The test metrics of setup.model (its trained state already loaded): the task metric on every
    test set, the latent equivariance error on the first (where the latent carries an action), the
    experiment's own extra metrics, and the run's identity and settings."""
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


def model_network(block: dict, model: dict) -> dict:
    """A model's network: its experiment block's `network` with the model's own `network` keys on top."""
    return {**block["network"], **model.get("network", {})}
