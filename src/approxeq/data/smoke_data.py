"""SMOKE splits, sample windows, batched gathering, autoregressive rollout and the protocol's RMSE.

Protocol (reference notes, section SMOKE, after Wang, Walters & Yu 2022): 36 simulations k = 1..36
with inflow j = (k − 1) mod 4; 25 training simulations, 10 domain-test simulations, k = 32 unused.
Each stored simulation is a float32 array (frame, component, y, x) of the kept velocity frames.

A sample is a pair (k, t). Its input is the stored frames t + frame_offset … t + frame_offset +
input_frames − 1 (by default t+2 … t+11, 10 frames × 2 components = 20 channels), its target the
`horizon` frames that follow. Time windows: train t ∈ [0, 160), validation t ∈ [160, 200) and
"future" t ∈ [200, 250) on the training simulations; "domain" t ∈ [0, 100) on the domain simulations.
Training and validation predict `train_horizon` = 6 frames; the test horizon is a config key
(`test_horizon`, default 6 as in the paper text; the original test code rolls out 20, pitfall 6).

Windows whose targets would run past the stored frames are dropped, with a warning that says how
many; with the protocol's 309 kept frames no window is dropped for horizons up to 48 (the last
future window t = 249 needs frames up to 249 + 12 + horizon − 1 ≤ 308).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, fields
from typing import Callable, Iterable, Mapping

import torch

# Published splits, as (simulation k, inflow j) pairs, j = (k − 1) mod 4.
TRAIN_SIMULATIONS: list[tuple[int, int]] = [
    (27, 2), (33, 0), (3, 2), (28, 3), (9, 0), (12, 3), (22, 1), (8, 3), (30, 1), (25, 0), (16, 3),
    (11, 2), (23, 2), (29, 0), (36, 3), (26, 1), (1, 0), (35, 2), (19, 2), (34, 1), (4, 3), (2, 1),
    (7, 2), (31, 2), (17, 0),
]
DOMAIN_SIMULATIONS: list[tuple[int, int]] = [
    (6, 1), (14, 1), (15, 2), (10, 1), (18, 1), (20, 3), (24, 3), (13, 0), (21, 0), (5, 0),
]
UNUSED: list[int] = [32]
N_SIMULATIONS = 36
STORED_FRAMES = 309  # velocity frames 1..309 of the 310 simulated steps

SPLITS = ("train", "val", "future", "domain")
TEST_SPLITS = ("future", "domain")


@dataclass(frozen=True)
class SmokeSplits:
    """Which simulations and start times make up each split, and the sample geometry.

    Windows are half-open ranges [start, stop) of the sample time t. Build from a config mapping
    with `SmokeSplits.from_config(mapping)` (unknown keys are refused).
    """

    train_simulations: tuple[tuple[int, int], ...] = tuple(TRAIN_SIMULATIONS)
    domain_simulations: tuple[tuple[int, int], ...] = tuple(DOMAIN_SIMULATIONS)
    unused: tuple[int, ...] = tuple(UNUSED)
    train_window: tuple[int, int] = (0, 160)
    val_window: tuple[int, int] = (160, 200)
    future_window: tuple[int, int] = (200, 250)
    domain_window: tuple[int, int] = (0, 100)
    input_frames: int = 10
    train_horizon: int = 6
    test_horizon: int = 6
    frame_offset: int = 2

    def __post_init__(self):
        object.__setattr__(self, "train_simulations", tuple((int(k), int(j)) for k, j in self.train_simulations))
        object.__setattr__(self, "domain_simulations", tuple((int(k), int(j)) for k, j in self.domain_simulations))
        object.__setattr__(self, "unused", tuple(int(k) for k in self.unused))
        for name in ("train_window", "val_window", "future_window", "domain_window"):
            start, stop = (int(v) for v in getattr(self, name))
            if not 0 <= start <= stop:
                raise ValueError(f"smoke.{name} = [{start}, {stop}) is not a range of start times >= 0")
            object.__setattr__(self, name, (start, stop))
        for name in ("input_frames", "train_horizon", "test_horizon"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"smoke.{name} must be >= 1, got {getattr(self, name)}")
        if self.frame_offset < 0:
            raise ValueError(f"smoke.frame_offset must be >= 0, got {self.frame_offset}")
        ks = [k for k, _ in self.train_simulations + self.domain_simulations]
        if len(set(ks)) != len(ks):
            raise ValueError("smoke: a simulation appears twice in the training / domain lists")
        if set(ks) & set(self.unused):
            raise ValueError(f"smoke: simulations {sorted(set(ks) & set(self.unused))} are both used and unused")
        bad = [(k, j) for k, j in self.train_simulations + self.domain_simulations if j != (k - 1) % 4]
        if bad:
            raise ValueError(f"smoke: inflow j must be (k − 1) mod 4, got {bad}")

    @classmethod
    def from_config(cls, config: Mapping | None) -> "SmokeSplits":
        config = dict(config or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"smoke: unknown split keys {unknown}; known: {sorted(known)}")
        return cls(**config)

    def simulations(self, split: str) -> tuple[int, ...]:
        """The simulation numbers k of a split, in the published order."""
        if split not in SPLITS:
            raise ValueError(f"unknown SMOKE split {split!r}; known: {SPLITS}")
        sims = self.domain_simulations if split == "domain" else self.train_simulations
        return tuple(k for k, _ in sims)

    def window(self, split: str) -> tuple[int, int]:
        if split not in SPLITS:
            raise ValueError(f"unknown SMOKE split {split!r}; known: {SPLITS}")
        return getattr(self, f"{split}_window")

    def horizon(self, split: str) -> int:
        """Frames predicted for a split: train_horizon for train/val, test_horizon for future/domain."""
        if split not in SPLITS:
            raise ValueError(f"unknown SMOKE split {split!r}; known: {SPLITS}")
        return self.test_horizon if split in TEST_SPLITS else self.train_horizon

    def frames_needed(self, horizon: int) -> int:
        """Stored frames a sample at t = 0 spans: inputs and targets (t + this − 1 is the last one read)."""
        return self.frame_offset + self.input_frames + horizon


def _horizon(splits: SmokeSplits, split: str, horizon: int | Mapping[str, int] | None) -> int:
    if horizon is None:
        return splits.horizon(split)
    if isinstance(horizon, Mapping):
        return int(horizon[split]) if split in horizon else splits.horizon(split)
    return int(horizon)


def _valid_times(splits: SmokeSplits, split: str, frames_per_sim: int, horizon: int) -> tuple[range, int]:
    """The kept start times of a split's window, and how many were dropped for running past the frames."""
    start, stop = splits.window(split)
    last = frames_per_sim - splits.frames_needed(horizon)  # largest t whose targets are all stored
    kept = range(start, max(start, min(stop, last + 1)))
    return kept, (stop - start) - len(kept)


def split_windows(splits: SmokeSplits = SmokeSplits(), frames_per_sim: int = STORED_FRAMES,
                  horizon: int | Mapping[str, int] | None = None,
                  which: Iterable[str] = SPLITS) -> dict[str, torch.Tensor]:
    """All sample windows of each split: split → LongTensor (N, 2) of (simulation number k, start t).

    Rows are ordered by simulation (published order), then t ascending. `horizon` is the number of
    target frames: an int for every split, a mapping split → int, or None for the split's own
    horizon (`SmokeSplits.horizon`). Windows whose targets would run past `frames_per_sim` stored
    frames are dropped, with a `UserWarning` naming the split and the count.
    """
    out = {}
    for split in which:
        h = _horizon(splits, split, horizon)
        times, dropped = _valid_times(splits, split, frames_per_sim, h)
        sims = splits.simulations(split)
        if dropped:
            warnings.warn(f"SMOKE split {split!r}: dropped {dropped} of {dropped + len(times)} start times per "
                          f"simulation ({dropped * len(sims)} windows): horizon {h} would read past the "
                          f"{frames_per_sim} stored frames", UserWarning, stacklevel=2)
        k = torch.tensor(sims, dtype=torch.long).repeat_interleave(len(times))
        t = torch.arange(times.start, times.stop, dtype=torch.long).repeat(len(sims))
        out[split] = torch.stack([k, t], dim=1)
    return out


def split_sizes(splits: SmokeSplits = SmokeSplits(), frames_per_sim: int = STORED_FRAMES,
                horizon: int | Mapping[str, int] | None = None,
                which: Iterable[str] = SPLITS) -> dict[str, int]:
    """Number of windows per split, from counts and windows only (no data, no simulation)."""
    return {split: len(splits.simulations(split))
            * len(_valid_times(splits, split, frames_per_sim, _horizon(splits, split, horizon))[0])
            for split in which}


def sim_lookup(sim_index_of_k, device=None) -> torch.Tensor | None:
    """A LongTensor `lookup[k]` = row of simulation k in the frames tensor (−1 where absent).

    Accepts a mapping {k: row}, a sequence of simulation numbers in row order (row i holds
    simulation ks[i]), an existing lookup tensor, or None (windows already hold rows).
    """
    if sim_index_of_k is None:
        return None
    if isinstance(sim_index_of_k, torch.Tensor):
        return sim_index_of_k.to(device=device, dtype=torch.long)
    if isinstance(sim_index_of_k, Mapping):
        pairs = {int(k): int(row) for k, row in sim_index_of_k.items()}
    else:
        pairs = {int(k): row for row, k in enumerate(sim_index_of_k)}
    lookup = torch.full((max(pairs) + 1,), -1, dtype=torch.long)
    for k, row in pairs.items():
        lookup[k] = row
    return lookup.to(device)


def gather_windows(frames: torch.Tensor, sim_index_of_k, windows: torch.Tensor,
                   first: int, count: int) -> torch.Tensor:
    """Frames t+first … t+first+count−1 of each window as channels: (B, count·C, H, W).

    `frames` is (S, T, C, H, W) (C = 2 velocity components), `windows` (B, 2) of (k, t), and
    `sim_index_of_k` maps k to the row of `frames` (see `sim_lookup`). Channels are (frame,
    component) flattened, frame-major. Inputs: first = frame_offset, count = input_frames;
    targets: first = frame_offset + input_frames, count = horizon. One advanced-indexing gather.
    """
    if frames.dim() != 5:
        raise ValueError(f"frames must be (S, T, C, H, W), got {tuple(frames.shape)}")
    windows = torch.as_tensor(windows, device=frames.device).long()
    if windows.dim() != 2 or windows.shape[1] != 2:
        raise ValueError(f"windows must be (B, 2) of (k, t), got {tuple(windows.shape)}")
    lookup = sim_lookup(sim_index_of_k, frames.device)
    k, t = windows[:, 0], windows[:, 1]
    if lookup is None:
        rows = k
    else:
        if len(k) and (k.min() < 0 or k.max() >= len(lookup)):
            raise IndexError(f"window simulation numbers {k.min().item()}..{k.max().item()} outside the lookup")
        rows = lookup[k]
    times = t[:, None] + first + torch.arange(count, device=frames.device)
    if len(k):
        if rows.min() < 0 or rows.max() >= frames.shape[0]:
            raise IndexError("a window names a simulation that the frames tensor does not hold")
        if times.min() < 0 or times.max() >= frames.shape[1]:
            raise IndexError(f"windows read frames {times.min().item()}..{times.max().item()}, "
                             f"but only 0..{frames.shape[1] - 1} are stored")
    out = frames[rows[:, None], times]  # (B, count, C, H, W)
    return out.reshape(len(windows), count * frames.shape[2], *frames.shape[3:])


def window_inputs_targets(frames: torch.Tensor, sim_index_of_k, windows: torch.Tensor,
                          splits: SmokeSplits, horizon: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs (B, input_frames·C, H, W), targets (B, horizon·C, H, W)) of the windows."""
    x = gather_windows(frames, sim_index_of_k, windows, splits.frame_offset, splits.input_frames)
    y = gather_windows(frames, sim_index_of_k, windows, splits.frame_offset + splits.input_frames, horizon)
    return x, y


def rollout(model_step: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, steps: int) -> torch.Tensor:
    """Autoregressive prediction: (B, steps·C, H, W).

    `model_step` maps the last input frames x (B, F·C, H, W) to the next frame (B, C, H, W) (C = 2
    for velocity); the window then drops its oldest frame and appends the prediction.
    """
    window, predictions = x, []
    for _ in range(steps):
        frame = model_step(window)
        if frame.dim() != 4 or frame.shape[0] != x.shape[0] or frame.shape[2:] != x.shape[2:] \
                or x.shape[1] % frame.shape[1]:
            raise ValueError(f"model_step returned {tuple(frame.shape)} for a window of {tuple(window.shape)}")
        predictions.append(frame)
        window = torch.cat([window[:, frame.shape[1]:], frame], dim=1)
    if not predictions:
        return x.new_empty(x.shape[0], 0, *x.shape[2:])
    return torch.cat(predictions, dim=1)


class RMSEAccumulator:
    """The protocol's RMSE: per batch the mean over steps of the MSE (mean over batch × C × H × W),
    averaged over batches (each batch counts once, whatever its size), then the square root.

    Accumulates on the tensors' device (no host sync per batch); `value()` syncs once.
    """

    def __init__(self, components: int = 2):
        self.components = components
        self.total: torch.Tensor | None = None
        self.batches = 0

    def batch_value(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean over steps of the per-step MSE of one batch (B, steps·C, H, W), a 0-d float64 tensor."""
        if pred.shape != target.shape:
            raise ValueError(f"prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
        if pred.dim() != 4 or pred.shape[1] % self.components:
            raise ValueError(f"expected (B, steps·{self.components}, H, W), got {tuple(pred.shape)}")
        batch, channels = pred.shape[:2]
        err = (pred.detach().double() - target.detach().double()) ** 2
        per_step = err.reshape(batch, channels // self.components, -1).mean(dim=(0, 2))  # (steps,)
        return per_step.mean()

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        value = self.batch_value(pred, target)
        self.total = value if self.total is None else self.total + value
        self.batches += 1

    def value(self) -> float:
        if not self.batches:
            raise ValueError("RMSE of no batches")
        return math.sqrt(float(self.total) / self.batches)


def rmse(pred_batches: Iterable[torch.Tensor], target_batches: Iterable[torch.Tensor],
         components: int = 2) -> float:
    """The protocol's RMSE over matching sequences of batches (see `RMSEAccumulator`)."""
    acc = RMSEAccumulator(components)
    preds, targets = list(pred_batches), list(target_batches)
    if len(preds) != len(targets):
        raise ValueError(f"{len(preds)} prediction batches for {len(targets)} target batches")
    for pred, target in zip(preds, targets):
        acc.update(pred, target)
    return acc.value()
