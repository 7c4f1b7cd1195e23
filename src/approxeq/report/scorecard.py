"""The scorecard: every number of the paper's Tables 1-6 that this pipeline reproduces, the
paper's value beside ours, the difference in units of the combined standard deviation and a
verdict.

The rows come from each experiment's module (`scorecard_rows` of experiments/ddmnist.py,
medmnist.py, smoke.py and, for Tables 1-3, exploratory.py; method/comparison.py's row); this
module adds Δ, σ, Δ/σ and the verdicts. One row per reproduced number: per (model, group) of
Table 4, per (model, data set) of Table 5, per (model, split) of Table 6 at the paper's test
horizon, and per irreducible (column) of Tables 1-3. The paper's Tables 1-3 give counts per run
of unseeded runs, so a run of ours is not the same run as the paper's run of the same number;
their row compares the mean over runs (std over runs) of each column. A paper row whose model was not trained here (any model key of the
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
method.summary.flag_chance_level; the report says "k of n runs at chance level" beside the row): such a
mean is kept, never silently averaged.
"""
from __future__ import annotations

import math

import pandas as pd

from approxeq.method.comparison import COLUMNS

WITHIN, OUTSIDE, NOT_RUN = "within 2σ", "outside 2σ", "not run"
QUICK, SYNTHETIC = "not comparable (quick run)", "not comparable (synthetic data)"
VERDICTS = (WITHIN, OUTSIDE, QUICK, SYNTHETIC, NOT_RUN)

# The last digit the paper prints in each table's std (Tables 1-3: stds of integer counts, exact).
PAPER_RESOLUTION = {4: 0.001, 5: 0.001, 6: 0.01}


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
