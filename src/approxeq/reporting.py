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
