"""File utilities: atomic writes, hashes."""
import os

import pytest

from approxeq.io import HashMismatchError, check_hash, file_hash, write_text_atomic


def test_atomic_outputs_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "out.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == 0o644


def test_failed_atomic_write_leaves_nothing_behind(tmp_path):
    from approxeq.io import atomic_path
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
