"""How much of a run's validation accuracy is its BatchNorm running statistics.

Why: at paper scale the DDMNIST validation accuracy swings by up to 0.4 from one epoch to the next
(docs/ddmnist-protocol.md), and early stopping with patience 20 reads that curve. A network's
BatchNorm layers evaluate with running statistics, an exponential average (momentum 0.1) of the
last few training batches' statistics, taken while Adam moved the weights under them.
Recalibrating them, one pass over the training data with the weights fixed and every batch
weighted alike, measures the weights alone. The gap between the two is the share of the running
statistics, luck included, in a validation number.

`python -m approxeq.report.batchnorm_check RUN_DIR...` applies it to finished runs.
"""
from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def recalibrate_batchnorm(model: nn.Module, batches) -> nn.Module:
    """Replace every BatchNorm layer's running mean and variance by the plain average of its batch
    statistics over `batches` (iterable of inputs; the weights are not changed). The model is
    left in eval mode with the layers' momenta as they were."""
    layers = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None  # cumulative average: every batch weighs the same
    model.train()
    for x in batches:
        model(x)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum
    return model.eval()


def training_batches(data, seed: int, batch_size: int):
    """One pass over the training data as an epoch draws it: a fresh pose per pair where the
    experiment augments per epoch, and a shuffled order, full batches only, prepared as training
    prepares them. The order matters: data sets are stored sorted by class (DDMNIST: 100 pairs of
    one class after another), and batches of two or three classes have a far smaller variance
    than the population's, so their average would understate every running variance."""
    n = len(data.x_train)
    generator = torch.Generator().manual_seed(seed)
    elements = torch.randint(data.group_order, (n,), generator=generator)
    x = data.epoch_views(generator, elements).x if data.epoch_views is not None else data.x_train
    order = torch.randperm(n, generator=generator).to(x.device)
    for start in range(0, n - batch_size + 1, batch_size):
        yield data.prepare(x[order[start:start + batch_size]])
