"""Logging for Snakemake `script:` entry points: everything a job prints goes to its rule's log.

A job's log holds every attempt, each starting with a header line (time, host, PID): when a
killed job is rerun, its first attempt's log (where it stopped, and why) stays above the second's.
Snakemake deletes a job's log before it runs the job again, so every log is also appended to a
hidden sibling, `.NAME.attempts`, that Snakemake does not know of; a log found missing or empty
is first refilled from it.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
from pathlib import Path
from typing import Iterator, TextIO

ATTEMPT_HEADER = "===== attempt started"


def attempts_path(log_path: str | Path) -> Path:
    log_path = Path(log_path)
    return log_path.with_name(f".{log_path.name}.attempts")


class _Tee:
    """A text stream writing to several files (the log and its attempts copy)."""

    def __init__(self, *streams: TextIO):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return False


@contextlib.contextmanager
def redirect_to_log(log_path: str | Path) -> Iterator[None]:
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    keep = attempts_path(log_path)
    if keep.exists() and (not log_path.exists() or log_path.stat().st_size == 0):
        log_path.write_bytes(keep.read_bytes())  # the earlier attempts Snakemake deleted
    with open(log_path, "a", buffering=1) as log, open(keep, "a", buffering=1) as copy:
        tee = _Tee(log, copy)
        with contextlib.redirect_stdout(tee), contextlib.redirect_stderr(tee):
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
