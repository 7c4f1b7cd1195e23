"""Every network by name: the method's (networks) and the equivariant baselines (baselines; escnn
is imported only when one is built). build_model is how experiments get their network."""
from __future__ import annotations

from typing import Callable

from approxeq.nn.baselines import (
    BASELINE_BUILDERS,
    INSTALL_HINT,
    TORCH_BASELINE_BUILDERS,
    escnn_available,
)
from approxeq.nn.encoder_head import EncoderHead
from approxeq.nn.networks import (
    cifar10_cnn,
    ddmnist_cnn,
    medmnist_resnet3d,
    mnist_mlp_autoencoder,
    smoke_convnet,
    tmnist_autoencoder,
)

MODEL_BUILDERS: dict[str, Callable[..., EncoderHead]] = {
    "smoke_convnet": smoke_convnet,
    "ddmnist_cnn": ddmnist_cnn,
    "tmnist_autoencoder": tmnist_autoencoder,
    "mnist_mlp_autoencoder": mnist_mlp_autoencoder,
    "cifar10_cnn": cifar10_cnn,
    "medmnist_resnet3d": medmnist_resnet3d,
}


MODEL_BUILDERS.update(BASELINE_BUILDERS)
MODEL_BUILDERS.update(TORCH_BASELINE_BUILDERS)


def missing_package(name: str) -> str | None:
    """Why known network `name` cannot be built in this environment (its optional package, escnn,
    is missing; the message says how to install it), or None. Unknown names are network_problem's."""
    if name in BASELINE_BUILDERS and not escnn_available():
        return INSTALL_HINT
    return None


def network_problem(name: str) -> str | None:
    """Why network `name` cannot be built here (unknown, or its optional package missing), or None."""
    if name not in MODEL_BUILDERS:
        return f"unknown network {name!r}; known: {sorted(MODEL_BUILDERS)}"
    return missing_package(name)


def takes_argument(name: str, argument: str) -> bool:
    """Whether builder `name` has a parameter `argument`."""
    import inspect

    return argument in inspect.signature(MODEL_BUILDERS[name]).parameters


def takes_group(name: str) -> bool:
    """Whether builder `name` is configured per group (a steerable baseline's `group` argument)."""
    return takes_argument(name, "group")


def build_model(name: str, **kwargs) -> EncoderHead:
    if name not in MODEL_BUILDERS:
        raise KeyError(f"unknown network {name!r}; known: {sorted(MODEL_BUILDERS)}")
    return MODEL_BUILDERS[name](**kwargs)
