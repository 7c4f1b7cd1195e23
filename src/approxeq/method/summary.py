"""Metrics over seeds with pandas: the runs' metrics.json files → one table of runs, checked (a
missing, non-finite or meaningless metric is refused naming the run), runs at chance level
flagged, and mean (std) per (group, model). Every experiment's tables (experiments/<name>.py) are
built from these."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pandas as pd

RUN_KEYS = ("experiment", "group", "model", "seed")


class MetricError(ValueError):
    """A run's metric that a table needs is missing or not a finite number; the message names the
    run. Refused because pandas would silently skip it (a mean over the other seeds, or no row
    of ours at all beside the paper's)."""


def run_name(record) -> str:
    """experiment/group/model/seedN of a metrics record (dict or table row)."""
    return "/".join(str(record.get(k, "?")) if k != "seed" else f"seed{record.get(k, '?')}"
                    for k in RUN_KEYS)


def require_finite(records, keys, what: str) -> None:
    """Refuse (MetricError) any record lacking one of `keys` or holding a value there that is not
    a finite number, naming every such run and key. `records`: dicts or a DataFrame of runs."""
    if isinstance(records, pd.DataFrame):
        records = records.to_dict("records")
    problems = []
    for record in records:
        for key in keys:
            value = record.get(key)
            if value is None:
                problems.append(f"{run_name(record)}: no {key}")
                continue
            try:
                finite = math.isfinite(value)
            except TypeError:
                finite = False
            if isinstance(value, bool) or not finite:
                problems.append(f"{run_name(record)}: {key} = {value!r}")
    if problems:
        raise MetricError(f"{what} needs every run's {', '.join(keys)} as finite numbers; refused: "
                          + "; ".join(problems))


# What a metric's value may be, by its name (fullmatch); a value outside is refused at aggregation,
# naming the file, the key and what is allowed. Accuracies and AUCs are fractions, errors, norms
# and losses non-negative, counts non-negative integers.
METRIC_RANGES = (
    (re.compile(r".*(accuracy|_auc)"), "in [0, 1]", lambda v: 0.0 <= v <= 1.0),
    (re.compile(r".*(rmse|mse|relative|norm_mean|_error_(mean|max)|_algebra|_equivariance_(in|out)|"
                r"train_seconds).*"), "≥ 0", lambda v: v >= 0.0),
)
INTEGER_METRICS = ("seed", "parameters", "epochs_run", "best_epoch", "test_samples")


def check_metric_ranges(record: dict, source: str) -> None:
    """Refuse (MetricError) a run's metric whose value cannot mean what its name says: an accuracy
    of 7.0, a negative RMSE, a fractional parameter count. `source` names the file in the message."""
    problems = []
    for key, value in record.items():
        if key in INTEGER_METRICS:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                problems.append(f"{key} = {value!r} (allowed: a non-negative integer)")
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            continue  # strings and flags; finiteness is require_finite's
        for pattern, allowed, ok in METRIC_RANGES:
            if pattern.fullmatch(key) and not ok(value):
                problems.append(f"{key} = {value!r} (allowed: {allowed})")
                break
    if problems:
        raise MetricError(f"{source}: {run_name(record)}: " + "; ".join(problems))


CHANCE_MARK = "‡"  # a cell with runs at chance level (chance_note says what it means)


def chance_note(runs_at_chance: int, runs: int) -> str:
    """The table note explaining CHANCE_MARK, or "" when no run is at chance level."""
    if not runs_at_chance:
        return ""
    return (f"{CHANCE_MARK} at chance level: {runs_at_chance} of {runs} runs have a test accuracy within "
            "max(3 binomial standard errors, ½ × 1/classes) of 1/classes: the model did not learn the "
            "task, and its mean is not evidence for or against the method.")


def chance_threshold(chance: float, n: int) -> float:
    """The accuracy at or below which a run counts as at chance level: 1/classes (`chance`) plus the
    larger of three binomial standard errors of guessing on `n` test samples and half of 1/classes.
    E.g. 100 classes, 5,000 test images: 0.015; 2 classes, 500: 0.75."""
    return chance + max(3.0 * math.sqrt(chance * (1.0 - chance) / n), 0.5 * chance)


def flag_chance_level(runs: pd.DataFrame, metric: str = "test_accuracy") -> pd.DataFrame:
    """`runs` with a boolean column `at_chance`: the run's `metric` is at or below chance_threshold
    of its own `chance_accuracy` and `test_samples` (False where a run records none: not a
    classification, or written before they were recorded)."""
    runs = runs.copy()
    if {"chance_accuracy", "test_samples", metric} <= set(runs.columns):
        known = runs["chance_accuracy"].notna() & runs["test_samples"].notna()
        threshold = [chance_threshold(c, int(n)) if k else math.nan
                     for c, n, k in zip(runs["chance_accuracy"], runs["test_samples"], known)]
        runs["at_chance"] = known & (runs[metric] <= pd.Series(threshold, index=runs.index))
    else:
        runs["at_chance"] = False
    return runs


def collect_metrics(paths: list[str | Path], required: tuple[str, ...] | None = None) -> pd.DataFrame:
    """One row per run from the runs' metrics.json files.

    Every run must hold each `required` key as a finite number; by default (None) that is every
    test metric (`test_*`) that any run of the same experiment has, so a NaN, an infinity or a
    metric missing from one seed is refused (MetricError naming the run and its file) instead of
    being averaged away."""
    records = []
    for path in paths:
        record = json.loads(Path(path).read_text())
        missing = [k for k in RUN_KEYS if k not in record]
        if missing:
            raise MetricError(f"{path} has no {', '.join(missing)}: not a run's metrics")
        records.append((str(path), record))
    by_experiment: dict[str, set] = {}
    for _, record in records:
        by_experiment.setdefault(record["experiment"], set()).update(
            k for k in record if k.startswith("test_"))
    for path, record in records:
        keys = sorted(by_experiment[record["experiment"]]) if required is None else list(required)
        try:
            require_finite([record], keys, "the runs' table")
        except MetricError as error:
            raise MetricError(f"{path}: {error}") from None
        check_metric_ranges(record, path)
    # nested records (the data files' hashes) stay in metrics.json; the table holds scalars
    rows = [{k: v for k, v in r.items() if not isinstance(v, (dict, list))} for _, r in records]
    return flag_chance_level(pd.DataFrame(rows).sort_values(list(RUN_KEYS), ignore_index=True))


def summarise(runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean and sample std (ddof = 1; 0 for a single seed) of `metric` per (group, model).
    Every run's `metric` must be a finite number (MetricError naming the run otherwise)."""
    require_finite(runs, [metric, "parameters"], f"the summary of {metric}")
    runs = runs if "at_chance" in runs else flag_chance_level(runs)
    grouped = runs.groupby(["group", "model"], sort=False)
    summary = grouped.agg(mean=(metric, "mean"), std=(metric, "std"), seeds=("seed", "count"),
                          parameters=("parameters", "first"), synthetic=("synthetic", "any"),
                          train_seconds=("train_seconds", "mean"), at_chance=("at_chance", "sum"))
    summary["std"] = summary["std"].fillna(0.0)
    return summary.reset_index()


def mean_std(mean: float, std: float, digits: int = 3, n: int | None = None) -> str:
    """'mean (std)'; the std of a single seed (n = 1, or std missing) is '–'."""
    if pd.isna(mean):
        return "–"
    if pd.isna(std) or (n is not None and n < 2):
        return f"{mean:.{digits}f} (–)"
    return f"{mean:.{digits}f} ({std:.{digits}f})"


def metrics_files(paths) -> list[Path]:
    """The metrics.json files at or under `paths` (files, or folders searched), each once, sorted;
    SystemExit naming the paths when there is none."""
    files = sorted({f.resolve() for p in map(Path, paths) for f in ([p] if p.is_file() else p.rglob("metrics.json"))})
    if not files:
        raise SystemExit(f"no finished run (metrics.json) under {', '.join(map(str, paths))}")
    return files


def main(argv=None) -> pd.DataFrame:
    """`python -m approxeq.method.summary PATH... [--metric test_accuracy]`: metrics over seeds of
    any set of finished runs (metrics.json files, or folders searched for them), e.g. the D4 column
    of a paper-scale run: `python -m approxeq.method.summary results/runs/ddmnist/D4`. Prints, per
    (group, model), the seeds, mean (std), each seed's value and the mean training time."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", type=Path)
    parser.add_argument("--metric", default="test_accuracy")
    args = parser.parse_args(argv)
    runs = collect_metrics(metrics_files(args.paths), required=(args.metric,))
    summary = summarise(runs, args.metric)
    per_seed = runs.groupby(["group", "model"], sort=False).apply(
        lambda r: " ".join(f"{s}:{v:.3f}" for s, v in zip(r["seed"], r[args.metric])), include_groups=False)
    summary["per seed"] = [per_seed[(g, m)] for g, m in zip(summary["group"], summary["model"])]
    summary[args.metric] = [mean_std(m, s, n=n) for m, s, n in zip(summary["mean"], summary["std"], summary["seeds"])]
    summary["train (h)"] = (summary["train_seconds"] / 3600).round(2)
    print(summary[["group", "model", "seeds", args.metric, "per seed", "train (h)"]].to_string(index=False))
    return summary


if __name__ == "__main__":
    main()
