"""Jinja rendering of tables and the report, and figures embedded as data URIs so the report is a
single self-contained HTML file."""
from __future__ import annotations

import base64
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parents[3] / "reports" / "templates"


def environment(template_dir: str | Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def render_template(name: str, template_dir: str | Path = TEMPLATES, **context) -> str:
    return environment(template_dir).get_template(name).render(**context)


def png_data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def csv_data_uri(path: str | Path) -> str:
    """A CSV embedded in the page (a link that still works when the page is moved or mailed alone)."""
    return "data:text/csv;charset=utf-8;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def source_row_classes(sources) -> list[str]:
    """CSS classes of a comparison table's rows from its Source column."""
    return ["ours" if s == "this run" else "imported" if "imported" in s else "paper" for s in sources]


def not_trained_notes(paper, not_trained: dict[str, str]) -> list[str]:
    """One note per model of the paper's table (a DataFrame) that is not trained here for a stated
    reason (the configuration's `not_trained`), named as the table names it: with its group where
    the model has a single row with a group (Table 5: "SCNN (SO(3))")."""
    rows_per_model = paper["model"].value_counts()
    notes = []
    for _, p in paper[paper["model"].isin(list(not_trained))].iterrows():
        group = str(p["group"]) if "group" in paper else ""
        single = rows_per_model[p["model"]] == 1 and group not in ("", "nan", "N/A", "S4")
        label = p["label"] + (f" ({group})" if single else "")
        notes.append(f"{label}, imported from the paper: {not_trained[p['model']]}")
    return list(dict.fromkeys(notes))


def is_mark(note: str) -> bool:
    """A QUICK RUN / SYNTHETIC DATA note: shown as a badge on the table, explained in the report."""
    return note.startswith(("QUICK RUN", "SYNTHETIC DATA"))


def write_table(out: dict, shown, caption: str, notes: list[str], template_dir: str | Path,
                label: str, csv_table=None, row_classes: list[str] | None = None) -> None:
    """A results table as CSV (`csv_table`, default the shown one), LaTeX (booktabs, the notes in
    its caption) and an HTML fragment (QUICK RUN / SYNTHETIC DATA notes as badges on the caption,
    the other notes below the table)."""
    from approxeq.runtime.io import write_text_atomic

    write_text_atomic(out["csv"], (shown if csv_table is None else csv_table).to_csv(index=False))
    write_text_atomic(out["tex"], latex_table(shown, " ".join([caption, *notes]), label))
    write_text_atomic(out["html"], render_table(shown, caption, notes, template_dir, row_classes))


def render_table(shown, caption: str, notes: list[str], template_dir: str | Path = TEMPLATES,
                 row_classes: list[str] | None = None) -> str:
    """An HTML fragment: the table in a horizontally scrollable box, headers made readable."""
    return render_template("table.html.j2", template_dir, table=readable(shown), caption=caption,
                           marks=[n for n in notes if is_mark(n)],
                           notes=[n for n in notes if not is_mark(n)],
                           row_classes=row_classes or [""] * len(shown))


# LaTeX: characters that are text-mode specials, and Unicode that pdflatex's default input
# encoding does not know (mapped to math or text commands).
_LATEX_SPECIALS = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
                   "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
                   "^": r"\textasciicircum{}"}
_LATEX_UNICODE = {"χ": r"$\chi$", "ρ": r"$\rho$", "λ": r"$\lambda$", "σ": r"$\sigma$",
                  "Δ": r"$\Delta$", "π": r"$\pi$", "→": r"$\to$", "≅": r"$\cong$", "≈": r"$\approx$",
                  "≤": r"$\leq$", "≥": r"$\geq$", "±": r"$\pm$", "·": r"$\cdot$", "×": r"$\times$",
                  "√": r"$\surd$", "⊕": r"$\oplus$", "‖": r"$\|$", "−": r"$-$", "²": r"$^2$",
                  "³": r"$^3$", "⁻": r"$^-$", "¹": r"$^1$", "–": "--", "—": "---", "…": r"\ldots{}",
                  "’": "'", "“": "``", "”": "''", "≠": r"$\neq$", "∞": r"$\infty$",
                  "\u00a0": "~"}  # no-break space


def latex_escape(text) -> str:
    """Text safe for pdflatex: specials escaped, known Unicode mapped, anything else non-ASCII
    replaced by '?' (so the file always compiles)."""
    out = []
    for char in str(text):
        if char in _LATEX_SPECIALS:
            out.append(_LATEX_SPECIALS[char])
        elif char in _LATEX_UNICODE:
            out.append(_LATEX_UNICODE[char])
        elif ord(char) < 128:
            out.append(char)
        else:
            out.append("?")
    return "".join(out)


def latex_table(shown, caption: str, label: str) -> str:
    """A booktabs table (needs \\usepackage{booktabs}): text columns left, numeric ones right,
    every cell escaped, numbers formatted as in the HTML (integers as integers, small values in
    scientific notation), small type so wide tables fit a page."""
    table = readable(shown)
    numeric = [is_numeric_column(table[c]) for c in table.columns]
    spec = "".join("r" if n else "l" for n in numeric)
    lines = [r"\begin{table}[htbp]", r"\centering", r"\footnotesize",
             rf"\caption{{{latex_escape(caption)}}}", rf"\label{{{label}}}",
             rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
             " & ".join(latex_escape(c) for c in table.columns) + r" \\", r"\midrule"]
    for row in table.itertuples(index=False):
        lines.append(" & ".join(latex_escape(v) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
    return "\n".join(lines)


def is_numeric_column(column) -> bool:
    import re

    values = [str(v) for v in column if str(v) not in ("–", "")]
    return bool(values) and all(re.fullmatch(r"[-+−]?[0-9.]+(e[-+]?[0-9]+)?( \((–|[0-9.]+)\))?", v)
                                for v in values)


def format_number(value, integer: bool = False) -> str:
    """One cell: '–' for missing, yes/no for booleans, integers without '.0', values below 1e-3
    in scientific notation (an algebra loss of 5e-6 is not '0.0'), else 4 significant digits."""
    import math
    import numbers

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, (bool,)) or type(value).__name__ == "bool_":
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        if math.isinf(value):
            return "∞" if value > 0 else "−∞"
        if integer:
            return str(int(round(value)))
        if value != 0 and abs(value) < 1e-3:
            return f"{value:.1e}"
        return f"{value:.4g}" if abs(value) < 1e5 else f"{value:.0f}"
    text = str(value)
    return {"True": "yes", "False": "no", "nan": "–"}.get(text, text)


def readable(frame):
    """A DataFrame for people: snake_case headers spelled out, every cell formatted by
    `format_number` (a column whose numbers are all whole, e.g. seeds or parameter counts, as
    integers)."""
    import re

    import pandas as pd

    shown = {}
    for column in frame.columns:
        values = frame[column]
        numbers = pd.to_numeric(values, errors="coerce")
        real = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        integer = (pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
                   and numbers.notna().any() and bool((numbers.dropna() % 1 == 0).all())
                   and not (real and max(abs(v) for v in real if v == v) <= 1 and numbers.nunique() > 2))
        header = str(column).replace("_", " ") if re.fullmatch(r"[a-z0-9_]+", str(column)) else str(column)
        shown[header] = [format_number(v, integer) for v in values]
    return pd.DataFrame(shown, columns=list(shown))
