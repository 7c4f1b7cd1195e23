"""The trainer: bit-identical reruns, exact resume, NaN and divergence stops, the best state is a
copy, untrusted checkpoints, the run-folder lock."""
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from approxeq.algebra.actions import image_action, trivial_action
from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.method.evaluate import accuracy, latent_equivariance_error
from approxeq.method.loss import LossWeights, method_objective
from approxeq.method.train import (
    DivergedError,
    NonFiniteLossError,
    TaskData,
    TrainConfig,
    seed_everything,
    train,
)
from approxeq.nn.encoder_head import EncoderHead
from approxeq.runtime.io import LockHeldError

SIZE, D = 8, 10


def make_task(seed=0, nan=False):
    seed_everything(seed)
    group = group_from_name("C4")
    action = image_action(group, SIZE)
    rep = latent_representation(group, D)
    generator = torch.Generator().manual_seed(123)
    x = torch.rand(96, 1, SIZE, SIZE, generator=generator)
    y = (x[:, 0, :4].mean((1, 2)) > x[:, 0, 4:].mean((1, 2))).long()
    if nan:
        x[5, 0, 0, 0] = float("nan")
    encoder = nn.Sequential(nn.Flatten(), nn.Linear(SIZE * SIZE, 16), nn.BatchNorm1d(16), nn.ELU(),
                            nn.Linear(16, D))
    model = EncoderHead(encoder, nn.Linear(D, 2), D)
    latent_action = lambda z, g: apply_matrices(rep, g, z)  # noqa: E731
    objective = method_objective(LossWeights(task=1.0, shift=0.5, equivariance=1.0), F.cross_entropy,
                                 action, latent_action, trivial_action)
    data = TaskData(x_train=x[:64], y_train=y[:64], x_val=x[64:], y_val=y[64:],
                    group_order=group.order, objective=objective,
                    val_metric=lambda m, a, b: accuracy(m, a, b),
                    epoch_metrics=lambda m: {"head_norm": m.head.weight.norm().item()})
    data.actions = (action, latent_action)
    return model, data


CFG = TrainConfig(lr=1e-2, batch_size=16, epochs=5, patience=10, seed=3, settings={"test": 1})


def strip_timing(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_second")} for r in history]


def test_same_seed_gives_identical_results(tmp_path):
    results = []
    for run in ("a", "b"):
        model, data = make_task()
        results.append(train(model, data, CFG, tmp_path / run, log=lambda m: None))
    assert strip_timing(results[0].history) == strip_timing(results[1].history)
    for key in results[0].best_state:
        assert torch.equal(results[0].best_state[key], results[1].best_state[key])
    # and a different seed gives different numbers (the test can fail)
    model, data = make_task()
    other = train(model, data, TrainConfig(**{**CFG.__dict__, "seed": 4}), tmp_path / "c", log=lambda m: None)
    assert strip_timing(other.history) != strip_timing(results[0].history)


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    model, data = make_task()
    straight = train(model, data, CFG, tmp_path / "straight", log=lambda m: None)

    def crash_after_two(epoch):
        if epoch == 2:
            raise KeyboardInterrupt("simulated preemption")

    model, data = make_task()
    with pytest.raises(KeyboardInterrupt):
        train(model, data, CFG, tmp_path / "resumed", log=lambda m: None, on_epoch_end=crash_after_two)
    messages = []
    model, data = make_task(seed=99)  # fresh process: different init, must be overwritten by the checkpoint
    resumed = train(model, data, CFG, tmp_path / "resumed", log=messages.append)
    assert any("resumed" in m and "epoch 2" in m for m in messages)
    assert strip_timing(resumed.history) == strip_timing(straight.history)
    for key in straight.best_state:
        assert torch.equal(resumed.best_state[key], straight.best_state[key])
    lines = (tmp_path / "resumed" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    assert all("head_norm" in json.loads(line) for line in lines)  # epoch_metrics are recorded


def test_changed_config_refuses_to_resume(tmp_path):
    model, data = make_task()
    train(model, data, TrainConfig(**{**CFG.__dict__, "epochs": 1}), tmp_path, log=lambda m: None)
    model, data = make_task()
    with pytest.raises(RuntimeError, match=r"belongs to other training \(changed: settings.epochs: 1 → 5; "
                                           r"settings.lr: 0.01 → 0.5\)"):
        train(model, data, TrainConfig(**{**CFG.__dict__, "lr": 0.5}), tmp_path, log=lambda m: None)
    model, data = make_task()
    with pytest.raises(RuntimeError, match=r"changed: settings.epochs: 1 → 5; settings.settings"):
        train(model, data, TrainConfig(**{**CFG.__dict__, "settings": {"test": 2}}), tmp_path,
              log=lambda m: None)
    messages = []
    model, data = make_task()
    restarted = train(model, data, TrainConfig(**{**CFG.__dict__, "lr": 0.5}), tmp_path,
                      log=messages.append, stale_checkpoint="restart")
    assert any("moved it to checkpoint.pt.stale and starting over" in m for m in messages), messages
    assert len(restarted.history) == CFG.epochs
    assert (tmp_path / "checkpoint.pt.stale").exists()  # set aside, never deleted


# torch.__version__ as it is (a str subclass the weights-only unpickler refuses unless made plain)
IDENTITY = {"data": {"d.npz": "a" * 64}, "code": "c0de", "torch": torch.__version__}


@pytest.mark.parametrize("change, said", [
    ({"data": {"d.npz": "b" * 64}}, "data.d.npz: " + "a" * 64 + " → " + "b" * 64),
    ({"code": "beef"}, "code: c0de → beef"),
    ({"torch": "0.0.1"}, f"torch: {torch.__version__} → 0.0.1"),
])
def test_a_finished_checkpoint_of_other_data_or_code_is_set_aside_not_reused(tmp_path, change, said):
    """The settings alone do not identify a model: a rebuilt data file (same path, new content) or
    changed training code must train again, saying what changed."""
    model, data = make_task()
    train(model, data, TrainConfig(**{**CFG.__dict__, "inputs": IDENTITY}), tmp_path, log=lambda m: None)
    messages, epochs = [], []
    model, data = make_task()
    again = train(model, data, TrainConfig(**{**CFG.__dict__, "inputs": {**IDENTITY, **change}}), tmp_path,
                  log=messages.append, on_epoch_end=epochs.append, stale_checkpoint="restart")
    assert epochs == list(range(1, CFG.epochs + 1)) and len(again.history) == CFG.epochs
    assert not any("reusing the finished" in m for m in messages)
    assert any(said in m and "checkpoint.pt.stale" in m for m in messages), messages
    # the same identity again: the finished checkpoint is reused
    messages = []
    model, data = make_task()
    train(model, data, TrainConfig(**{**CFG.__dict__, "inputs": {**IDENTITY, **change}}), tmp_path,
          log=messages.append, stale_checkpoint="restart")
    assert any("reusing the finished" in m for m in messages)


def test_code_fingerprint_follows_the_training_code_not_the_runtime_modules(tmp_path, monkeypatch):
    import sys
    import types

    from approxeq.runtime import identity

    before = identity.code_fingerprint()
    modules = identity.code_modules()
    assert "approxeq.method.train" in modules and "approxeq.runtime.io" not in modules
    assert not any(name.startswith("approxeq.runtime") for name in modules)
    source = tmp_path / "extra.py"
    source.write_text("X = 1\n")
    module = types.ModuleType("approxeq._probe")
    module.__file__ = str(source)
    monkeypatch.setitem(sys.modules, "approxeq._probe", module)
    with_probe = identity.code_fingerprint()
    assert with_probe != before
    source.write_text("X = 2\n")  # an edit of a loaded module changes the fingerprint
    assert identity.code_fingerprint() not in (before, with_probe)
    monkeypatch.setitem(sys.modules, "approxeq.runtime.io", types.SimpleNamespace(__file__=str(source)))
    monkeypatch.delitem(sys.modules, "approxeq._probe")
    assert identity.code_fingerprint() == before  # runtime-only modules are not part of it


def test_nan_loss_stops_the_run(tmp_path):
    model, data = make_task(nan=True)
    with pytest.raises(NonFiniteLossError, match="loss is nan at epoch 1"):
        train(model, data, CFG, tmp_path, log=lambda m: None)


def test_best_state_is_a_copy_from_the_best_epoch(tmp_path):
    model, data = make_task()
    scores = iter([0.1, 0.9, 0.2, 0.3, 0.4])
    data.val_metric = lambda m, a, b: next(scores)
    snapshots = {}

    def snapshot(epoch):
        snapshots[epoch] = {k: v.clone() for k, v in model.state_dict().items()}

    result = train(model, data, CFG, tmp_path, log=lambda m: None, on_epoch_end=snapshot)
    assert result.best_epoch == 2 and result.best_metric == 0.9
    weight = "encoder.1.weight"
    assert torch.equal(result.best_state[weight], snapshots[2][weight])
    assert not torch.equal(result.best_state[weight], model.state_dict()[weight])  # not the last model


def test_early_stopping_with_patience(tmp_path):
    model, data = make_task()
    scores = iter([0.5, 0.4, 0.4, 0.4, 0.4])
    data.val_metric = lambda m, a, b: next(scores)
    cfg = TrainConfig(**{**CFG.__dict__, "patience": 2})
    result = train(model, data, cfg, tmp_path, log=lambda m: None)
    assert len(result.history) == 3 and result.best_epoch == 1
    # a rerun after early stopping does not train further, and rewrites the history file
    (tmp_path / "history.jsonl").unlink()
    model, data = make_task()
    again = train(model, data, cfg, tmp_path, log=lambda m: None)
    assert len(again.history) == 3
    assert len((tmp_path / "history.jsonl").read_text().splitlines()) == 3


def test_latent_equivariance_error_is_zero_for_the_identity_action():
    model, data = make_task()
    error = latent_equivariance_error(model, data.x_val, 4, lambda x, g: x, lambda z, g: z)
    assert error["latent_equivariance_mse"] == 0.0
    error = latent_equivariance_error(model, data.x_val, 4, *data.actions)
    assert error["latent_equivariance_mse"] > 0 and error["latent_equivariance_relative"] > 0


# --- checkpoints that cannot be trusted, divergence, the run-folder lock ---------------

class _Exploit:
    """Unpickling this runs code: writes `marker`. A planted checkpoint.pt must never do that."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('pwned')",))


def test_planted_checkpoint_cannot_run_code(tmp_path):
    run_dir, marker = tmp_path / "run", tmp_path / "pwned"
    run_dir.mkdir()
    torch.save({"fingerprint": CFG.fingerprint(), "model": _Exploit(marker), "optimizer": {},
                "scheduler": {}, "state": {}}, run_dir / "checkpoint.pt")
    messages = []
    model, data = make_task()
    result = train(model, data, CFG, run_dir, log=messages.append)
    assert not marker.exists()
    assert len(result.history) == CFG.epochs  # trained from scratch instead
    assert (run_dir / "checkpoint.pt.corrupt").exists()
    assert any(str(run_dir / "checkpoint.pt") in m and "moved" in m for m in messages)


def test_truncated_checkpoint_is_named_set_aside_and_training_starts_over(tmp_path):
    model, data = make_task()
    straight = train(model, data, CFG, tmp_path / "straight", log=lambda m: None)
    path = tmp_path / "straight" / "checkpoint.pt"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a crash mid-copy, a full disk
    messages = []
    model, data = make_task()
    again = train(model, data, CFG, tmp_path / "straight", log=messages.append)
    assert any(str(path) in m and "cannot be loaded" in m and "checkpoint.pt.corrupt" in m
               for m in messages), messages
    assert (tmp_path / "straight" / "checkpoint.pt.corrupt").exists()
    assert strip_timing(again.history) == strip_timing(straight.history)
    # a second corrupt checkpoint does not overwrite the first one set aside
    path.write_bytes(b"not a zip")
    model, data = make_task()
    train(model, data, CFG, tmp_path / "straight", log=lambda m: None)
    assert (tmp_path / "straight" / "checkpoint.pt.corrupt.1").read_bytes() == b"not a zip"


def test_finished_checkpoint_of_the_same_config_is_reused(tmp_path):
    model, data = make_task()
    first = train(model, data, CFG, tmp_path, log=lambda m: None)
    messages, epochs = [], []
    model, data = make_task(seed=7)
    again = train(model, data, CFG, tmp_path, log=messages.append, on_epoch_end=epochs.append,
                  stale_checkpoint="restart")
    assert epochs == [] and any("reusing the finished" in m for m in messages)
    for key in first.best_state:
        assert torch.equal(again.best_state[key], first.best_state[key])
    # the divergence guard is not part of what a run computes: changing it reuses the checkpoint
    model, data = make_task()
    train(model, data, TrainConfig(**{**CFG.__dict__, "divergence_factor": None}), tmp_path,
          log=lambda m: None, on_epoch_end=epochs.append)
    assert epochs == []


def test_exploding_loss_stops_the_run_as_diverged(tmp_path):
    model, data = make_task()
    absurd = TrainConfig(**{**CFG.__dict__, "lr": 1e6})
    with pytest.raises(DivergedError, match=r"training diverged: mean loss .* in epoch 1 is more than "
                                            r"1000 × the untrained model's loss"):
        train(model, data, absurd, tmp_path / "guarded", log=lambda m: None)
    assert not (tmp_path / "guarded" / "checkpoint.pt").exists()  # nothing of the blown-up epoch kept
    # without the guard the same run trains on to a finite, useless loss: the guard is what stops it
    model, data = make_task()
    result = train(model, data, TrainConfig(**{**absurd.__dict__, "divergence_factor": None}),
                   tmp_path / "unguarded", log=lambda m: None)
    assert len(result.history) == CFG.epochs


def test_nan_loss_is_reported_as_diverged(tmp_path):
    model, data = make_task(nan=True)
    with pytest.raises(DivergedError, match="training diverged: loss is nan"):
        train(model, data, CFG, tmp_path, log=lambda m: None)


HOLD_RUN_FOLDER = """
import sys, time
from approxeq.runtime.io import run_folder_lock
with run_folder_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_second_trainer_in_the_same_run_folder_is_refused(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD_RUN_FOLDER, str(tmp_path)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        model, data = make_task()
        with pytest.raises(LockHeldError, match=rf"run folder {tmp_path} is in use by another "
                                                rf"process \(PID {holder.pid} on "):
            train(model, data, CFG, tmp_path, log=lambda m: None)
        assert not (tmp_path / "checkpoint.pt").exists()
    finally:
        holder.kill()
        holder.wait()
    model, data = make_task()  # the lock went with the holder (even killed): training proceeds
    assert len(train(model, data, CFG, tmp_path, log=lambda m: None).history) == CFG.epochs


def test_every_torch_load_is_weights_only():
    """A pickle can run code when loaded: every torch.load of the project passes weights_only=True
    (the default only from torch 2.6, which pyproject.toml requires)."""
    root = Path(__file__).resolve().parents[2]
    calls = []
    for path in [*root.glob("src/**/*.py"), *root.glob("workflow/**/*.py"), *root.glob("benchmarks/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "torch.load":
                calls.append(path.name)
                keywords = {k.arg: k.value for k in node.keywords}
                assert "weights_only" in keywords and ast.literal_eval(keywords["weights_only"]) is True, \
                    f"{path}:{node.lineno}: torch.load without weights_only=True"
    assert {"train.py", "decompose.py"} <= set(calls)
    floor = re.search(r'"torch>=([0-9.]+)', (root / "pyproject.toml").read_text())[1]
    assert tuple(int(p) for p in floor.split(".")) >= (2, 6), floor


def test_an_unreadable_file_is_not_mistaken_for_a_corrupt_checkpoint(tmp_path, monkeypatch):
    """An I/O error says nothing about the checkpoint's content: it must not be set aside."""
    model, data = make_task()
    train(model, data, TrainConfig(**{**CFG.__dict__, "epochs": 1}), tmp_path, log=lambda m: None)

    read_bytes = Path.read_bytes

    def failing_read(path):
        if path.name == "checkpoint.pt":
            raise OSError(5, "Input/output error", str(path))
        return read_bytes(path)

    monkeypatch.setattr(Path, "read_bytes", failing_read)
    model, data = make_task()
    with pytest.raises(OSError, match="checkpoint.pt"):
        train(model, data, CFG, tmp_path, log=lambda m: None)
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / "checkpoint.pt.corrupt").exists()
