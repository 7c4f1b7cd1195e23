"""Small file utilities shared by every stage: hashing, atomic writes, safe tar extraction."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
from pathlib import Path
from typing import Iterator


class HashMismatchError(RuntimeError):
    """A file's content does not match the hash it is pinned to."""


def file_hash(path: str | Path, algorithm: str = "md5", chunk: int = 1 << 20) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def check_hash(path: str | Path, expected: str, algorithm: str = "md5") -> None:
    """Refuse a file whose hash differs from `expected`, naming the file and both hashes."""
    actual = file_hash(path, algorithm)
    if actual.lower() != expected.lower():
        raise HashMismatchError(
            f"{algorithm} mismatch for {path}: expected {expected.lower()}, got {actual}"
        )


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds,
    so a crash never leaves a truncated output that a later run would trust."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; give the output the permissions a plain open() would (umask),
    # so collaborators on a shared project folder can read results.
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path):
    with open(path) as handle:
        return json.load(handle)


def safe_extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a tarball refusing absolute paths, `..`, links out of `dest` and device files."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
