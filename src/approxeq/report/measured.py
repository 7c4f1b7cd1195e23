"""Paper-scale runs measured by us, kept as a committed record beside the paper's numbers.

A paper-scale DDMNIST run takes hours on a CPU, so the report of a quick run (or of a machine that
never trained at paper scale) cannot recompute them. Instead the finished runs' own files are
distilled into one CSV that is committed (`reports/measured/ddmnist_paper_scale.csv`), one row per
run with its provenance: the commit that trained it, the settings it computed with, its data hash,
its training time. Every report renders that record as it is, with mean (std) over seeds beside
the paper's; nothing in it is typed in.

    python -m approxeq.report.measured RUN_DIR... --out reports/measured/ddmnist_paper_scale.csv

RUN_DIR: a finished run's folder (metrics.json, train.json, history.jsonl) or a folder above
several. Rows already in the record for other runs are kept; a run measured again replaces its row.
"""
from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
from pathlib import Path

import pandas as pd

from approxeq.method.summary import RUN_KEYS, collect_metrics, mean_std, metrics_files
from approxeq.runtime.io import write_text_atomic

COLUMNS = [*RUN_KEYS, "test_accuracy", "test_clean_accuracy", "best_epoch", "epochs_run", "parameters",
           "synthetic", "train_hours", "median_epoch_seconds", "threads", "channels_last", "compile",
           "keep_freed_memory", "device", "torch", "finished", "commit", "data_sha256"]


def git_commit(folder: Path) -> str:
    """The commit checked out in the repository holding `folder` ("unknown" outside one)."""
    done = subprocess.run(["git", "-C", str(folder), "rev-parse", "--short=7", "HEAD"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def logged_threads(folder: Path) -> int | None:
    """The thread count a run's log states ("device cpu, 1 threads"), for runs whose train.json
    predates recording it; the log of results/runs/E/G/M/seedS is results/logs/train/E/G/M/seedS.log."""
    parts = folder.parts
    if "runs" not in parts:
        return None
    at = len(parts) - 1 - parts[::-1].index("runs")
    log = Path(*parts[:at], "logs", "train", *parts[at + 1:]).with_suffix(".log")
    if not log.exists():
        return None
    found = re.search(r"^device .*, (\d+) threads$", log.read_text(), flags=re.MULTILINE)
    return int(found.group(1)) if found else None


def run_row(metrics_file: Path, metrics: pd.Series) -> dict:
    """One record row from a finished run's folder and its metrics."""
    folder = metrics_file.parent
    info = json.loads((folder / "train.json").read_text())
    epochs = [json.loads(line) for line in (folder / "history.jsonl").read_text().splitlines() if line.strip()]
    data = info.get("data_sha256") or {}
    return {**{key: metrics.get(key) for key in COLUMNS if key in metrics},
            "train_hours": info["train_seconds"] / 3600,
            # the typical epoch, untouched by pauses and by the load of other work on the machine
            "median_epoch_seconds": statistics.median(e["seconds"] for e in epochs),
            "threads": info.get("threads") or logged_threads(folder), "channels_last": info.get("channels_last", False),
            "compile": info.get("compile", False), "keep_freed_memory": info.get("keep_freed_memory", False),
            "device": info.get("device"), "torch": info.get("torch"),
            "finished": pd.Timestamp(info["finished_at"], unit="s").strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(folder),
            "data_sha256": ";".join(f"{Path(k).name}:{v[:12]}" for k, v in sorted(data.items()))}


def record_runs(paths: list[Path]) -> pd.DataFrame:
    """The record rows of every finished run at or under `paths` (metrics.json files or folders)."""
    files = metrics_files(paths)
    runs = collect_metrics(files, required=("test_accuracy",))
    by_key = {tuple(json.loads(f.read_text())[k] for k in RUN_KEYS): f for f in files}
    rows = [run_row(by_key[tuple(r[k] for k in RUN_KEYS)], r) for _, r in runs.iterrows()]
    return pd.DataFrame(rows, columns=COLUMNS)


def merge(record: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """`record` with `new`'s runs added, a run already there replaced by its new row."""
    keep = ~record.set_index(list(RUN_KEYS)).index.isin(new.set_index(list(RUN_KEYS)).index)
    both = pd.concat([record[keep], new], ignore_index=True) if len(record) else new
    return both.sort_values(list(RUN_KEYS), ignore_index=True)[COLUMNS]


def read_record(path: Path) -> pd.DataFrame:
    """The committed record, checked: the columns it must have, one row per run, finite accuracies."""
    record = pd.read_csv(path)
    missing = [c for c in COLUMNS if c not in record.columns]
    if missing:
        raise ValueError(f"{path}: not a record of measured runs: no column {', '.join(missing)}")
    duplicated = record[record.duplicated(list(RUN_KEYS), keep=False)]
    if len(duplicated):
        raise ValueError(f"{path}: runs recorded twice: "
                         + ", ".join(sorted({"/".join(map(str, r)) for r in duplicated[list(RUN_KEYS)].values})))
    return record


def beside_paper(record: pd.DataFrame, paper: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, group, model): seeds, our mean (std) and each seed's value beside the
    paper's Table 4 mean (std), the difference, and the training time of one run per setting (mean
    over its seeds: hours as recorded, and in brackets epochs × the median epoch, which pauses and
    load do not inflate)."""
    rows = []
    for (experiment, group, model), runs in record.groupby(["experiment", "group", "model"], sort=True):
        accuracy = runs["test_accuracy"]  # sample std (ddof = 1), as every table of the pipeline
        summary = {"mean": accuracy.mean(), "std": accuracy.std(), "seeds": len(runs)}
        match = paper[(paper["model"] == model) & (paper["group"] == group)]
        paper_mean = float(match["mean"].iloc[0]) if len(match) else float("nan")
        paper_std = float(match["std"].iloc[0]) if len(match) else float("nan")
        rows.append({
            "experiment": experiment, "group": group, "model": model,
            "seeds": int(summary["seeds"]),
            "ours": mean_std(summary["mean"], summary["std"], n=int(summary["seeds"])),
            # a non-breaking space keeps each "seed: value" pair on one line in a narrow column
            "per seed": ", ".join(f"{int(s)}:\u00a0{v:.3f}" for s, v in zip(runs["seed"], runs["test_accuracy"])),
            "paper": mean_std(paper_mean, paper_std) if len(match) else "–",
            "ours − paper": f"{summary['mean'] - paper_mean:+.3f}" if len(match) else "–",
            # per setting, since the settings (and the code's speed) differ between runs
            "hours / run": "; ".join(
                f"{label}: {group['train_hours'].mean():.2f} "
                f"({(group['epochs_run'] * group['median_epoch_seconds']).mean() / 3600:.2f})"
                for label, group in runs.groupby(runs.apply(settings_text, axis=1), sort=True)),
            "commits": ", ".join(sorted(set(runs["commit"].astype(str)))),
            "synthetic": bool(runs["synthetic"].any()),
        })
    return pd.DataFrame(rows)


def settings_text(run: pd.Series) -> str:
    """How one run computed: layout, compilation, threads (its digits depend on them)."""
    layout = "channels-last" if run["channels_last"] else "NCHW"
    mode = "compiled" if run["compile"] else "eager"
    threads = "threads unknown" if pd.isna(run["threads"]) else \
        f"{int(run['threads'])} thread{'s' if run['threads'] != 1 else ''}"
    return f"{layout} {mode}, {threads}"


def main(argv=None) -> pd.DataFrame:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the record (CSV), created or updated")
    parser.add_argument("--paper", type=Path, default=Path(__file__).resolve().parents[3] / "workflow/paper/table4.csv")
    args = parser.parse_args(argv)
    new = record_runs(args.paths)
    record = merge(read_record(args.out), new) if args.out.exists() else new
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(args.out, record.to_csv(index=False, float_format="%.6g"))
    print(f"wrote {args.out}: {len(record)} runs ({len(new)} from {', '.join(map(str, args.paths))})")
    print(beside_paper(record, pd.read_csv(args.paper)).drop(columns=["commits"]).to_string(index=False))
    return record


if __name__ == "__main__":
    main()
