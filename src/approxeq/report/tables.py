"""Results tables with pandas: runs → mean (std) over seeds beside the paper's values."""
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


def compare_with_paper(summary: pd.DataFrame, paper: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """Long table: every (model, group) of ours and of the paper; `source` says which were trained
    here and which are imported from the paper."""
    ours = summary.rename(columns={"mean": "ours_mean", "std": "ours_std"})
    ours["label"] = ours["model"].map(labels).fillna(ours["model"])
    paper = paper.rename(columns={"mean": "paper_mean", "std": "paper_std", "params_m": "paper_params_m"})
    table = paper.merge(ours.drop(columns=["label"]), on=["model", "group"], how="outer")
    table["label"] = table["label"].fillna(table["model"].map(labels)).fillna(table["model"])
    table["difference"] = table["ours_mean"] - table["paper_mean"]
    table["ours_params_m"] = table["parameters"] / 1e6
    table["source"] = table["ours_mean"].notna().map({True: "trained here", False: "imported from paper"})
    order = {label: i for i, label in enumerate(list(labels.values()) + list(paper["label"]))}
    table["_order"] = table["label"].map(order)
    columns = ["label", "model", "group", "source", "ours_mean", "ours_std", "seeds", "paper_mean",
               "paper_std", "difference", "ours_params_m", "paper_params_m", "parameters", "synthetic",
               "train_seconds", "at_chance"]
    return table.sort_values(["_order", "group"], ignore_index=True)[columns]


def mean_std(mean: float, std: float, digits: int = 3, n: int | None = None) -> str:
    """'mean (std)'; the std of a single seed (n = 1, or std missing) is '–'."""
    if pd.isna(mean):
        return "–"
    if pd.isna(std) or (n is not None and n < 2):
        return f"{mean:.{digits}f} (–)"
    return f"{mean:.{digits}f} ({std:.{digits}f})"


def wide_table(long: pd.DataFrame, groups: list[str]) -> pd.DataFrame:
    """The paper's layout: one row per model, per group a 'mean (std)' cell and Par (M).

    Models trained here get two rows: ours and the paper's value for the same model."""
    rows = []
    for label, block in long.groupby("label", sort=False):
        by_group = block.set_index("group")
        trained = block["source"].eq("trained here").any()
        variants = [("this run", "ours_mean", "ours_std", "ours_params_m")] if trained else []
        if block["paper_mean"].notna().any():
            variants.append(("paper" if trained else "paper (imported)", "paper_mean", "paper_std",
                             "paper_params_m"))
        for source, mean_col, std_col, par_col in variants:
            row = {"Model": label, "Source": source}
            for group in groups:
                if group in by_group.index:
                    r = by_group.loc[group]
                    row[group] = mean_std(r[mean_col], r[std_col],
                                          n=r["seeds"] if source == "this run" else None)
                    if source == "this run" and r.get("at_chance", 0) > 0:
                        row[group] += f" {CHANCE_MARK}"
                    row[f"Par (M) {group}"] = "–" if pd.isna(r[par_col]) else f"{r[par_col]:.2f}"
                else:
                    row[group], row[f"Par (M) {group}"] = "–", "–"
            rows.append(row)
    return pd.DataFrame(rows)


def exploratory_table(metrics: list[dict], decompositions: list[dict], paper: pd.DataFrame) -> pd.DataFrame:
    """Tables 1-3: one row per run with its irreducible counts, how far they are from integers,
    the algebra loss and the equivariance losses, then mean and std rows; the paper's counts of
    the run with the same number beside (the paper's runs are not seeded like ours)."""
    for m in metrics:
        task = "test_accuracy" if "test_accuracy" in m else "test_reconstruction_mse"
        require_finite([m], ["test_algebra", "test_equivariance_in", "test_equivariance_out",
                             "input_action_homomorphism_error_max", task], "an exploratory table")
        check_metric_ranges(m, "an exploratory table")
    rows = []
    for run, (m, d) in enumerate(sorted(zip(metrics, decompositions), key=lambda p: p[0]["seed"]), 1):
        row = {"run": str(run), "seed": m["seed"]}
        snapping = d.get("eigenvalue_snapping")
        if snapping:  # cyclic groups: counts of snapped eigenvalues, as the paper
            row.update({f"eig {k}": snapping["counts_by_label"][k] for k in snapping["labels"]})
            row["max eigenvalue distance"] = snapping["max_distance"]
        row.update({f"m({k})": d["real_multiplicities"][k] for k in d["real_labels"]})
        row["distance to integers"] = d["real_distance_to_integers"]
        row["homomorphism error"] = d["homomorphism_error"]
        row["homomorphism error at init"] = d["initial"]["homomorphism_error"]
        row["algebra loss"] = m["test_algebra"]
        row["equivariance loss (X→Z)"] = m["test_equivariance_in"]
        row["equivariance loss (Z→Y)"] = m["test_equivariance_out"]
        row["input action homomorphism error"] = m["input_action_homomorphism_error_max"]
        task = "test_accuracy" if "test_accuracy" in m else "test_reconstruction_mse"
        row[task.replace("test_", "test ")] = m[task]
        row["synthetic"] = bool(m.get("synthetic", False))
        paper_row = paper[paper["run"] == run]
        for column in paper.columns.drop("run"):
            row[f"paper {column}"] = paper_row[column].iloc[0] if len(paper_row) else float("nan")
        rows.append(row)
    table = pd.DataFrame(rows)
    numeric = table.select_dtypes("number").columns.drop("seed")
    summary = [dict({"run": stat}, **getattr(table[numeric], stat)().to_dict()) for stat in ("mean", "std")]
    table = pd.concat([table, pd.DataFrame(summary)], ignore_index=True)
    table.loc[table["run"].isin(["mean", "std"]), "synthetic"] = table["synthetic"].iloc[: len(rows)].any()
    return table


def smoke_table(runs: pd.DataFrame, paper: pd.DataFrame, labels: dict[str, str], horizons: list[int],
                test_horizon: int) -> pd.DataFrame:
    """Table 6: RMSE on Future and Domain, mean (std) over seeds at each test horizon, beside the
    paper's values (which use the horizon `test_horizon` of the paper's text)."""
    require_finite(runs, [f"{split}_rmse_h{h}" for h in horizons for split in ("future", "domain")]
                   + ["parameters"], "Table 6")
    # a model whose latent carries no group action (the MLP) has no latent equivariance in any run
    # ("–"); every other model must have it in every run
    latent = "latent_equivariance_relative"
    measured = (runs.groupby("model")[latent].transform(lambda c: c.notna().any()) if latent in runs
                else pd.Series(False, index=runs.index))
    require_finite(runs[measured.astype(bool)], [latent], "Table 6")
    rows = []
    trained = set(runs["model"])
    for _, p in paper.iterrows():
        if p["model"] in trained:
            ours = runs[runs["model"] == p["model"]]
            row = {"Model": labels.get(p["model"], p["label"]), "Aug": p["aug"], "Source": "this run",
                   "seeds": len(ours)}
            for h in horizons:
                for split in ("future", "domain"):
                    column = ours[f"{split}_rmse_h{h}"]
                    row[f"{split.capitalize()} (h={h})"] = mean_std(column.mean(), column.std(ddof=1),
                                                                   3, n=len(column))
            row["Par (M)"] = f"{ours['parameters'].iloc[0] / 1e6:.2f}"
            row["latent equivariance (rel.)"] = (f"{ours[latent].mean():.3f}" if latent in ours
                                                 and ours[latent].notna().all() else "–")
            rows.append(row)
        source = "paper" if p["model"] in trained else "paper (imported)"
        row = {"Model": p["label"], "Aug": p["aug"], "Source": source, "seeds": 5}
        for h in horizons:
            for split in ("future", "domain"):
                row[f"{split.capitalize()} (h={h})"] = (mean_std(p[f"{split}_mean"], p[f"{split}_std"], 2)
                                                        if h == test_horizon else "–")
        row["Par (M)"] = f"{p['params_m']:.2f}"
        row["latent equivariance (rel.)"] = "–"
        rows.append(row)
    return pd.DataFrame(rows)


def medmnist_table(runs: pd.DataFrame, paper: pd.DataFrame, flags: dict[str, str],
                   labels: dict[str, str]) -> pd.DataFrame:
    """Table 5: test accuracy (unrotated test set) per data set, mean (std) over seeds, for every
    model trained here beside the paper's row of the same model; the paper's other rows follow,
    labelled as imported. `flags` maps medmnist flag → column label (Nodule3D, ...)."""
    rows = []
    trained = set(runs["model"])
    for _, p in paper.iterrows():
        if p["model"] in trained:
            ours = runs[runs["model"] == p["model"]]
            row = {"Group": "O ≅ S4" if p["model"] == "ours" else p["group"],
                   "Model": labels.get(p["model"], p["label"]), "Aug": p["aug"], "Source": "this run",
                   "seeds": int(ours.groupby("experiment")["seed"].count().min())}
            for flag, column in flags.items():
                chosen = ours["experiment"] == flag
                values = ours.loc[chosen, "test_accuracy"]
                row[column] = mean_std(values.mean(), values.std(ddof=1), n=len(values))
                if "at_chance" in ours and ours.loc[chosen, "at_chance"].any():
                    row[column] += f" {CHANCE_MARK}"
            row["Par (M)"] = f"{ours['parameters'].max() / 1e6:.2f}"
            rows.append(row)
        row = {"Group": p["group"], "Model": p["label"], "Aug": p["aug"],
               "Source": "paper" if p["model"] in trained else "paper (imported)", "seeds": 5}
        for flag, column in flags.items():
            row[column] = mean_std(p[f"{flag}_mean"], p[f"{flag}_std"])
        row["Par (M)"] = f"{p['params_m']:.2f}"
        rows.append(row)
    return pd.DataFrame(rows)


def medmnist_details(runs: pd.DataFrame, flags: dict[str, str], labels: dict[str, str],
                     augs: dict[str, str]) -> pd.DataFrame:
    """Per data set and model trained here: accuracy on the unrotated and the rotated test set,
    AUC (medmnist's Evaluator) on both, the latent's relative equivariance error and epochs,
    mean over seeds."""
    columns = {"test_accuracy": "acc", "test_rotated_accuracy": "acc (rotated)", "test_auc": "AUC",
               "test_rotated_auc": "AUC (rotated)",
               "latent_equivariance_relative": "latent equivariance (rel.)",
               "best_epoch": "best epoch", "epochs_run": "epochs run"}
    grouped = runs.groupby(["experiment", "model"], sort=False)[list(columns)].mean().reset_index()
    grouped["Data set"] = grouped["experiment"].map(flags)
    grouped["Model"] = grouped["model"].map(labels).fillna(grouped["model"])
    grouped["Aug"] = grouped["model"].map(augs).fillna("–")
    grouped["seeds"] = runs.groupby(["experiment", "model"], sort=False)["seed"].count().values
    order = {f: i for i, f in enumerate(flags)}
    grouped = grouped.sort_values(["experiment", "model"], key=lambda s: s.map(order) if s.name == "experiment"
                                  else s.map({m: i for i, m in enumerate(labels)}), ignore_index=True)
    table = grouped.rename(columns=columns)[["Data set", "Model", "Aug", "seeds", *columns.values()]]
    for column in ("acc", "acc (rotated)", "AUC", "AUC (rotated)", "latent equivariance (rel.)"):
        table[column] = table[column].map(lambda v: f"{v:.3f}")
    for column in ("best epoch", "epochs run"):
        table[column] = table[column].map(lambda v: f"{v:.1f}".removesuffix(".0"))
    return table


def classification_table(runs: pd.DataFrame, datasets: dict[str, dict], models: dict[str, dict]) -> pd.DataFrame:
    """Your own data sets (classification.datasets): per data set and model, accuracy on the test
    split as stored and on the same samples each moved by a seeded element of G, mean (std) over
    seeds, and the latent's relative equivariance error (mean). No paper column: these are yours."""
    rows = []
    for name, dataset in datasets.items():
        for model, settings in models.items():
            chosen = runs[(runs["experiment"] == name) & (runs["model"] == model)]
            if chosen.empty:
                continue
            row = {"Data set": dataset["label"], "Group": f"{dataset['group']} ({dataset['domain']}s)",
                   "Model": settings["label"], "Aug": settings["aug"], "seeds": len(chosen)}
            for column, metric in (("Test acc.", "test_accuracy"),
                                   ("Transformed test acc.", "test_transformed_accuracy")):
                values = chosen[metric]
                row[column] = mean_std(values.mean(), values.std(ddof=1), n=len(values))
                if metric == "test_accuracy" and chosen["at_chance"].any():
                    row[column] += f" {CHANCE_MARK}"
            row["Latent equivariance (rel.)"] = f"{chosen['latent_equivariance_relative'].mean():.3f}"
            row["Par (M)"] = f"{chosen['parameters'].max() / 1e6:.2f}"
            rows.append(row)
    columns = ["Data set", "Group", "Model", "Aug", "seeds", "Test acc.", "Transformed test acc.",
               "Latent equivariance (rel.)", "Par (M)"]
    return pd.DataFrame(rows, columns=columns)
