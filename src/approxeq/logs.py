"""Logging for Snakemake `script:` entry points: everything a job prints goes to its rule's log."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def redirect_to_log(log_path: str | Path) -> Iterator[None]:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        try:
            yield
        except BaseException:
            import traceback
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
