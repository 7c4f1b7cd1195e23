"""The paper's claims, each with the evidence this run has for it and a verdict computed from the
tables (never typed in): what the report shows first.

A difference between two cells counts only when it exceeds twice its standard error over seeds,
se = √(s_a²/n_a + s_b²/n_b); with fewer than 2 seeds a cell cannot be told from seed noise, so a
claim resting on it is "not tested at this scale". A quick run, synthetic stand-in data or a model
not trained here make a claim (or its part) not tested as well, and the evidence says which.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import pandas as pd

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED = (
    "supported", "contradicted", "inconclusive", "not tested at this scale")
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTED)

# Above this worst-case relative error ‖W_g W_h − W_gh‖ / ‖W_gh‖ the learned matrices are not a
# representation, and their irreducible "counts" say nothing about which one was learned.
HOMOMORPHISM_THRESHOLD = 0.1
# Counts m_i over the multiplicity m_i of k copies of the regular representation, per Table 1-3
# column: equal ratios ⇔ a multiple of the regular representation. Table 3 counts the real
# 2-dimensional irreducible χ_1 ⊕ χ_3 once per copy, as the regular representation holds it once.
REGULAR_COUNTS = {
    1: {"m(χ_0)": 1, "m(χ_1)": 1},
    2: {"m(trivial)": 1, "m(sign)": 1, "m(standard)": 2},
    3: {"m(χ_0)": 1, "m(χ_1⊕χ_3)": 1, "m(χ_2)": 1},
}
QUICK_REASON = "quick run (small-scale configuration)"
REGULAR_SPREAD = 0.2  # (max − min) / mean of the ratios at or below which the counts are regular
NOT_REGULAR_SPREAD = 0.5  # at or above which they are clearly not


@dataclass(frozen=True)
class Finding:
    verdict: str
    evidence: str


@dataclass(frozen=True)
class Claim:
    key: str
    where: str  # the paper's section / table
    quote: str  # the paper's sentence
    check: Callable[["Evidence"], Finding]


@dataclass(frozen=True)
class Evidence:
    """What a claim is judged on: the scorecard (our and the paper's cells), our Tables 1-3 (one row
    per run plus "mean" and "std" rows; None where not run) and whether this is a quick run."""
    scorecard: pd.DataFrame
    exploratory: dict[int, pd.DataFrame | None]
    quick: bool


def combine(findings: list[Finding]) -> Finding:
    """One verdict from the parts of a claim: contradicted if any part is, supported only if every
    part is, not tested if no part could be; inconclusive otherwise."""
    verdicts = {f.verdict for f in findings}
    if CONTRADICTED in verdicts:
        verdict = CONTRADICTED
    elif verdicts == {SUPPORTED}:
        verdict = SUPPORTED
    elif verdicts == {NOT_TESTED}:
        verdict = NOT_TESTED
    else:
        verdict = INCONCLUSIVE
    return Finding(verdict, " ".join(f.evidence for f in findings))


def cell(scorecard: pd.DataFrame, table: int, model: str, column: str) -> pd.Series | None:
    rows = scorecard[(scorecard["table"] == table) & (scorecard["model"] == model)
                     & (scorecard["column"] == column)]
    return None if rows.empty else rows.iloc[0]


def describe(row: pd.Series) -> str:
    std = "–" if pd.isna(row["ours_std"]) else f"{row['ours_std']:.3f}"
    return f"{row['label']} {row['ours_mean']:.3f} ({std}, {int(row['ours_n'])} seeds)"


def compare(ours: pd.Series, other: pd.Series, higher_is_better: bool) -> str:
    """"better", "worse" or "tie" for ours against other, or "" when seeds are too few to tell."""
    if ours["ours_n"] < 2 or other["ours_n"] < 2:
        return ""
    difference = (ours["ours_mean"] - other["ours_mean"]) * (1 if higher_is_better else -1)
    se = math.sqrt(ours["ours_std"] ** 2 / ours["ours_n"] + other["ours_std"] ** 2 / other["ours_n"])
    if abs(difference) > 2 * se:
        return "better" if difference > 0 else "worse"
    return "tie"


def untestable(rows: list[pd.Series], quick: bool) -> str:
    """Why cells cannot test a claim at this scale, or ""."""
    if quick:
        return QUICK_REASON
    if any(bool(r["synthetic"]) for r in rows):
        return "synthetic stand-in data"
    few = [r for r in rows if r["ours_n"] < 2]
    if few:
        return (f"{', '.join(sorted({r['label'] for r in few}))}: fewer than 2 seeds, a difference "
                "cannot be told from seed noise")
    return ""


def trained_models(scorecard: pd.DataFrame, table: int, column: str, exclude=("ours",)) -> list[str]:
    rows = scorecard[(scorecard["table"] == table) & (scorecard["column"] == column) & (scorecard["ours_n"] > 0)]
    return [m for m in dict.fromkeys(rows["model"]) if m not in exclude]


def not_trained_labels(scorecard: pd.DataFrame, table: int) -> list[str]:
    rows = scorecard[scorecard["table"] == table]
    trained = set(rows.loc[rows["ours_n"] > 0, "model"])
    return list(dict.fromkeys(rows.loc[~rows["model"].isin(trained), "label"]))


def against(evidence: Evidence, table: int, column: str, models: list[str], higher_is_better: bool,
            wanted: set[str], fewer_parameters: bool = False) -> Finding:
    """Ours against each model in one column: supported if every outcome is in `wanted` (and ours
    has fewer parameters where asked), contradicted if one is not and is decided."""
    ours = cell(evidence.scorecard, table, "ours", column)
    if ours is None or ours["ours_n"] == 0:
        return Finding(NOT_TESTED, f"{column}: ours not trained.")
    others = [cell(evidence.scorecard, table, m, column) for m in models]
    others = [o for o in others if o is not None and o["ours_n"] > 0]
    if not others:
        return Finding(NOT_TESTED, f"{column}: no other model trained.")
    parts = [f"{describe(o)}: ours {compare(ours, o, higher_is_better) or 'undecided'}" for o in others]
    text = f"{column}: {describe(ours)} against " + "; ".join(parts) + "."
    why = untestable([ours, *others], evidence.quick)
    if why:
        return Finding(NOT_TESTED, f"{text} Not tested: {why}.")
    outcomes = [compare(ours, o, higher_is_better) for o in others]
    # the CNN has ours' architecture, so "fewer parameters" means: never more than any other model
    heavier = [o["label"] for o in others if fewer_parameters and ours["ours_params_m"] > o["ours_params_m"]]
    if heavier:
        text += f" Ours has more parameters than {', '.join(heavier)}."
    if all(o in wanted for o in outcomes) and not heavier:
        return Finding(SUPPORTED, text)
    if any(o not in wanted and o != "tie" for o in outcomes) or heavier:
        return Finding(CONTRADICTED, text)
    return Finding(INCONCLUSIVE, text + " Differences within seed noise.")


def regular_counts(number: int, table: pd.DataFrame | None, quick: bool) -> Finding:
    """Whether Table `number`'s learned representations are a multiple of the regular one."""
    expected = REGULAR_COUNTS[number]
    name = f"Table {number}"
    if table is None or not set(expected) <= set(table.columns):
        return Finding(NOT_TESTED, f"{name}: not run.")
    runs = table[~table["run"].astype(str).isin(["mean", "std"])]
    counts = {c: float(runs[c].astype(float).mean()) for c in expected}
    ratios = [counts[c] / k for c, k in expected.items()]
    spread = (max(ratios) - min(ratios)) / max(sum(ratios) / len(ratios), 1e-12)
    error = float(runs["homomorphism error"].astype(float).mean())
    text = (f"{name}: counts " + ", ".join(f"{c} {v:.2f}" for c, v in counts.items())
            + f" (ratio spread {spread:.2f} against a multiple of the regular representation), "
            f"homomorphism error {error:.3f}.")
    if quick or runs["synthetic"].astype(str).str.lower().eq("true").any():
        return Finding(NOT_TESTED, f"{text} Not tested: {'quick run' if quick else 'synthetic stand-in data'}.")
    if error > HOMOMORPHISM_THRESHOLD:
        return Finding(NOT_TESTED, f"{text} Not a representation (error above {HOMOMORPHISM_THRESHOLD}): "
                                   "the counts do not apply.")
    if spread <= REGULAR_SPREAD:
        return Finding(SUPPORTED, text)
    return Finding(CONTRADICTED if spread >= NOT_REGULAR_SPREAD else INCONCLUSIVE, text)


def regular_representation(evidence: Evidence) -> Finding:
    return combine([regular_counts(n, evidence.exploratory.get(n), evidence.quick) for n in REGULAR_COUNTS])


def ddmnist(wanted: set[str], models: Callable[[Evidence, str], list[str]], fewer_parameters: bool):
    def check(evidence: Evidence) -> Finding:
        columns = list(dict.fromkeys(evidence.scorecard.loc[evidence.scorecard["table"] == 4, "column"]))
        findings = [against(evidence, 4, c, models(evidence, c), True, wanted, fewer_parameters) for c in columns]
        missing = not_trained_labels(evidence.scorecard, 4)
        finding = combine(findings)
        return Finding(finding.verdict, finding.evidence + (f" Not trained here: {', '.join(missing)}."
                                                           if missing and fewer_parameters else ""))
    return check


def medmnist_comparable(evidence: Evidence) -> Finding:
    findings = [against(evidence, 5, c, trained_models(evidence.scorecard, 5, c), True, {"better", "tie"},
                        fewer_parameters=True) for c in ("Nodule3D", "Synapse3D")]
    return combine(findings)


def medmnist_organ(evidence: Evidence) -> Finding:
    card = evidence.scorecard
    cnn, augmented = cell(card, 5, "cnn", "Organ3D"), cell(card, 5, "cnn_aug", "Organ3D")
    if cnn is None or augmented is None or cnn["ours_n"] == 0 or augmented["ours_n"] == 0:
        return Finding(NOT_TESTED, "Organ3D: the CNNs were not trained.")
    outcome = compare(cnn, augmented, True)
    text = f"Organ3D: {describe(cnn)} against {describe(augmented)}: {outcome or 'undecided'}."
    why = untestable([cnn, augmented], evidence.quick)
    first = Finding(NOT_TESTED, f"{text} Not tested: {why}.") if why else Finding(
        {"better": SUPPORTED, "worse": CONTRADICTED}.get(outcome, INCONCLUSIVE), text)
    second = against(evidence, 5, "Organ3D", ["cnn_aug"], True, {"better"})
    return combine([first, second])


def smoke(evidence: Evidence) -> Finding:
    findings = [against(evidence, 6, c, trained_models(evidence.scorecard, 6, c, exclude=("ours", "pscnn")),
                        False, {"better"}) for c in ("Future", "Domain")]
    return combine(findings)


CLAIMS = (
    Claim("regular", "Section 4, Tables 1–3",
          "We conduct experiments which allow the network to learn a group representation on the latent "
          "space, and show in every case it prefers to learn the regular representation.",
          regular_representation),
    Claim("ddmnist_cnn", "Section 6, Table 4",
          "The ablation needed to demonstrate effectiveness of our method is comparison with the augmented "
          "CNN baseline. [On DDMNIST every model is trained on augmented data.]",
          ddmnist({"better"}, lambda e, c: ["cnn"], fewer_parameters=False)),
    Claim("ddmnist_all", "Section 6.1, Table 4",
          "Our method outperforms other architectures across all symmetry groups, despite having fewer "
          "parameters.",
          ddmnist({"better"}, lambda e, c: trained_models(e.scorecard, 4, c), fewer_parameters=True)),
    Claim("medmnist_nodule_synapse", "Section 6.2, Table 5",
          "For Nodule and Synapse, our method is comparable or outperforms other architectures, while "
          "having fewer parameters.",
          medmnist_comparable),
    Claim("medmnist_organ", "Section 6.2, Table 5",
          "The unaugmented baseline CNN model significantly outperforms its augmented counterpart. However, "
          "our model does outperform the augmented baseline. [Organ3D]",
          medmnist_organ),
    Claim("smoke", "Section 6.3, Table 6",
          "Our method outperforms all models except for PSCNN.",
          smoke),
)


def claims_table(evidence: Evidence) -> pd.DataFrame:
    """One row per claim: where, the paper's sentence, this run's evidence and the verdict."""
    rows = []
    for claim in CLAIMS:
        finding = claim.check(evidence)
        text = finding.evidence
        if evidence.quick:  # said once per claim, not after every cell
            text = "Quick run (small-scale configuration), not tested. " + " ".join(
                text.replace(f" Not tested: {QUICK_REASON}.", "").replace(" Not tested: quick run.", "").split())
        rows.append({"claim": claim.key, "where": claim.where, "paper": claim.quote,
                     "evidence": text, "verdict": finding.verdict})
    return pd.DataFrame(rows)
