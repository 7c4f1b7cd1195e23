"""The scorecard: every number of the paper's Tables 1-6 that this pipeline reproduces, the
paper's value beside ours, the difference in units of the combined standard deviation and a
verdict.

One row per reproduced number: per (model, group) of Table 4, per (model, data set) of Table 5,
per (model, split) of Table 6 at the paper's test horizon, and per irreducible (column) of
Tables 1-3. The paper's Tables 1-3 give counts per run of unseeded runs, so a run of ours is not
the same run as the paper's run of the same number; their row compares the mean over runs (std
over runs) of each column. A paper row whose model was not trained here (any model key of the
paper's CSV without runs here) is a row with verdict "not run"; a model trained here is compared
as soon as its key matches the paper's (no model list is written here).

Verdicts: "within 2σ" (|Δ| ≤ 2σ, σ = sqrt(σ_ours² + σ_paper²), the sample std over seeds where
there are two or more, else the paper's alone), "outside 2σ", "not comparable (quick run)",
"not comparable (synthetic data)", "not run". The paper prints its stds rounded (Table 6 to two
decimals, so "0.00" means below 0.005): σ_paper is taken as at least half the last printed digit
(PAPER_RESOLUTION), so a rounded-away std never makes Δ/σ infinite. A "not run" row of a model
that the configuration lists under `not_trained` carries the configured reason as its note.

Tables 4-6 rows also carry the parameter counts in millions, ours (computed from the model)
beside the paper's Par (M). Tables 4 and 5 rows count the runs at chance level (`at_chance_runs`,
tables.flag_chance_level; the report says "k of n runs at chance level" beside the row): such a
mean is kept, never silently averaged.
"""
from __future__ import annotations

import math

import pandas as pd

from approxeq.report.tables import require_finite

WITHIN, OUTSIDE, NOT_RUN = "within 2σ", "outside 2σ", "not run"
QUICK, SYNTHETIC = "not comparable (quick run)", "not comparable (synthetic data)"
VERDICTS = (WITHIN, OUTSIDE, QUICK, SYNTHETIC, NOT_RUN)

COLUMNS = ["table", "section", "quantity", "model", "label", "column", "paper_mean", "paper_std",
           "paper_n", "ours_mean", "ours_std", "ours_n", "delta", "sigma", "delta_sigma", "verdict",
           "paper_params_m", "ours_params_m", "at_chance_runs", "note"]

# The last digit the paper prints in each table's std (Tables 1-3: stds of integer counts, exact).
PAPER_RESOLUTION = {4: 0.001, 5: 0.001, 6: 0.01}

# Tables 1-3: the paper's column → ours (Tables 1 and 3: snapped eigenvalues; Table 2: real
# multiplicities). Table 3's column labels were lost in the paper's text; its columns are taken in
# the order 1, i, -1, -i (its runs 3 and 5 have columns 2 and 4 equal, as conjugate eigenvalues i
# and -i of a real matrix must be).
EXPLORATORY = {
    1: ("tmnist", "TMNIST autoencoder, C2", {"plus_one": ("eig 1", "+1"), "minus_one": ("eig -1", "−1")}),
    2: ("mnist_d3", "MNIST autoencoder, D3",
        {"trivial": ("m(trivial)", "trivial"), "sign": ("m(sign)", "sign"),
         "standard": ("m(standard)", "standard")}),
    3: ("cifar10", "CIFAR10 classifier, C4",
        {"column_1": ("eig 1", "1 (column 1)"), "column_2": ("eig i", "i (column 2)"),
         "column_3": ("eig -1", "−1 (column 3)"), "column_4": ("eig -i", "−i (column 4)")}),
}


def _stats(values) -> tuple[float, float, int]:
    values = pd.Series(values, dtype=float)
    n = int(values.count())
    return (float(values.mean()) if n else math.nan,
            float(values.std(ddof=1)) if n > 1 else math.nan, n)


def _row(table: int, section: str, quantity: str, model: str, label: str, column: str,
         paper: tuple[float, float, int], ours: tuple[float, float, int] | None, synthetic: bool,
         note: str = "", params_m: tuple[float, float] = (math.nan, math.nan), at_chance: int = 0) -> dict:
    """`params_m`: (paper's Par (M), ours in millions); `at_chance`: how many of our runs are at
    chance level (tables.flag_chance_level): kept in the mean, counted in `at_chance_runs`."""
    row = dict(table=table, section=section, quantity=quantity, model=model, label=label, column=column,
               paper_mean=paper[0], paper_std=paper[1], paper_n=paper[2], ours_mean=math.nan,
               ours_std=math.nan, ours_n=0, synthetic=bool(synthetic), note=note,
               paper_params_m=params_m[0], ours_params_m=params_m[1], at_chance_runs=int(at_chance))
    if ours is not None:
        row.update(ours_mean=ours[0], ours_std=ours[1], ours_n=ours[2])
    return row


def _params_m(ours: pd.DataFrame | None) -> float:
    """Our parameter count in millions (the largest over the runs: MedMNIST3D heads differ per
    data set), NaN where nothing was trained."""
    if ours is None or not len(ours) or "parameters" not in ours:
        return math.nan
    return float(ours["parameters"].max()) / 1e6


def _at_chance(ours: pd.DataFrame | None) -> int:
    """How many of the runs are flagged at chance level (0 where none is, or none is flagged)."""
    if ours is None or "at_chance" not in ours:
        return 0
    return int(ours["at_chance"].astype(bool).sum())


def _not_run_note(model: str, found: bool, not_trained: dict[str, str] | None) -> str:
    return "" if found else (not_trained or {}).get(model, "")


def ddmnist_rows(runs: pd.DataFrame | None, paper: pd.DataFrame,
                 not_trained: dict[str, str] | None = None) -> list[dict]:
    """Table 4: test accuracy (transformed test set) per (model, group)."""
    if runs is not None and len(runs):
        require_finite(runs, ["test_accuracy"], "the scorecard (Table 4)")
    rows = []
    for _, p in paper.iterrows():
        ours = None if runs is None else runs[(runs["model"] == p["model"]) & (runs["group"] == p["group"])]
        found = ours is not None and len(ours) > 0
        rows.append(_row(4, "DDMNIST", "test accuracy", p["model"], p["label"], p["group"],
                         (p["mean"], p["std"], 5), _stats(ours["test_accuracy"]) if found else None,
                         found and bool(ours["synthetic"].any()), _not_run_note(p["model"], found, not_trained),
                         (p["params_m"], _params_m(ours if found else None)), _at_chance(ours if found else None)))
    return rows


def medmnist_rows(runs: pd.DataFrame | None, paper: pd.DataFrame, flags: dict[str, str],
                  not_trained: dict[str, str] | None = None) -> list[dict]:
    """Table 5: test accuracy (unrotated test set) per (model, data set)."""
    if runs is not None and len(runs):
        require_finite(runs, ["test_accuracy"], "the scorecard (Table 5)")
    rows = []
    for _, p in paper.iterrows():
        group = "" if pd.isna(p["group"]) else str(p["group"])  # "N/A" reads as NaN
        label = p["label"] + (f" ({group})" if group not in ("", "N/A", "S4") else "") + \
            (" aug." if p["aug"] == "Yes" and p["model"] != "ours" else "")
        for flag, column in flags.items():
            ours = None if runs is None else runs[(runs["model"] == p["model"]) & (runs["experiment"] == flag)]
            found = ours is not None and len(ours) > 0
            rows.append(_row(5, "MedMNIST3D", "test accuracy", p["model"], label, column,
                             (p[f"{flag}_mean"], p[f"{flag}_std"], 5),
                             _stats(ours["test_accuracy"]) if found else None,
                             found and bool(ours["synthetic"].any()),
                             _not_run_note(p["model"], found, not_trained),
                             (p["params_m"], _params_m(ours if found else None)),
                             _at_chance(ours if found else None)))
    return rows


def smoke_rows(runs: pd.DataFrame | None, paper: pd.DataFrame, test_horizon: int,
               not_trained: dict[str, str] | None = None) -> list[dict]:
    """Table 6: RMSE on Future and Domain at the paper's test horizon, per model."""
    keys = [f"{split}_rmse_h{test_horizon}" for split in ("future", "domain")]
    if runs is not None and len(runs):
        require_finite(runs, keys, "the scorecard (Table 6)")
    rows = []
    for _, p in paper.iterrows():
        label = p["label"] + (" aug." if p["aug"] == "Yes" and p["model"] != "ours" else "")
        ours = None if runs is None else runs[runs["model"] == p["model"]]
        found = ours is not None and len(ours) > 0
        for split in ("future", "domain"):
            rows.append(_row(6, "SMOKE", f"test RMSE (h = {test_horizon})", p["model"], label,
                             split.capitalize(), (p[f"{split}_mean"], p[f"{split}_std"], 5),
                             _stats(ours[f"{split}_rmse_h{test_horizon}"]) if found else None,
                             found and bool("synthetic" in ours and ours["synthetic"].any()),
                             _not_run_note(p["model"], found, not_trained),
                             (p["params_m"], _params_m(ours if found else None))))
    return rows


def exploratory_rows(number: int, table: pd.DataFrame | None, paper: pd.DataFrame) -> list[dict]:
    """Tables 1-3: per irreducible, mean (std) over runs of its count, ours beside the paper's.
    `table`: our table{number}.csv (one row per run, then "mean" and "std" rows), None when the
    experiment was not run."""
    experiment, section, columns = EXPLORATORY[number]
    runs = None if table is None else table[~table["run"].astype(str).isin(["mean", "std"])]
    rows = []
    for paper_column, (ours_column, label) in columns.items():
        found = runs is not None and len(runs) > 0 and ours_column in runs
        # (the paper's runs are unseeded, so the mean over runs is compared: the report says so once)
        note = "the paper's column labels were lost: read as eigenvalues 1, i, −1, −i" if number == 3 else ""
        rows.append(_row(number, section, "irreducible count", "ours", "Ours", label,
                         _stats(paper[paper_column]),
                         _stats(runs[ours_column]) if found else None,
                         found and bool(runs["synthetic"].astype(str).str.lower().eq("true").any()),
                         note))
    return rows


def verdicts(rows: list[dict], quick: bool) -> pd.DataFrame:
    """The scorecard DataFrame: Δ = ours − paper, σ, Δ/σ and the verdict of every row."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=COLUMNS + ["synthetic"])
    stds = frame[["ours_std", "paper_std"]].fillna(0.0)
    resolution = frame["table"].map(PAPER_RESOLUTION).fillna(0.0)
    stds["paper_std"] = stds["paper_std"].where(stds["paper_std"] >= resolution / 2, resolution / 2)
    frame["delta"] = frame["ours_mean"] - frame["paper_mean"]
    frame["sigma"] = (stds["ours_std"] ** 2 + stds["paper_std"] ** 2) ** 0.5

    def ratio(r):
        if pd.isna(r["delta"]):
            return math.nan
        if r["sigma"] > 0:
            return r["delta"] / r["sigma"]
        return 0.0 if r["delta"] == 0 else math.copysign(math.inf, r["delta"])

    frame["delta_sigma"] = frame.apply(ratio, axis=1)

    def verdict(r):
        if r["ours_n"] == 0:
            return NOT_RUN
        if quick:
            return QUICK
        if r["synthetic"]:
            return SYNTHETIC
        return WITHIN if abs(r["delta_sigma"]) <= 2 + 1e-9 else OUTSIDE  # 2σ exactly: within

    frame["verdict"] = frame.apply(verdict, axis=1)
    synthetic = frame["synthetic"].astype(bool) & frame["verdict"].eq(QUICK)  # both apply: say so
    frame.loc[synthetic, "note"] = ("synthetic data; " + frame.loc[synthetic, "note"].fillna("")).str.rstrip("; ")
    return frame[COLUMNS + ["synthetic"]].sort_values(["table"], kind="stable", ignore_index=True)


def counts(scorecard: pd.DataFrame) -> dict[str, int]:
    """Rows per verdict, every verdict listed (0 where none)."""
    found = scorecard["verdict"].value_counts()
    return {v: int(found.get(v, 0)) for v in VERDICTS}
