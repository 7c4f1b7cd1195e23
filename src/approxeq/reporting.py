"""Jinja rendering of tables and the report, and figures embedded as data URIs so the report is a
single self-contained HTML file."""
from __future__ import annotations

import base64
from pathlib import Path

import jinja2

TEMPLATES = Path(__file__).resolve().parents[2] / "reports" / "templates"


def environment(template_dir: str | Path = TEMPLATES) -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(template_dir)),
                             autoescape=jinja2.select_autoescape(["html", "j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env


def render_template(name: str, template_dir: str | Path = TEMPLATES, **context) -> str:
    return environment(template_dir).get_template(name).render(**context)


def png_data_uri(path: str | Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode()


def source_row_classes(sources) -> list[str]:
    """CSS classes of a comparison table's rows from its Source column."""
    return ["ours" if s == "this run" else "imported" if "imported" in s else "paper" for s in sources]


def write_table(out: dict, shown, caption: str, notes: list[str], template_dir: str | Path,
                label: str, csv_table=None, row_classes: list[str] | None = None) -> None:
    """A results table as CSV (`csv_table`, default the shown one), LaTeX and an HTML fragment."""
    from .io import write_text_atomic

    write_text_atomic(out["csv"], (shown if csv_table is None else csv_table).to_csv(index=False))
    write_text_atomic(out["tex"], shown.to_latex(index=False, caption=caption, label=label))
    write_text_atomic(out["html"], render_template("table.html.j2", template_dir, table=shown,
                                                   caption=caption, notes=notes,
                                                   row_classes=row_classes or [""] * len(shown)))
