"""File utilities: atomic writes, hashes, sidecars, safe tar extraction, locks, job logs."""
import io
import json
import os
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from approxeq.runtime.io import (
    HashMismatchError,
    UnsafeArchiveError,
    check_hash,
    exclusive_lock,
    file_hash,
    load_npz_with_hash,
    safe_extract,
    save_npz_with_hash,
    write_text_atomic,
)
from approxeq.runtime.logs import ATTEMPT_HEADER, redirect_to_log


def test_atomic_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_failed_atomic_write_leaves_nothing_behind(tmp_path):
    from approxeq.runtime.io import atomic_path
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_hash_mismatch_names_file_and_both_hashes(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    actual = file_hash(path)
    with pytest.raises(HashMismatchError) as error:
        check_hash(path, "0" * 32)
    assert str(path) in str(error.value) and actual in str(error.value) and "0" * 32 in str(error.value)


# --- safe_extract: plain files and folders only, nothing outside the destination -----------

def make_tar(path, members):
    """A tarball of (name, kind, payload) members; kind: file, dir, symlink, hardlink, fifo, chr."""
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, payload in members:
            info = tarfile.TarInfo(name)
            data = None
            if kind == "file":
                data = payload.encode()
                info.size = len(data)
            else:
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE}[kind]
                info.linkname = payload or ""
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def test_plain_archive_is_extracted(tmp_path):
    archive = make_tar(tmp_path / "ok.tgz", [("package", "dir", None), ("package/data/a.txt", "file", "A")])
    safe_extract(archive, tmp_path / "out")
    assert (tmp_path / "out/package/data/a.txt").read_text() == "A"


@pytest.mark.parametrize("members, expected", [
    # links are refused even when they point inside the destination (filter="data" allows those)
    ([("package/a.txt", "file", "A"), ("package/b.txt", "symlink", "a.txt")], "symbolic link"),
    ([("package/a.txt", "file", "A"), ("package/b.txt", "hardlink", "package/a.txt")], "hard link"),
    # the shape of CVE-2025-4517: links chained through the destination, then a file through them
    ([("a", "symlink", "."), ("a/b", "symlink", "../.."), ("a/b/escaped.txt", "file", "x")], "symbolic link"),
    ([("package/pipe", "fifo", None)], "FIFO"),
    ([("package/null", "chr", None)], "device file"),
    ([("../escaped.txt", "file", "x")], "outside"),
    ([("/tmp/absolute-escape.txt", "file", "x")], "outside"),
    ([("package/../../escaped.txt", "file", "x")], "outside"),
])
def test_unsafe_members_are_refused_before_anything_is_written(tmp_path, members, expected):
    archive = make_tar(tmp_path / "bad.tgz", [("package/first.txt", "file", "1"), *members])
    out = tmp_path / "deep" / "out"
    with pytest.raises(UnsafeArchiveError, match=expected) as error:
        safe_extract(archive, out)
    assert str(archive) in str(error.value)
    assert list(out.iterdir()) == []  # refused as a whole: not even the harmless first member
    assert not (tmp_path / "deep" / "escaped.txt").exists() and not (tmp_path / "escaped.txt").exists()


def test_a_link_already_in_the_destination_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "package").symlink_to(outside)
    archive = make_tar(tmp_path / "a.tgz", [("package/a.txt", "file", "A")])
    with pytest.raises(UnsafeArchiveError, match="outside"):
        safe_extract(archive, out)
    assert list(outside.iterdir()) == []


# --- sidecars -------------------------------------------------------------------------------

def test_sidecar_without_sha256_names_the_file(tmp_path):
    path = tmp_path / "data.npz"
    save_npz_with_hash(path, {"x": np.arange(3)}, {"kind": "test"})
    sidecar = tmp_path / "data.npz.json"
    sidecar.write_text(json.dumps({"kind": "test"}))
    with pytest.raises(HashMismatchError, match=rf"{sidecar} records no sha256 for {path}"):
        load_npz_with_hash(path)
    sidecar.write_text('{"kind": "te')  # truncated
    with pytest.raises(ValueError, match=rf"{sidecar} is not valid JSON"):
        load_npz_with_hash(path)


# --- locks ----------------------------------------------------------------------------------

def test_exclusive_lock_is_reentrant_in_a_process_and_names_the_holder_to_others(tmp_path):
    lock = tmp_path / "x.lock"
    code = ("import sys; from approxeq.runtime.io import exclusive_lock, LockHeldError\n"
            "try:\n    exclusive_lock(sys.argv[1], 'thing').__enter__()\n"
            "except LockHeldError as e:\n    print(e)\n")
    with exclusive_lock(lock, "thing"):
        with exclusive_lock(lock, "thing"):  # the same process, e.g. the train script and train()
            pass
        other = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True, text=True)
        assert f"thing is in use by another process (PID {os.getpid()} on " in other.stdout, other
    other = subprocess.run([sys.executable, "-c", code, str(lock)], capture_output=True, text=True)
    assert other.stdout == "" and other.returncode == 0


# --- logs -----------------------------------------------------------------------------------

def test_a_rerun_job_appends_to_its_log_with_a_header_per_attempt(tmp_path):
    log = tmp_path / "logs" / "job.log"
    with pytest.raises(RuntimeError):
        with redirect_to_log(log):
            print("epoch 1 of the first attempt")
            raise RuntimeError("killed")
    log.unlink()  # what Snakemake does before it runs a job again
    with redirect_to_log(log):
        print("resumed")
    text = log.read_text()
    assert text.count(ATTEMPT_HEADER) == 2
    assert text.index("epoch 1 of the first attempt") < text.index("RuntimeError: killed") \
        < text.rindex(ATTEMPT_HEADER) < text.index("resumed")
    assert f"PID {os.getpid()}" in text
    with redirect_to_log(log):  # run outside Snakemake, the log was not deleted: nothing doubled
        print("third")
    assert log.read_text().count(ATTEMPT_HEADER) == 3
    assert log.read_text().count("epoch 1 of the first attempt") == 1
