"""Logging for Snakemake `script:` entry points: everything a job prints goes to its rule's log.

A log is appended to, never truncated, and every attempt starts with a header line (time, host,
PID): when a killed job is rerun, its first attempt's log (where it stopped, and why) is kept
above the second's."""
from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
from pathlib import Path
from typing import Iterator

ATTEMPT_HEADER = "===== attempt started"


@contextlib.contextmanager
def redirect_to_log(log_path: str | Path) -> Iterator[None]:
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as log, contextlib.redirect_stdout(log), \
            contextlib.redirect_stderr(log):
        now = datetime.datetime.now().astimezone().isoformat(timespec="seconds")
        print(f"{ATTEMPT_HEADER} {now} on {socket.gethostname()}, PID {os.getpid()} =====")
        try:
            yield
        except BaseException:
            import traceback
            traceback.print_exc()
            raise
        finally:
            sys.stdout.flush()
