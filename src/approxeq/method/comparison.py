"""One number of the paper beside ours: the row every experiment's scorecard rows are made of
(report/scorecard.py adds Δ, σ, Δ/σ and the verdict). `ours` is (mean, sample std, n) over our
runs, None where the model was not run here; the paper's likewise (n = 5 seeds in Tables 4-6, the
number of runs in Tables 1-3)."""
from __future__ import annotations

import math

import pandas as pd

COLUMNS = ["table", "section", "quantity", "model", "label", "column", "paper_mean", "paper_std",
           "paper_n", "ours_mean", "ours_std", "ours_n", "delta", "sigma", "delta_sigma", "verdict",
           "paper_params_m", "ours_params_m", "at_chance_runs", "note"]


def stats(values) -> tuple[float, float, int]:
    """(mean, sample std (NaN for fewer than two), count) of the finite values."""
    values = pd.Series(values, dtype=float)
    n = int(values.count())
    return (float(values.mean()) if n else math.nan,
            float(values.std(ddof=1)) if n > 1 else math.nan, n)


def comparison_row(table: int, section: str, quantity: str, model: str, label: str, column: str,
                   paper: tuple[float, float, int], ours: tuple[float, float, int] | None, synthetic: bool,
                   note: str = "", params_m: tuple[float, float] = (math.nan, math.nan),
                   at_chance: int = 0) -> dict:
    """`params_m`: (paper's Par (M), ours in millions); `at_chance`: how many of our runs are at
    chance level (summary.flag_chance_level): kept in the mean, counted in `at_chance_runs`."""
    row = dict(table=table, section=section, quantity=quantity, model=model, label=label, column=column,
               paper_mean=paper[0], paper_std=paper[1], paper_n=paper[2], ours_mean=math.nan,
               ours_std=math.nan, ours_n=0, synthetic=bool(synthetic), note=note,
               paper_params_m=params_m[0], ours_params_m=params_m[1], at_chance_runs=int(at_chance))
    if ours is not None:
        row.update(ours_mean=ours[0], ours_std=ours[1], ours_n=ours[2])
    return row


def params_m(ours: pd.DataFrame | None) -> float:
    """Our parameter count in millions (the largest over the runs: MedMNIST3D heads differ per
    data set), NaN where nothing was trained."""
    if ours is None or not len(ours) or "parameters" not in ours:
        return math.nan
    return float(ours["parameters"].max()) / 1e6


def at_chance_count(ours: pd.DataFrame | None) -> int:
    """How many of the runs are flagged at chance level (0 where none is, or none is flagged)."""
    if ours is None or "at_chance" not in ours:
        return 0
    return int(ours["at_chance"].astype(bool).sum())


def not_run_note(model: str, found: bool, not_trained: dict[str, str] | None) -> str:
    return "" if found else (not_trained or {}).get(model, "")
