"""SMOKE splits and windows (sizes without simulating), batched gathering, rollout and the RMSE."""
import math
import warnings

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.data.smoke_data import (
    DOMAIN_SIMULATIONS,
    STORED_FRAMES,
    TRAIN_SIMULATIONS,
    UNUSED,
    RMSEAccumulator,
    SmokeSplits,
    gather_windows,
    rmse,
    rollout,
    split_sizes,
    split_windows,
    window_inputs_targets,
)


def test_published_simulation_lists():
    assert len(TRAIN_SIMULATIONS) == 25 and len(DOMAIN_SIMULATIONS) == 10 and UNUSED == [32]
    ks = sorted(k for k, _ in TRAIN_SIMULATIONS + DOMAIN_SIMULATIONS) + UNUSED
    assert sorted(ks) == list(range(1, 37))
    assert all(j == (k - 1) % 4 for k, j in TRAIN_SIMULATIONS + DOMAIN_SIMULATIONS)


def test_full_protocol_sizes_without_simulating():
    splits = SmokeSplits()
    expected = {"train": 25 * 160, "val": 25 * 40, "future": 25 * 50, "domain": 10 * 100}
    assert split_sizes(splits, STORED_FRAMES) == expected == {"train": 4000, "val": 1000,
                                                              "future": 1250, "domain": 1000}
    # the original code's 20-frame test rollout still fits in the 309 stored frames
    assert split_sizes(SmokeSplits(test_horizon=20), STORED_FRAMES) == expected
    assert {s: len(w) for s, w in split_windows(splits, STORED_FRAMES).items()} == expected


def test_windows_past_the_stored_frames_are_dropped_with_a_warning():
    splits = SmokeSplits()
    # 270 frames, horizon 6: the last t with all targets stored is 270 − 18 = 252 → future keeps all 50
    assert split_sizes(splits, 270)["future"] == 25 * 50
    # 250 frames: last t = 232 → future keeps t = 200..232 (33 per simulation)
    assert split_sizes(splits, 250)["future"] == 25 * 33
    with pytest.warns(UserWarning, match="dropped 17 of 50"):
        windows = split_windows(splits, 250)
    assert len(windows["future"]) == 25 * 33 and len(windows["train"]) == 25 * 160
    # a horizon mapping per split
    assert split_sizes(splits, 250, horizon={"future": 20})["future"] == 25 * 19


@settings(max_examples=30, deadline=None)
@given(frames=st.integers(1, 320), train_h=st.integers(1, 25), test_h=st.integers(1, 25),
       offset=st.integers(0, 3), inputs=st.integers(1, 12))
def test_windows_stay_inside_the_stored_frames(frames, train_h, test_h, offset, inputs):
    splits = SmokeSplits(train_horizon=train_h, test_horizon=test_h, frame_offset=offset, input_frames=inputs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        windows = split_windows(splits, frames)
    sizes = split_sizes(splits, frames)
    for split, w in windows.items():
        assert w.dtype == torch.long and w.shape == (sizes[split], 2)
        if not len(w):
            continue
        start, stop = splits.window(split)
        t = w[:, 1]
        assert t.min() >= start and t.max() < stop
        last_read = t + splits.frame_offset + splits.input_frames + splits.horizon(split) - 1
        assert last_read.max() < frames
        assert set(w[:, 0].tolist()) <= set(splits.simulations(split))


def test_window_order_and_content():
    w = split_windows(SmokeSplits())["val"]
    assert w[0].tolist() == [27, 160] and w[39].tolist() == [27, 199] and w[40].tolist() == [33, 160]
    assert w[-1].tolist() == [17, 199]
    d = split_windows(SmokeSplits())["domain"]
    assert d[0].tolist() == [6, 0] and d[-1].tolist() == [5, 99]


def encoded_frames(ks, frames, size=3):
    """frames[s, t, c, y, x] = 1000·k + 10·t + c for simulation k = ks[s] (exact in float32)."""
    k = torch.tensor(ks, dtype=torch.float32)[:, None, None]
    t = torch.arange(frames, dtype=torch.float32)[None, :, None]
    c = torch.arange(2, dtype=torch.float32)[None, None, :]
    value = 1000 * k + 10 * t + c
    return value[..., None, None].expand(-1, -1, -1, size, size).contiguous()


@pytest.mark.parametrize("mapping", ["dict", "sequence", "tensor"])
def test_gather_returns_exactly_the_right_frames(mapping):
    ks = [5, 27, 3]
    frames = encoded_frames(ks, 40)
    lookup = {"dict": {k: i for i, k in enumerate(ks)}, "sequence": ks,
              "tensor": torch.tensor([-1, -1, -1, 2, -1, 0] + [-1] * 21 + [1])}[mapping]
    windows = torch.tensor([[27, 0], [5, 7], [3, 20], [27, 3]])
    splits = SmokeSplits()
    x, y = window_inputs_targets(frames, lookup, windows, splits, horizon=6)
    assert x.shape == (4, 20, 3, 3) and y.shape == (4, 12, 3, 3)
    for b, (k, t) in enumerate(windows.tolist()):
        want_x = [1000 * k + 10 * (t + 2 + f) + c for f in range(10) for c in range(2)]
        want_y = [1000 * k + 10 * (t + 12 + f) + c for f in range(6) for c in range(2)]
        assert x[b, :, 1, 2].tolist() == want_x
        assert y[b, :, 0, 0].tolist() == want_y


def test_gather_refuses_windows_outside_the_data():
    frames = encoded_frames([1, 2], 20)
    with pytest.raises(IndexError, match="stored"):
        gather_windows(frames, [1, 2], torch.tensor([[1, 10]]), first=2, count=10)
    with pytest.raises(IndexError):
        gather_windows(frames, {1: 0, 2: 1}, torch.tensor([[3, 0]]), first=0, count=1)
    # None: windows already hold rows
    out = gather_windows(frames, None, torch.tensor([[1, 0]]), first=0, count=1)
    assert out[0, :, 0, 0].tolist() == [2000.0, 2001.0]


def test_rollout_with_a_copy_last_frame_model():
    x = torch.arange(20, dtype=torch.float32)[None, :, None, None].expand(2, -1, 4, 4).clone()
    out = rollout(lambda w: w[:, -2:], x, steps=5)
    assert out.shape == (2, 10, 4, 4)
    assert out[0, :, 0, 0].tolist() == [18.0, 19.0] * 5


def test_rollout_feeds_predictions_back():
    """A model that outputs the mean of the window's first frame + 1 shows the window shift."""
    x = torch.arange(20, dtype=torch.float32)[None, :, None, None].expand(1, -1, 2, 2).clone()
    seen = []

    def step(window):
        assert window.shape == (1, 20, 2, 2)
        seen.append(window[0, :, 0, 0].tolist())
        return window[:, :2] + 100

    out = rollout(step, x, steps=3)
    assert seen[1] == list(range(2, 20)) + [100.0, 101.0]
    assert seen[2] == list(range(4, 20)) + [100.0, 101.0, 102.0, 103.0]
    assert out[0, :, 0, 0].tolist() == [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]


def test_rmse_hand_computed_two_batches_of_different_sizes():
    h = w = 2
    # batch 1: one sample, 2 steps; step 0 error 1 everywhere, step 1 error 3 → MSE per step 1, 9 → 5
    p1 = torch.zeros(1, 4, h, w)
    t1 = torch.cat([torch.ones(1, 2, h, w), torch.full((1, 2, h, w), 3.0)], dim=1)
    # batch 2: three samples, errors 0 everywhere → 0
    p2 = torch.zeros(3, 4, h, w)
    t2 = torch.zeros(3, 4, h, w)
    expected = math.sqrt((5 + 0) / 2)  # batch average: each batch counts once
    assert rmse([p1, p2], [t1, t2]) == pytest.approx(expected, rel=1e-12)
    sample_average = math.sqrt((1 * 5 + 3 * 0) / 4)
    assert expected != pytest.approx(sample_average)
    acc = RMSEAccumulator()
    acc.update(p1, t1)
    acc.update(p2, t2)
    assert acc.value() == pytest.approx(expected, rel=1e-12)
    assert acc.batches == 2


def test_rmse_per_step_mean_inside_a_batch():
    # two samples: sample 0 error 2 at step 0 only, sample 1 error 0 → step MSEs (4·½, 0) = (2, 0) → 1
    pred = torch.zeros(2, 4, 3, 3)
    target = torch.zeros(2, 4, 3, 3)
    target[0, :2] = 2.0
    assert rmse([pred], [target]) == pytest.approx(1.0)


def test_rmse_refuses_mismatched_input():
    with pytest.raises(ValueError):
        rmse([torch.zeros(1, 2, 2, 2)], [torch.zeros(1, 4, 2, 2)])
    with pytest.raises(ValueError):
        RMSEAccumulator().value()
    with pytest.raises(ValueError):
        rmse([torch.zeros(1, 3, 2, 2)], [torch.zeros(1, 3, 2, 2)])


def test_splits_from_config():
    s = SmokeSplits.from_config({"test_horizon": 20, "future_window": [200, 250]})
    assert s.test_horizon == 20 and s.horizon("future") == 20 and s.horizon("val") == 6
    assert s.future_window == (200, 250)
    with pytest.raises(ValueError, match="unknown"):
        SmokeSplits.from_config({"test_horizn": 20})
    with pytest.raises(ValueError, match="twice"):
        SmokeSplits(domain_simulations=((27, 2),))
    with pytest.raises(ValueError, match="inflow"):
        SmokeSplits(domain_simulations=((6, 0),))
