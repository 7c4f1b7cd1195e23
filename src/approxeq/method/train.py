"""A plain PyTorch training loop shared by every experiment.

Adam, shuffled mini-batches drawn on the training device, one group element per sample, early
stopping on a validation metric with patience, the best state kept as a copy (never a reference
to the live model), a checkpoint every epoch and exact resume from it.

Randomness: each epoch's shuffling and group elements come from a generator seeded by
(seed, epoch), so a resumed run draws exactly what an uninterrupted run would have drawn.

Safety: checkpoints are read with `weights_only=True` (a planted pickle cannot run code); one that
cannot be read is moved aside and training starts over; the run folder is locked while a process
trains in it; a NaN/inf loss, or an epoch's mean loss above `divergence_factor` × the loss of the
untrained model, stops the run (DivergedError) instead of letting garbage reach the tables.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

import torch

from approxeq.method.loss import Objective
from approxeq.nn.encoder_head import EncoderHead
from approxeq.runtime.identity import identity_changes
from approxeq.runtime.io import atomic_path, run_folder_lock, write_text_atomic


class DivergedError(FloatingPointError):
    """Training diverged (a loss far above where it started, or NaN/inf): the run stops instead of
    training on garbage, and no model is written."""


class NonFiniteLossError(DivergedError):
    """The training loss became NaN or infinite."""


CHECKPOINT = "checkpoint.pt"
CHECKPOINT_KEYS = ("fingerprint", "model", "optimizer", "scheduler", "state")

# Inductor options of the compiled objective (compute.compile). realize_reads_threshold: how many
# reads of a pointwise result make inductor store it instead of recomputing it (default 4). In the
# backward of a BatchNorm + ELU it stored the ELU gradient of each 55 × 55 map (37 MB at batch 256,
# in NCHW order inside an NHWC graph) only to read it back in the next loops; at 16 it is recomputed
# in registers: the DDMNIST CNN's step ×1.12 (1 thread) and ×1.24 (2 threads), ours ×1.07 (2
# threads), interleaved A/B, benchmarks/README.md. Part of what a compiled run computes (its last
# digits), hence here, in the code the checkpoint's identity hashes.
COMPILE_OPTIONS = {"realize_reads_threshold": 16}


@dataclass(frozen=True)
class TrainConfig:
    lr: float
    batch_size: int
    epochs: int
    patience: int
    seed: int
    weight_decay: float = 0.0
    lr_decay: float = 1.0  # multiplied into the learning rate after every epoch
    settings: dict = field(default_factory=dict)  # everything else that defines the run (loss weights, ...)
    # Stop when an epoch's mean training loss exceeds this × the loss of the untrained model
    # (its first step); None: only NaN/inf stop a run.
    divergence_factor: float | None = 1000.0
    # What the run is a function of beyond its settings (approxeq.runtime.identity): {"data": {path:
    # sha256}, "code": fingerprint of the training code, "torch": version}.
    inputs: dict = field(default_factory=dict)
    # How the steps are computed (compute.channels_last, compute.compile; docs/runtime.md). Each
    # computes the same function with its floating-point operations in another order, so the last
    # bits of the numbers differ between settings: both are part of the identity, and a checkpoint
    # is resumed only under the setting that wrote it.
    channels_last: bool = False  # NHWC batches and weights for 2D image data (N×C×H×W)
    compile: bool = False  # the training objective through torch.compile (eval stays eager)

    def identity(self) -> dict:
        """What identifies the training a checkpoint belongs to: the settings, the content of the
        input files and the code. The divergence guard is left out: it never changes what a run
        computes, only whether a run that blows up is stopped, so changing it must not throw
        finished or half-finished training away."""
        settings = {k: v for k, v in asdict(self).items() if k not in ("divergence_factor", "inputs")}
        # through JSON: plain types only (a checkpoint is read back with weights_only=True, which
        # refuses e.g. torch's TorchVersion, a str subclass)
        return json.loads(json.dumps({"settings": settings, **self.inputs}, sort_keys=True))

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:16]


class EpochViews(NamedTuple):
    """One epoch's training data, sample i in row i (the order of TaskData.x_train)."""

    x: torch.Tensor
    # each sample's second view for the method's pair; None: the objective forms g·x itself
    gx: torch.Tensor | None = None
    # the targets when they follow the inputs (an autoencoder's target is its augmented input);
    # None: TaskData.y_train (labels, invariant under the augmentation)
    y: torch.Tensor | None = None


@dataclass
class TaskData:
    """What the loop needs from an experiment. Tensors live on the training device.

    `objective(model, x, y, g)` returns the loss and its detached terms; `epoch_metrics(model)`
    adds experiment-specific numbers (e.g. eigenvalues of learned matrices) to each epoch's record.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    group_order: int
    objective: Objective
    val_metric: Callable[[EncoderHead, torch.Tensor, torch.Tensor], float]
    prepare: Callable[[torch.Tensor], torch.Tensor] = lambda x: x  # e.g. uint8 → float on device
    maximize: bool = True  # early stopping direction of val_metric
    epoch_metrics: Callable[[EncoderHead], dict] | None = None
    # Fresh training inputs every epoch (per-epoch augmentation): called at the start of each
    # epoch with that epoch's own generator (augment_generator) and the group elements the
    # trainer drew for the epoch, one per sample; returns the epoch's EpochViews in the order of
    # x_train. None: x_train every epoch.
    epoch_views: Callable[[torch.Generator, torch.Tensor], EpochViews] | None = None


@dataclass
class TrainResult:
    best_state: dict
    best_epoch: int
    best_metric: float
    history: list[dict]
    wall_seconds: float


def set_determinism(deterministic: bool) -> None:
    """torch.use_deterministic_algorithms (bit-identical reruns on the CPU), without filling every
    new tensor with NaN first: torch does that in deterministic mode only so that an op reading
    memory it never wrote shows up, which no op here does; the fill took 1–4 % of a DDMNIST step on
    the CPU (12 % in one profile) and changes no result (reruns and resumed runs stay bit-identical,
    tested)."""
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    torch.utils.deterministic.fill_uninitialized_memory = False


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def augment_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator of an epoch's data augmentation: its own stream (seeded by a hash of the seed and
    epoch), so drawing the augmentation changes nothing the trainer draws for shuffling and elements,
    and a resumed run draws exactly what an uninterrupted one does."""
    digest = hashlib.sha256(f"augment/{seed}/{epoch}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little") & (2**63 - 1))


def copy_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def train(model: EncoderHead, data: TaskData, cfg: TrainConfig, run_dir: str | Path,
          log: Callable[[str], None] = print,
          on_epoch_end: Callable[[int], None] | None = None,
          stale_checkpoint: str = "error") -> TrainResult:
    """Train, resuming from `run_dir/checkpoint.pt` when it was written with the same config (a
    finished one is reused as it is: nothing is trained again).

    A checkpoint of other training (another identity: settings, input files' content or training
    code, see TrainConfig.identity) is refused (`stale_checkpoint="error"`), or moved aside to
    `checkpoint.pt.stale[.N]` with what changed logged and training starts over (`"restart"`, what
    the workflow uses when a change reruns a job).
    A checkpoint that cannot be read (truncated, not a checkpoint, or holding anything but
    tensors and plain data) is moved aside to `checkpoint.pt.corrupt[.N]`, logged, and training
    starts over. The run folder is locked for the whole call: a second process training in it
    gets LockHeldError naming the first.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    with run_folder_lock(run_dir, log=log):
        return _train(model, data, cfg, run_dir, log, on_epoch_end, stale_checkpoint)


def load_checkpoint(path: Path, device: torch.device | str, log: Callable[[str], None] = print) -> dict | None:
    """The checkpoint at `path`, or None when there is none. One that cannot be read safely is
    moved aside (kept for a human to look at, never loaded again) and None returned."""
    if not path.exists():
        return None
    # Read first, parse from memory: an error reading the file (a disk or network hiccup) is
    # raised as it is and never taken for bad content, which would discard a good checkpoint;
    # torch's own reader raises OSError for some truncated files, so the two must be told apart.
    content = path.read_bytes()
    try:
        # weights_only: tensors and plain containers only, so a planted pickle cannot run code.
        saved = torch.load(io.BytesIO(content), map_location=device, weights_only=True)
        if not isinstance(saved, dict) or not all(key in saved for key in CHECKPOINT_KEYS):
            raise ValueError(f"not a training checkpoint (expected the keys {', '.join(CHECKPOINT_KEYS)})")
    except (MemoryError, torch.cuda.OutOfMemoryError):
        raise  # says nothing about the file
    except Exception as error:  # noqa: BLE001 - the content is bad: truncated, not a zip, a pickle
        # with anything but tensors and plain data, or not a checkpoint at all
        aside = _free_name(path.with_name(path.name + ".corrupt"))
        path.rename(aside)
        reason = " ".join(f"{type(error).__name__}: {error}".split())[:500]
        log(f"checkpoint {path} cannot be loaded ({reason}); moved it to {aside.name} and "
            "starting over")
        return None
    return saved


def _free_name(path: Path) -> Path:
    candidate, n = path, 0
    while candidate.exists():
        n += 1
        candidate = path.with_name(f"{path.name}.{n}")
    return candidate


def uses_channels_last(cfg: TrainConfig, data: TaskData) -> bool:
    """channels_last applies to 2D image batches only (volumes, vectors and sequences as they are)."""
    return cfg.channels_last and data.x_train.dim() == 4


def _train(model, data, cfg, run_dir, log, on_epoch_end, stale_checkpoint) -> TrainResult:
    checkpoint_path = run_dir / CHECKPOINT
    device = data.x_train.device
    channels_last = uses_channels_last(cfg, data)
    if channels_last:
        # Why: oneDNN's CPU convolutions run much faster on NHWC tensors for the few-channel
        # DDMNIST CNN (its step ×1.3–1.6, benchmarks/README.md). Done before the optimizer exists:
        # it rewrites the 4D parameters in place, and the optimizer keeps the same objects.
        model.to(memory_format=torch.channels_last)

    def layout(x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if channels_last else x

    objective = data.objective
    if cfg.compile:
        # Compiled on the first step (minutes on a CPU, seconds from torch's on-disk cache when a run
        # resumes); every step has the same shapes (the ragged last batch is dropped), so one graph.
        # Validation, epoch metrics and evaluation stay eager: compiling them would cost more
        # than they take.
        objective = torch.compile(data.objective, dynamic=False, options=COMPILE_OPTIONS)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=cfg.lr_decay)

    state = {"epoch": 0, "best_state": copy_state(model), "best_epoch": 0,
             "best_metric": -math.inf if data.maximize else math.inf, "history": [], "wall": 0.0,
             "stopped": False, "initial_loss": None}
    saved = load_checkpoint(checkpoint_path, device, log)
    if saved is not None and saved["fingerprint"] != cfg.fingerprint():
        changes = "; ".join(identity_changes(saved.get("identity"), cfg.identity()))
        if stale_checkpoint != "restart":
            raise RuntimeError(f"{checkpoint_path} belongs to other training (changed: {changes}); "
                               "delete it to start over")
        # Set aside, never reused and never silently deleted: it may be the only copy of long
        # training that a user wants back after an unintended change.
        aside = _free_name(checkpoint_path.with_name(checkpoint_path.name + ".stale"))
        checkpoint_path.rename(aside)
        log(f"{checkpoint_path} belongs to other training (changed: {changes}); moved it to "
            f"{aside.name} and starting over")
        saved = None
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = {"initial_loss": None, **saved["state"]}
        finished = state["stopped"] or state["epoch"] >= cfg.epochs
        log(f"{'reusing the finished' if finished else 'resumed from'} {checkpoint_path} "
            f"after epoch {state['epoch']}")

    n = len(data.x_train)
    steps_per_epoch = max(1, n // cfg.batch_size)  # drop the ragged last batch (BatchNorm)
    while state["epoch"] < cfg.epochs and not state["stopped"]:
        epoch = state["epoch"] + 1
        started = time.perf_counter()
        model.train()
        generator = epoch_generator(cfg.seed, epoch)
        order = torch.randperm(n, generator=generator).to(device)
        elements = torch.randint(data.group_order, (n,), generator=generator).to(device)
        views = (data.epoch_views(augment_generator(cfg.seed, epoch), elements)
                 if data.epoch_views is not None else EpochViews(data.x_train))
        targets = data.y_train if views.y is None else views.y
        sums: dict[str, torch.Tensor] = {}
        loss_sum = 0.0
        for step in range(steps_per_epoch):
            batch = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
            x, y = layout(data.prepare(views.x[batch])), targets[batch]
            second = {} if views.gx is None else {"gx": layout(data.prepare(views.gx[batch]))}
            loss, terms = objective(model, x, y, elements[batch], **second)
            loss_value = loss.item()
            if not math.isfinite(loss_value):
                raise NonFiniteLossError(
                    f"training diverged: loss is {loss_value} at epoch {epoch}, step {step + 1}; terms "
                    + ", ".join(f"{k}={v.item():.4g}" for k, v in terms.items()))
            if state["initial_loss"] is None:
                state["initial_loss"] = loss_value  # the untrained model's loss: the yardstick
            loss_sum += loss_value
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            for key, value in terms.items():
                sums[key] = sums.get(key, 0) + value
        check_divergence(loss_sum / steps_per_epoch, state["initial_loss"], cfg.divergence_factor,
                         epoch, {k: (v / steps_per_epoch).item() for k, v in sums.items()})
        scheduler.step()
        metric = data.val_metric(model, data.x_val, data.y_val)
        improved = metric > state["best_metric"] if data.maximize else metric < state["best_metric"]
        if improved:
            state.update(best_state=copy_state(model), best_epoch=epoch, best_metric=metric)
        seconds = time.perf_counter() - started
        record = {"epoch": epoch, "val_metric": metric, "seconds": seconds,
                  "images_per_second": steps_per_epoch * cfg.batch_size / seconds,
                  "lr": optimizer.param_groups[0]["lr"],
                  **{f"train_{k}": (v / steps_per_epoch).item() for k, v in sums.items()},
                  **(data.epoch_metrics(model) if data.epoch_metrics else {})}
        state["history"].append(record)
        state["epoch"] = epoch
        state["wall"] += seconds
        state["stopped"] = epoch - state["best_epoch"] >= cfg.patience
        save_atomic({"fingerprint": cfg.fingerprint(), "identity": cfg.identity(), "model": model.state_dict(),
                     "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                     "state": state}, checkpoint_path)
        write_history(run_dir, state["history"])
        log(f"epoch {epoch:3d}/{cfg.epochs}  "
            + "  ".join(f"{k[6:]} {record[k]:.4f}" for k in record if k.startswith("train_"))
            + f"  val {metric:.4f}  best {state['best_metric']:.4f}@{state['best_epoch']}"
            + f"  {record['images_per_second']:.0f} img/s")
        if on_epoch_end is not None:
            on_epoch_end(epoch)
        if state["stopped"]:
            log(f"early stop: no improvement for {cfg.patience} epochs")
            break
    write_history(run_dir, state["history"])  # also when a finished checkpoint was reused
    return TrainResult(state["best_state"], state["best_epoch"], state["best_metric"],
                       state["history"], state["wall"])


def save_atomic(obj, path: str | Path) -> None:
    """torch.save `obj` to `path` atomically. Serialised in memory first: torch names the archive
    inside the file after the file it writes, so saving to a temporary name would make two
    identical models differ byte for byte."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getvalue())


def write_history(run_dir: Path, history: list[dict]) -> None:
    write_text_atomic(run_dir / "history.jsonl", "".join(json.dumps(r) + "\n" for r in history))


def check_divergence(mean_loss: float, initial_loss: float, factor: float | None, epoch: int,
                     terms: dict[str, float]) -> None:
    """Raise DivergedError when an epoch's mean loss exceeds `factor` × the untrained model's loss.

    Why the first step's loss and not the first epoch's mean: with an absurd learning rate the
    loss explodes within the first epoch (lr = 1e6 gave a mean task loss of 7e12 and never a NaN),
    so the first epoch's mean would already be the blown-up value. Checked on the epoch's mean,
    not per step, so that one noisy batch does not end a healthy run."""
    if factor is None or initial_loss is None or initial_loss <= 0:
        return
    if mean_loss > factor * initial_loss:
        raise DivergedError(
            f"training diverged: mean loss {mean_loss:.4g} in epoch {epoch} is more than "
            f"{factor:g} × the untrained model's loss {initial_loss:.4g} (divergence_factor); "
            "terms " + ", ".join(f"{k}={v:.4g}" for k, v in terms.items())
            + ". Lower the learning rate, or raise compute.divergence_factor if this is expected")
