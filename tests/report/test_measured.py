"""The committed record of paper-scale runs (approxeq.report.measured): rows from the runs' own
files, merged run by run, checked when read, and set beside the paper's Table 4."""
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from approxeq.report.measured import COLUMNS, beside_paper, main, merge, read_record, record_runs

ROOT = Path(__file__).resolve().parents[2]
PAPER4 = pd.read_csv(ROOT / "workflow" / "paper" / "table4.csv")


def fake_run(results: Path, model: str, seed: int, accuracy: float, epochs=(100.0, 120.0, 90.0),
             threads: int | None = 1, train_seconds: float = 7200.0) -> Path:
    """A finished run's folder as train.py leaves it (metrics.json, train.json, history.jsonl, log)."""
    folder = results / "runs" / "ddmnist" / "D4" / model / f"seed{seed}"
    folder.mkdir(parents=True)
    metrics = {"experiment": "ddmnist", "group": "D4", "model": model, "seed": seed, "test_accuracy": accuracy,
               "test_clean_accuracy": accuracy - 0.01, "best_epoch": len(epochs), "epochs_run": len(epochs),
               "parameters": 33742, "synthetic": False, "train_seconds": train_seconds, "device": "cpu",
               "chance_accuracy": 0.01, "test_samples": 5000}
    info = {"train_seconds": train_seconds, "device": "cpu", "torch": "2.13.0+cpu", "finished_at": 1796564756.0,
            "channels_last": True, "compile": True, "keep_freed_memory": True,
            "data_sha256": {"results/data/ddmnist/D4.npz": "ab" * 32}}
    if threads is not None:
        info["threads"] = threads
    (folder / "metrics.json").write_text(json.dumps(metrics))
    (folder / "train.json").write_text(json.dumps(info))
    (folder / "history.jsonl").write_text("".join(json.dumps({"epoch": i + 1, "seconds": s}) + "\n"
                                                  for i, s in enumerate(epochs)))
    log = results / "logs" / "train" / "ddmnist" / "D4" / model / f"seed{seed}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("run {...}\ndevice cpu, 3 threads\nspeed: ...\n")
    return folder


def test_a_row_holds_the_runs_own_figures(tmp_path):
    fake_run(tmp_path, "cnn", 1, 0.81)
    fake_run(tmp_path, "ours", 2, 0.83, threads=None)  # train.json from before threads were recorded
    record = record_runs([tmp_path / "runs"])
    assert list(record.columns) == COLUMNS and len(record) == 2
    cnn, ours = record.iloc[0], record.iloc[1]
    assert (cnn["model"], cnn["seed"], cnn["test_accuracy"]) == ("cnn", 1, 0.81)
    assert cnn["train_hours"] == 2.0 and cnn["median_epoch_seconds"] == 100.0
    assert cnn["threads"] == 1 and ours["threads"] == 3  # the latter read from the run's log
    assert cnn["commit"] == "unknown"  # tmp_path is in no git repository
    assert cnn["data_sha256"] == "D4.npz:" + "ab" * 6 and cnn["finished"] == "2026-12-06 13:45 UTC"


def test_a_run_measured_again_replaces_its_row_and_others_stay(tmp_path):
    old = record_runs([fake_run(tmp_path / "a", "cnn", 0, 0.70), fake_run(tmp_path / "a", "cnn", 1, 0.80)])
    new = record_runs([fake_run(tmp_path / "b", "cnn", 1, 0.82), fake_run(tmp_path / "b", "ours", 1, 0.85)])
    both = merge(old, new)
    assert [(r.model, r.seed, r.test_accuracy) for r in both.itertuples()] == [
        ("cnn", 0, 0.70), ("cnn", 1, 0.82), ("ours", 1, 0.85)]


def test_reading_refuses_a_record_that_is_not_one(tmp_path):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"experiment": ["ddmnist"], "test_accuracy": [0.8]}).to_csv(bad, index=False)
    with pytest.raises(ValueError, match=r"bad\.csv: not a record of measured runs: no column group"):
        read_record(bad)
    twice = tmp_path / "twice.csv"
    row = record_runs([fake_run(tmp_path, "cnn", 0, 0.8)])
    pd.concat([row, row]).to_csv(twice, index=False)
    with pytest.raises(ValueError, match=r"twice\.csv: runs recorded twice: ddmnist/D4/cnn/0"):
        read_record(twice)


def test_beside_the_paper_mean_sample_std_difference_and_time(tmp_path):
    for seed, accuracy in enumerate((0.80, 0.84, 0.85)):
        fake_run(tmp_path, "ours", seed, accuracy, epochs=(100.0, 200.0, 150.0, 150.0))
    out = tmp_path / "record.csv"
    main([str(tmp_path / "runs"), "--out", str(out)])
    (row,) = beside_paper(read_record(out), PAPER4).to_dict("records")
    std = math.sqrt(((0.80 - 0.83) ** 2 + (0.84 - 0.83) ** 2 + (0.85 - 0.83) ** 2) / 2)  # ddof = 1
    assert row["seeds"] == 3 and row["ours"] == f"0.830 ({std:.3f})"
    assert row["paper"] == "0.868 (0.002)" and row["ours − paper"] == "-0.038"
    assert row["per seed"] == "0:\u00a00.800, 1:\u00a00.840, 2:\u00a00.850"
    assert row["hours / run"] == f"channels-last compiled, 1 thread: 2.00 ({4 * 150 / 3600:.2f})"


def test_the_committed_record_reads_and_sits_beside_the_paper():
    record = read_record(ROOT / "reports" / "measured" / "ddmnist_paper_scale.csv")
    assert len(record) and not record["synthetic"].any()
    assert record["test_accuracy"].between(0, 1).all() and (record["epochs_run"] > 0).all()
    table = beside_paper(record, PAPER4)
    assert set(table["model"]) <= {"cnn", "ours"} and (table["paper"] != "–").all()
