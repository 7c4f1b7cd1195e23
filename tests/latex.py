"""Compile LaTeX tables with pdflatex (skipped, saying so, where pdflatex is not installed)."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

PREAMBLE = r"""\documentclass{article}
\usepackage[T1]{fontenc}
\usepackage{booktabs}
\usepackage[margin=1.5cm,landscape]{geometry}
\begin{document}
"""


def require_pdflatex() -> str:
    path = shutil.which("pdflatex")
    if path is None:
        pytest.skip("pdflatex not found; install texlive-latex-base and texlive-latex-recommended "
                    "(booktabs; .ci/run does) to compile the LaTeX tables")
    return path


def compile_tables(tex_files: list[Path], workdir: Path) -> Path:
    """One document \\input-ing every table; pdflatex in batch mode must succeed with no error."""
    pdflatex = require_pdflatex()
    workdir.mkdir(parents=True, exist_ok=True)
    body = "".join(f"\\input{{{Path(f).resolve().as_posix()}}}\n\\clearpage\n" for f in tex_files)
    document = workdir / "tables.tex"
    document.write_text(PREAMBLE + body + "\\end{document}\n")
    result = subprocess.run([pdflatex, "-interaction=nonstopmode", "-halt-on-error", document.name],
                            cwd=workdir, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:]
    return workdir / "tables.pdf"
