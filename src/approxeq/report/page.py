"""What the report page shows, computed from the pipeline's outputs: the scorecard's compact
comparison tables (ours beside the paper's value in one cell, Δ coloured by verdict) and the
provenance appendix (commit, configuration hash, data hashes, package versions, runs)."""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
from importlib import metadata
from pathlib import Path

import pandas as pd

from approxeq.method.summary import CHANCE_MARK, chance_note
from approxeq.report.scorecard import NOT_RUN, OUTSIDE, QUICK, SYNTHETIC, WITHIN
from approxeq.runtime.identity import data_digest
from approxeq.runtime.io import file_hash

DIGITS = {1: 1, 2: 2, 3: 1, 4: 3, 5: 3, 6: 3}
SHORT = {WITHIN: "within 2σ", OUTSIDE: "outside 2σ", QUICK: "quick run", SYNTHETIC: "synthetic data",
         NOT_RUN: "not run"}
VERDICT_CLASS = {WITHIN: "within", OUTSIDE: "outside", QUICK: "not-comparable",
                 SYNTHETIC: "not-comparable", NOT_RUN: "not-run"}
PACKAGES = ("torch", "numpy", "scipy", "pandas", "matplotlib", "jinja2", "snakemake", "phiflow",
            "medmnist", "pillow", "pyyaml")


def mean_std(mean: float, std: float, n: int, digits: int) -> str:
    """'0.912 (0.004)'; a single value's std is '–' (there is none), a missing value '–'."""
    if mean is None or pd.isna(mean):
        return "–"
    spread = "–" if n < 2 or pd.isna(std) else f"{std:.{digits}f}"
    return f"{mean:.{digits}f} ({spread})"


def signed(value: float, digits: int) -> str:
    if pd.isna(value):
        return "–"
    if math.isinf(value):
        return "+∞" if value > 0 else "−∞"
    return f"{value:+.{digits}f}".replace("-", "−")


def comparison(scorecard: pd.DataFrame, table: int, paper: pd.DataFrame | None = None) -> dict:
    """One compact table of the report: a row per model (the paper's order), a column per
    quantity of the paper's table (group, data set, split, irreducible), each cell ours beside the
    paper's value with Δ and Δ/σ, classed by verdict. `paper`: the paper's table, whose Group and
    Aug columns (where it has them: Tables 5 and 6) are shown per model."""
    rows = scorecard[scorecard["table"] == table]
    digits = DIGITS.get(table, 3)
    columns = list(dict.fromkeys(rows["column"]))
    body = []
    described = [c for c in ("group", "aug") if paper is not None and c in paper.columns
                 and not (table == 4 and c == "group")]  # Table 4's groups are its columns
    by_model = paper.drop_duplicates("model").set_index("model") if described else None
    at_chance = rows["at_chance_runs"].fillna(0).astype(int) if "at_chance_runs" in rows else pd.Series(0, index=rows.index)
    for label, block in rows.groupby("label", sort=False):
        cells = {}
        for i, r in block.iterrows():
            mark = f" {CHANCE_MARK}" if at_chance[i] else ""
            cells[r["column"]] = dict(
                ours="not run" if r["ours_n"] == 0 else mean_std(r["ours_mean"], r["ours_std"], r["ours_n"], digits) + mark,
                paper=mean_std(r["paper_mean"], r["paper_std"], r["paper_n"], digits),
                delta=signed(r["delta"], digits), delta_sigma=signed(r["delta_sigma"], 1),
                verdict=r["verdict"], short=SHORT[r["verdict"]], css=VERDICT_CLASS[r["verdict"]],
                seeds=int(r["ours_n"]), comparable=r["verdict"] in COMPARABLE)
        trained = bool((block["ours_n"] > 0).any())
        # Par (M) ours / paper: the largest count over the row's cells (baselines differ per group)
        params = params_pair({"ours_params_m": block["ours_params_m"].max(),
                              "paper_params_m": block["paper_params_m"].max()})
        model = block["model"].iloc[0]
        extra = [str(by_model.loc[model, c]) if model in by_model.index else "–" for c in described]
        body.append(dict(label=label, trained=trained, cells=[cells.get(c) for c in columns], params=params,
                         extra=extra))
    body.sort(key=lambda r: not r["trained"])  # ours first, then the paper's rows not run here
    quantity = rows["quantity"].iloc[0] if len(rows) else ""
    notes = {(f"{r['label']}: {r['note']}" if r["verdict"] == NOT_RUN else r["note"])
             for _, r in rows.iterrows() if isinstance(r.get("note"), str) and r["note"]}
    # runs at chance level: the cell's mark and one note for the table
    chance = chance_note(int(at_chance.sum()), int(rows.loc[at_chance > 0, "ours_n"].sum()))
    return dict(table=table, columns=columns, rows=body, quantity=quantity,
                described=[c.capitalize() for c in described],
                notes=sorted(notes) + ([chance.replace(" runs have", " runs in the marked cells have").rstrip(".")]
                                      if chance else []))


def scorecard_rows(scorecard: pd.DataFrame) -> list[dict]:
    """The scorecard as displayed: one entry per reproduced number."""
    out = []
    for _, r in scorecard.iterrows():
        digits = DIGITS.get(int(r["table"]), 3)
        out.append(dict(table=int(r["table"]), section=r["section"], quantity=r["quantity"],
                        label=r["label"], column=r["column"],
                        paper=mean_std(r["paper_mean"], r["paper_std"], r["paper_n"], digits),
                        ours="–" if r["ours_n"] == 0 else mean_std(r["ours_mean"], r["ours_std"], r["ours_n"], digits),
                        seeds=int(r["ours_n"]), delta=signed(r["delta"], digits),
                        # Δ/σ only where the numbers are comparable: a quick or synthetic run's
                        # "−300σ" would read as a finding
                        delta_sigma=signed(r["delta_sigma"], 1) if r["verdict"] in COMPARABLE else "–",
                        verdict=r["verdict"],
                        short=SHORT[r["verdict"]], css=VERDICT_CLASS[r["verdict"]], params=params_pair(r),
                        note=scorecard_note(r)))
    return out


COMPARABLE = (WITHIN, OUTSIDE)

# Why a paper number is not run here, from its note (the configuration's `not_trained` reasons and
# the environment's): one source for the report's "not run" counts
NOT_RUN_REASONS = (("not reproducible here", "no public definition"),
                   ("not ported yet", "not ported yet"),
                   ("not trained here", "not trained in this environment"))


def not_run_reasons(scorecard: pd.DataFrame) -> dict[str, int]:
    """Rows not run, by reason; "not in this configuration" where no reason is recorded."""
    reasons: dict[str, int] = {}
    for _, r in scorecard[scorecard["verdict"] == NOT_RUN].iterrows():
        note = r["note"] if isinstance(r.get("note"), str) else ""
        reason = next((name for prefix, name in NOT_RUN_REASONS if prefix in note), "not in this configuration")
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def synthetic_among(scorecard: pd.DataFrame, verdict: str) -> int:
    """Rows of a verdict whose runs used synthetic stand-in data (a quick run's rows are "quick"
    first, so the badge says how many of them are also synthetic)."""
    rows = scorecard[scorecard["verdict"] == verdict]
    return int(rows["synthetic"].astype(str).str.lower().eq("true").sum()) if "synthetic" in rows else 0


def scorecard_note(row) -> str:
    """A scorecard row's note as displayed: its own note, and how many of our runs are at chance
    level (at_chance_runs) where any is."""
    parts = [row["note"]] if isinstance(row.get("note"), str) and row["note"] else []
    at_chance = row.get("at_chance_runs", 0)
    if pd.notna(at_chance) and int(at_chance) > 0:
        parts.append(f"{CHANCE_MARK} {int(at_chance)} of {int(row['ours_n'])} runs at chance level")
    return "; ".join(parts)


def params_pair(row) -> str:
    """'0.14 / 0.19': our parameter count / the paper's Par (M), in millions; '–' where neither.
    Counts under 5,000 (the quick run's small networks) keep two significant digits, not '0.00'."""
    ours, paper = row.get("ours_params_m", math.nan), row.get("paper_params_m", math.nan)
    if pd.isna(ours) and pd.isna(paper):
        return "–"

    def millions(v):
        return "–" if pd.isna(v) else f"{v:.2f}" if v == 0 or v >= 0.005 else f"{v:.2g}"
    return " / ".join(millions(v) for v in (ours, paper))


def git_state(repo: str | Path) -> dict:
    """Commit (full hash) and whether the working tree had uncommitted changes."""
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                                  timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = git("rev-parse", "HEAD") or "unknown"
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit != "unknown" else None
    return dict(commit=commit, dirty=dirty)


def sha256(path: str | Path) -> str:
    return file_hash(path, "sha256")


def config_hash(config: dict) -> str:
    """sha256 of the resolved configuration as canonical JSON (sorted keys)."""
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()


def data_files(paths: list[str]) -> list[dict]:
    """Path, size and sha256 of every data file the runs read (a MedMNIST3D or CIFAR10 record's
    data file beside it too, where present)."""
    seen, out = set(), []
    for path in paths:
        candidates = [Path(path)]
        if path.endswith(".json") and Path(path[:-5] + ".npz").exists():
            candidates.append(Path(path[:-5] + ".npz"))
        for p in candidates:
            if p in seen or not p.is_file():
                continue
            seen.add(p)
            out.append(dict(path=str(p), bytes=p.stat().st_size, sha256=sha256(p)))
    return out


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def run_provenance(metric_files: list[str]) -> pd.DataFrame:
    """Per run: device, wall time of training, epochs run, the best epoch, and what the model is a
    function of besides its settings: its input files' sha256 and the training code's fingerprint
    (approxeq.runtime.identity; 12 hex digits shown, in full in the run's train.json)."""
    rows = []
    for path in metric_files:
        m = json.loads(Path(path).read_text())
        hashes = m.get("data_sha256") or {}
        rows.append({"experiment": m["experiment"], "group": m["group"], "model": m["model"],
                     "seed": int(m["seed"]), "device": m.get("device", "–"),
                     "train seconds": m.get("train_seconds", math.nan),
                     "epochs run": m.get("epochs_run", math.nan), "best epoch": m.get("best_epoch", math.nan),
                     "synthetic data": bool(m.get("synthetic", False)),
                     "data sha256": data_digest(hashes)[:12] if hashes else "–",
                     "code": str(m.get("code_fingerprint", "–"))[:12]})
    return pd.DataFrame(rows)


def config_value(config: dict, key: str):
    """The value at a dotted key of the configuration, or None where the run has none."""
    node = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def settings_beside_paper(config: dict, paper: pd.DataFrame) -> list[dict]:
    """The paper's hyperparameters (Tables 7, 9, 10, appendix C.3; workflow/paper/settings.csv)
    beside this run's value of the same configuration key, and whether they agree."""
    rows = []
    for _, r in paper.iterrows():
        ours = config_value(config, r["key"])
        same = ours is not None and math.isclose(float(ours), float(r["paper"]), rel_tol=1e-9)
        where = ", ".join(str(v) for v in (r["experiment"], r["model"], r["column"]) if isinstance(v, str) and v)
        rows.append(dict(table=r["table"], where=where, setting=r["setting"], key=r["key"],
                         paper=f"{float(r['paper']):g}", ours="–" if ours is None else f"{float(ours):g}",
                         same=same))
    return rows
