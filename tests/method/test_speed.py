"""The training speed-ups (approxeq.runtime.speed, TrainConfig.channels_last / .compile): each is
bit-identical with itself across an interruption, the same function as the plain step up to
rounding, and `auto` turns them on only where they were measured to pay."""
import os

import numpy as np
import pytest
import torch
from checkpoints import (
    assert_interrupted_run_resumes_bit_identically,  # tests/ is on sys.path
)

from approxeq.data.ddmnist import build_ddmnist, save_ddmnist
from approxeq.experiments import setup_experiment
from approxeq.method.train import TrainConfig, set_determinism
from approxeq.runtime.speed import resolve_speed


@pytest.fixture(autouse=True)
def _deterministic():
    """The workflow's default (compute.deterministic), restored afterwards."""
    before = (torch.are_deterministic_algorithms_enabled(),
              torch.utils.deterministic.fill_uninitialized_memory)
    set_determinism(True)
    yield
    torch.use_deterministic_algorithms(before[0])
    torch.utils.deterministic.fill_uninitialized_memory = before[1]


@pytest.fixture(scope="module")
def ddmnist_file(tmp_path_factory):
    """A tiny DDMNIST D4 file on blob digits (100 training pairs)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.uniform(9, 19, (2, 400, 1, 1))
    digits = (255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2 / 4) / 18)).astype(np.uint8)
    labels = np.arange(400) % 10
    mnist = {"train_images": digits[:200], "train_labels": labels[:200], "test_images": digits[200:],
             "test_labels": labels[200:], "synthetic": True}
    splits = build_ddmnist(mnist, "D4", True, seed=0, per_class={"train": 1, "val": 1, "test": 1})
    path = tmp_path_factory.mktemp("ddmnist") / "D4.npz"
    save_ddmnist(path, splits, {"group": "D4", "artefacts": True, "synthetic": True,
                                "canvas": {"size": 56, "top": 14}})
    return path


def settings(path):
    return {"experiment": "ddmnist", "group": "D4", "model": "ours", "seed": 0, "data": str(path),
            "network": {"name": "ddmnist_cnn", "c": 2, "latent_dim": 66, "n_classes": 100},
            "weights": {"task": 1.0, "shift": 0.0, "equivariance": 1.0},
            "latent": {"placement": "bn_elu", "penalty": "normalised"},
            "augmentation": {"per_epoch": True, "second_view": "exact", "angle": "integer"}}


def test_a_channels_last_run_resumes_bit_identically(ddmnist_file, tmp_path):
    assert_interrupted_run_resumes_bit_identically(
        settings(ddmnist_file),
        TrainConfig(lr=1e-3, batch_size=50, epochs=2, patience=5, seed=0, channels_last=True), tmp_path)


def test_channels_last_computes_the_same_step_up_to_rounding_and_is_its_own_identity(ddmnist_file):
    """The CNN's loss and gradients on one batch, NCHW against NHWC (weights and batch), in float64:
    equal up to rounding (in float32 they differ by about 4e-4 relative: the first layers sum
    10⁵ products per weight, and a conv bias before a BatchNorm has gradient 0 up to rounding)."""
    cnn = {**settings(ddmnist_file), "model": "cnn", "weights": {"task": 1.0, "shift": 0.0, "equivariance": 0.0}}
    setup = setup_experiment(cnn, torch.device("cpu"))
    model = setup.model.double()
    x = setup.data.prepare(setup.data.x_train[:50]).double()
    y, g = setup.data.y_train[:50], torch.arange(50) % setup.data.group_order
    results = []
    for channels_last in (False, True):
        if channels_last:
            model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        model.zero_grad()
        loss, _ = setup.data.objective(model, x, y, g)
        loss.backward()
        results.append((loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (loss, grads), (loss_cl, grads_cl) = results
    assert model.encoder[1][0].weight.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(loss_cl, loss, rtol=1e-12, atol=0)
    assert ((grads_cl - grads).norm() / grads.norm()).item() < 1e-10
    assert (TrainConfig(1e-3, 50, 1, 5, 0).fingerprint()
            != TrainConfig(1e-3, 50, 1, 5, 0, channels_last=True).fingerprint())


# Compiling takes minutes on a CPU (174 s for this test on the loaded 2-core machine, 3 compilations;
# even a two-layer MLP took 46 s with an empty cache), too long for every test run.
COMPILE_TESTS = os.environ.get("APPROXEQ_COMPILE_TESTS") == "1"


@pytest.mark.skipif(not COMPILE_TESTS, reason="compiles for minutes; APPROXEQ_COMPILE_TESTS=1 runs it")
def test_a_compiled_run_resumes_bit_identically(ddmnist_file, tmp_path):
    """Compiled (inductor) training: the resumed run compiles again and goes on exactly."""
    if not resolve_speed({"compile": "auto"}, "ddmnist_cnn", "cpu", 10**9).compile:
        pytest.skip("no C++ compiler for torch.compile")
    assert_interrupted_run_resumes_bit_identically(
        settings(ddmnist_file),
        TrainConfig(lr=1e-3, batch_size=50, epochs=2, patience=5, seed=0, compile=True), tmp_path)


@pytest.mark.skipif(not COMPILE_TESTS, reason="compiles for minutes; APPROXEQ_COMPILE_TESTS=1 runs it")
def test_the_compiled_step_with_our_inductor_options_is_the_eager_step_up_to_rounding(ddmnist_file):
    """COMPILE_OPTIONS (recompute instead of store) change the order of the arithmetic, not the
    function: the CNN's loss and gradients on one batch, compiled against eager, in float64, agree up
    to rounding (in float32 the gradients differ by about 6e-4 relative, as channels-last against
    NCHW do: see the test above)."""
    from approxeq.method.train import COMPILE_OPTIONS

    if not resolve_speed({"compile": "auto"}, "ddmnist_cnn", "cpu", 10**9).compile:
        pytest.skip("no C++ compiler for torch.compile")
    cnn = {**settings(ddmnist_file), "model": "cnn", "weights": {"task": 1.0, "shift": 0.0, "equivariance": 0.0}}
    setup = setup_experiment(cnn, torch.device("cpu"))
    model = setup.model.double().to(memory_format=torch.channels_last)
    x = setup.data.prepare(setup.data.x_train[:50]).double().contiguous(memory_format=torch.channels_last)
    y, g = setup.data.y_train[:50], torch.arange(50) % setup.data.group_order
    compiled = torch.compile(setup.data.objective, dynamic=False, options=COMPILE_OPTIONS)
    results = []
    for objective in (setup.data.objective, compiled):
        model.zero_grad()
        loss, _ = objective(model, x, y, g)
        loss.backward()
        results.append((loss.detach(), torch.cat([p.grad.flatten() for p in model.parameters()])))
    (loss, grads), (loss_compiled, grads_compiled) = results
    torch.testing.assert_close(loss_compiled, loss, rtol=1e-12, atol=0)
    assert ((grads_compiled - grads).norm() / grads.norm()).item() < 1e-10


@pytest.mark.parametrize("compute, network, device, images, threads, expected", [
    ({}, "ddmnist_cnn", "cpu", 1_497_600, 1, (True, True)),          # paper DDMNIST: 150 × 9,984
    ({}, "ddmnist_cnn", "cpu", 1_497_600, 4, (True, True)),
    ({}, "ddmnist_cnn", "cpu", 3 * 576, 1, (True, False)),            # the quick run: 3 × 576
    ({}, "ddmnist_cnn", "cpu", 3 * 576, 2, (False, False)),           # eager NCHW wins at 2+ threads
    ({"compile": False}, "ddmnist_cnn", "cpu", 1_497_600, 2, (False, False)),
    ({"compile_min_images": 1000}, "ddmnist_cnn", "cpu", 1728, 2, (True, True)),
    ({}, "ddmnist_cnn", "cuda", 1_497_600, 1, (False, False)),        # not measured on a GPU
    ({}, "smoke_convnet", "cpu", 10**9, 1, (False, False)),           # nor for other networks
    ({"channels_last": True, "compile": True}, None, "cuda", 0, 1, (True, True)),
    ({"channels_last": True}, "ddmnist_cnn", "cpu", 0, 4, (True, False)),
    ({"channels_last": False, "compile": False}, "ddmnist_cnn", "cpu", 10**9, 1, (False, False)),
])
def test_auto_turns_speed_ups_on_only_where_measured_to_pay(compute, network, device, images, threads, expected):
    speed = resolve_speed(compute, network, device, images, compiler=True, threads=threads)
    assert (speed.channels_last, speed.compile) == expected
    assert speed.why.count("auto") == sum(compute.get(k, "auto") == "auto" for k in ("channels_last", "compile"))
    assert speed.why.startswith("channels_last")


def test_auto_does_not_compile_without_a_compiler_and_refuses_unknown_values():
    speed = resolve_speed({}, "ddmnist_cnn", "cpu", 10**9, compiler=False)
    assert not speed.compile and "no C++ compiler" in speed.why
    speed = resolve_speed({}, "ddmnist_cnn", "cpu", 10**9, compiler=False, threads=2)
    assert not speed.channels_last and "eager with 2 threads" in speed.why
    with pytest.raises(ValueError, match="compute.compile must be auto, true or false"):
        resolve_speed({"compile": "yes"}, "ddmnist_cnn", "cpu", 0)
