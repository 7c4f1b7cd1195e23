"""The DDMNIST latent study's table and training curves (issue 11): where the latent is taken and how
the equivariance penalty is formed, against the CNN, with the relative equivariance error beside the
accuracy. Which runs make the study (its cells and variants): experiments.ddmnist.
"""
from __future__ import annotations

import math

import pandas as pd

from approxeq.experiments.ddmnist import DEFAULT_LATENT, study_placements


def _mean_std(values: pd.Series) -> tuple[float, float]:
    values = values.astype(float)
    return values.mean(), (values.std(ddof=1) if len(values) > 1 else 0.0)


def cell_setting(run: str, placement: str, penalty: str, study: dict) -> str:
    """What a study cell of the model is: the configuration's default (the model's own Table 4 run),
    the paper's literal choice, both, or neither ("")."""
    roles = (["default"] if run == study["model"] else []) + (
        ["paper's literal"] if {"placement": placement, "penalty": penalty} == DEFAULT_LATENT else [])
    return " = ".join(roles)


def study_table(runs: pd.DataFrame, study: dict, paper: pd.DataFrame, labels: dict[str, str]) -> pd.DataFrame:
    """One row per (group, model, placement, penalty), mean over seeds: accuracy on the transformed
    and the clean test set, the relative equivariance error, latent norm and MSE at the placement,
    the relative error at the head's input (bn_elu), epochs; the paper's Table 4 value beside.

    `runs`: one row per metrics.json of the study (columns placement, penalty, *_at_<placement>);
    `study`: the ddmnist.latent_study block. The baseline gets one row per placement (the same run
    measured at each), penalty "–"."""
    rows = []
    placements = study_placements(study)
    roles = runs.assign(is_baseline=runs["model"].eq(study["baseline"]))
    for (group, model, is_baseline), block in roles.groupby(["group", "model", "is_baseline"], sort=False):
        variants = ([(p, "–", block) for p in placements] if is_baseline else
                    [(p, q, b) for (p, q), b in block.groupby(["placement", "penalty"], sort=False)])
        for placement, penalty, b in variants:
            paper_model = study["baseline"] if is_baseline else study["model"]
            match = paper[(paper["model"] == paper_model) & (paper["group"] == group)]
            row = {"group": group, "model": labels.get(paper_model, paper_model), "run": model,
                   "placement": placement, "penalty": penalty,
                   "setting": "" if is_baseline else cell_setting(model, placement, penalty, study),
                   "seeds": len(b)}
            for column, name in (("test_accuracy", "acc (transformed)"),
                                 ("test_clean_accuracy", "acc (clean)"),
                                 (f"latent_equivariance_relative_at_{placement}", "rel. error"),
                                 (f"latent_norm_mean_at_{placement}", "latent norm"),
                                 (f"latent_equivariance_mse_at_{placement}", "latent MSE"),
                                 ("latent_equivariance_relative_at_bn_elu", "rel. error at head input"),
                                 ("best_epoch", "best epoch"), ("epochs_run", "epochs run")):
                row[name], row[f"{name} std"] = _mean_std(b[column])
            row["paper acc"] = match["mean"].iloc[0] if len(match) else math.nan
            row["synthetic"] = bool(b["synthetic"].any())
            rows.append(row)
    table = pd.DataFrame(rows)
    order = {p: i for i, p in enumerate(placements)}
    table["_baseline"] = table["penalty"].eq("–")
    table["_placement"] = table["placement"].map(order)
    return (table.sort_values(["group", "_placement", "_baseline", "penalty"], ascending=[True, True, False, True])
            .drop(columns=["_baseline", "_placement"]).reset_index(drop=True))


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The study table for the report: mean (std) strings, the relative error beside the accuracy."""
    def cell(row, name, digits):
        mean, std = row[name], row[f"{name} std"]
        if pd.isna(mean):
            return "–"
        return f"{mean:.{digits}f}" if row["seeds"] < 2 else f"{mean:.{digits}f} ({std:.{digits}f})"

    rows = []
    for _, r in table.iterrows():
        rows.append({
            "Group": r["group"], "Model": r["model"], "Latent": r["placement"], "Penalty": r["penalty"],
            # no-break spaces: short labels that should not wrap in a narrow column
            "Setting": ("λ = 0" if r["penalty"] == "–" else r["setting"] or "–").replace(" ", "\u00a0"),
            "Seeds": int(r["seeds"]),
            "Acc. transformed": cell(r, "acc (transformed)", 3), "Acc. clean": cell(r, "acc (clean)", 3),
            "Rel. error": cell(r, "rel. error", 3), "Rel. error (head input)": cell(r, "rel. error at head input", 3),
            "‖E(x)‖": cell(r, "latent norm", 3), "Latent MSE": cell(r, "latent MSE", 4),
            "Best / run epochs": f"{r['best epoch']:.0f} / {r['epochs run']:.0f}",
            "Paper acc.": "–" if pd.isna(r["paper acc"]) else f"{r['paper acc']:.3f}",
        })
    return pd.DataFrame(rows)


PLACEMENT_STYLE = {"conv": ":", "bn": "--", "bn_elu": "-"}
PENALTY_COLOUR = {"mse": "tab:blue", "normalised": "tab:orange"}


def curve_label(run: pd.Series, study: dict, labels: dict[str, str]) -> str:
    """Legend text of one study run: the model with its placement and penalty; the baseline (λ = 0)
    with the placement its per-epoch diagnostics were measured at."""
    if run["model"] == study["baseline"]:
        return f"{labels.get(run['model'], run['model'])} (λ = 0; measured at {run['placement']})"
    base = labels.get(study["model"], study["model"])
    default = "; default" if run["model"] == study["model"] else ""
    return f"{base} ({run['placement']}, {run['penalty']}{default})"


def study_curves(histories: dict[tuple[str, str, int], str], runs: pd.DataFrame, study: dict,
                 labels: dict[str, str], path: str, quick: bool) -> None:
    """Per epoch of every study run: validation accuracy, relative equivariance error and mean
    latent norm, each at the run's own placement (history.jsonl, a fixed validation subset).
    Line style = placement, colour = penalty form, black = the baseline; one legend for all."""
    import json
    from pathlib import Path

    from matplotlib.ticker import MaxNLocator

    from approxeq.report.figures import label_suffix, plt, save

    panels = [("val_metric", "validation accuracy", "accuracy"),
              ("val_latent_equivariance_relative", "relative equivariance error",
               "‖E(g·x) − ρ(g)E(x)‖ / ‖ρ(g)E(x)‖"),
              ("val_latent_norm_mean", "mean latent norm", "mean ‖E(x)‖ at the run's placement")]
    info = runs.set_index(["group", "model", "seed"])
    groups = sorted({g for g, _, _ in histories})
    # 3.9 in per panel: the figure fits the report's width (≤ 1,300 px) without shrinking its text
    fig, axes = plt.subplots(len(groups), len(panels), figsize=(3.9 * len(panels), 3.4 * len(groups) + 1.0),
                             squeeze=False)
    handles = {}
    for (group, model, seed), history in histories.items():
        run = info.loc[(group, model, seed)]
        run = run.iloc[0] if isinstance(run, pd.DataFrame) else run
        run = pd.concat([run, pd.Series({"model": model})])
        records = [json.loads(line) for line in Path(history).read_text().splitlines() if line]
        baseline = model == study["baseline"]
        style = dict(color="black", linestyle="-", linewidth=1.4) if baseline else dict(
            color=PENALTY_COLOUR.get(run["penalty"], "tab:green"),
            linestyle=PLACEMENT_STYLE.get(run["placement"], "-."), linewidth=1.4)
        label = curve_label(run, study, labels) + (f", seed {seed}" if len(study["seeds"]) > 1 else "")
        for col, (key, title, ylabel) in enumerate(panels):
            ax = axes[groups.index(group), col]
            (line,) = ax.plot([r["epoch"] for r in records], [r[key] for r in records], **style)
            handles.setdefault(label, line)
            ax.set_title(f"{group}: {title}", fontsize=10)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ylabel, fontsize=9)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[:, 1]:
        # two unrelated latents of equal norm are √2 apart: "not equivariant at all"
        ax.axhline(2 ** 0.5, color="grey", linestyle=":", linewidth=1)
        ax.set_ylim(top=max(ax.get_ylim()[1], 1.55))  # room above the line for its label
        ax.annotate("√2: unrelated", (0.99, 2 ** 0.5), xycoords=("axes fraction", "data"),
                    ha="right", va="bottom", fontsize=9, color="grey")
    synthetic = bool(runs["synthetic"].any())
    fig.suptitle("Latent study: diagnostics per epoch on a fixed validation subset"
                 + label_suffix(quick, synthetic))
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(2, len(handles)),
               fontsize=9, frameon=False)
    rows_of_legend = -(-len(handles) // 2)
    fig.tight_layout(rect=(0, 0.045 * rows_of_legend / max(1, len(groups)) + 0.02, 1, 1))
    save(fig, path)
