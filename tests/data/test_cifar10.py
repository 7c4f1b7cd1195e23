"""CIFAR10: conversion of the python-format tarball (a tiny fixture made here), MD5 refusal, the
failure message, the labelled synthetic stand-in. Offline: URLs are file:// or point nowhere."""
import io
import json
import pickle
import tarfile

import numpy as np
import pytest

from approxeq.data import cifar10
from approxeq.data.cifar10 import (
    TARBALL,
    fetch_cifar10,
    load_cifar10,
    synthetic_cifar10,
)
from approxeq.runtime.io import HashMismatchError, file_hash

SIZES = {"data_batch_1": 3, "data_batch_2": 2, "data_batch_3": 2, "data_batch_4": 1,
         "data_batch_5": 2, "test_batch": 4}


def _quiet(_msg):
    pass


def _add(tar, name, payload):
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


@pytest.fixture
def fixture_tarball(tmp_path):
    """The real layout: cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}, each a
    pickled dict with b"data" (N, 3072) uint8 rows in CHW order and b"labels" a list."""
    rng = np.random.default_rng(0)
    batches = {}
    path = tmp_path / "upstream" / TARBALL
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for name, n in SIZES.items():
            data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
            labels = [int(v) for v in rng.integers(0, 10, n)]
            batches[name] = (data, labels)
            batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data,
                     b"filenames": [f"{name}_{i}.png".encode() for i in range(n)]}
            _add(tar, f"cifar-10-batches-py/{name}", pickle.dumps(batch, protocol=2))
        meta = {b"label_names": [b"airplane"] * 10, b"num_cases_per_batch": 10000}
        _add(tar, "cifar-10-batches-py/batches.meta", pickle.dumps(meta, protocol=2))
    return path, file_hash(path), batches


def test_user_placed_tarball_is_converted(tmp_path, fixture_tarball):
    src, md5, batches = fixture_tarball
    dest = tmp_path / "cifar10"
    dest.mkdir()
    (dest / TARBALL).write_bytes(src.read_bytes())
    record = fetch_cifar10(dest, url="file:///nowhere/at/all.tar.gz", md5=md5, log=_quiet)
    assert record["synthetic"] is False and record["source"]["kind"] == "local"
    assert record["md5"] == md5 and record["sizes"] == {"train": 10, "test": 4}
    assert json.loads((dest / "source.json").read_text()) == record

    data = load_cifar10(dest)
    assert data["synthetic"] is False
    assert data["train_images"].shape == (10, 32, 32, 3) and data["train_images"].dtype == np.uint8
    assert data["test_images"].shape == (4, 32, 32, 3)
    assert data["train_labels"].dtype == np.int64
    train_rows = np.concatenate([batches[f"data_batch_{i}"][0] for i in range(1, 6)])
    train_labels = sum((batches[f"data_batch_{i}"][1] for i in range(1, 6)), [])
    assert data["train_labels"].tolist() == train_labels
    assert data["test_labels"].tolist() == batches["test_batch"][1]
    # rows are CHW planes: pixel (y, x) of channel c is byte c·1024 + y·32 + x
    i, y, x, c = 7, 5, 30, 2
    assert data["train_images"][i, y, x, c] == train_rows[i, c * 1024 + y * 32 + x]
    assert np.array_equal(data["test_images"].transpose(0, 3, 1, 2).reshape(4, -1),
                          batches["test_batch"][0])
    assert not list(dest.glob(".*.tmp"))


def test_download_path_and_reuse(tmp_path, fixture_tarball, monkeypatch):
    src, md5, _ = fixture_tarball
    dest = tmp_path / "cifar10"
    record = fetch_cifar10(dest, url=src.as_uri(), md5=md5, log=_quiet)
    assert record["source"] == {"kind": "url", "url": src.as_uri()}
    assert file_hash(dest / TARBALL) == md5  # kept, so a re-run needs no network

    def refuse(*args):
        raise AssertionError("converted again although the npz was valid")

    monkeypatch.setattr(cifar10, "convert_tarball", refuse)
    logged = []
    assert fetch_cifar10(dest, url=src.as_uri(), md5=md5, log=logged.append) == record
    assert any("reusing" in line for line in logged)


def test_md5_mismatch_is_refused_even_with_synthetic_allowed(tmp_path, fixture_tarball):
    src, md5, _ = fixture_tarball
    dest = tmp_path / "cifar10"
    dest.mkdir()
    (dest / TARBALL).write_bytes(src.read_bytes())
    wrong = "0" * 32
    with pytest.raises(HashMismatchError) as info:
        fetch_cifar10(dest, md5=wrong, log=_quiet,
                      allow_synthetic={"n_train": 10, "n_test": 10, "seed": 0})
    message = str(info.value)
    assert str(dest / TARBALL) in message and wrong in message and md5 in message
    assert not (dest / "source.json").exists() and not (dest / "cifar10.npz").exists()
    assert (dest / TARBALL).exists()  # the user's file is left alone


def test_mismatching_download_is_removed(tmp_path, fixture_tarball):
    src, md5, _ = fixture_tarball
    dest = tmp_path / "cifar10"
    with pytest.raises(HashMismatchError):
        fetch_cifar10(dest, url=src.as_uri(), md5="1" * 32, log=_quiet)
    assert not (dest / TARBALL).exists()


def test_failure_without_synthetic_says_why_and_how_to_supply(tmp_path):
    dest = tmp_path / "cifar10"
    url = (tmp_path / "no-such-mirror" / TARBALL).as_uri()
    with pytest.raises(RuntimeError) as info:
        fetch_cifar10(dest, url=url, log=_quiet)
    message = str(info.value)
    assert "download" in message and "failed" in message and url in message
    assert str(dest / TARBALL) in message and cifar10.CIFAR10_MD5 in message
    assert not (dest / "source.json").exists() and not (dest / TARBALL).exists()


def test_synthetic_stand_in_is_labelled_and_has_the_layout(tmp_path):
    dest = tmp_path / "cifar10"
    params = {"n_train": 200, "n_test": 50, "seed": 3}
    logged = []
    record = fetch_cifar10(dest, url=(tmp_path / "nowhere").as_uri(), log=logged.append,
                           allow_synthetic=params)
    assert record["synthetic"] is True and record["source"] == {"kind": "synthetic", **params}
    assert "download" in record["reason"]
    assert any("SYNTHETIC" in line for line in logged)
    data = load_cifar10(dest)
    assert data["synthetic"] is True
    assert data["train_images"].shape == (200, 32, 32, 3) and data["train_images"].dtype == np.uint8
    assert data["test_images"].shape == (50, 32, 32, 3)
    assert np.bincount(data["train_labels"], minlength=10).tolist() == [20] * 10
    assert np.bincount(data["test_labels"], minlength=10).tolist() == [5] * 10
    again = synthetic_cifar10(**params)
    assert np.array_equal(again["train_images"], data["train_images"])
    assert not np.array_equal(synthetic_cifar10(200, 50, 4)["train_images"], data["train_images"])


def test_synthetic_classes_are_learnable_and_not_rotation_invariant():
    """A nearest-centroid classifier on orientation (power spectrum) and colour features learns
    the classes; on the same test images turned by 90° it fails: the labels are not C4 invariant."""
    data = synthetic_cifar10(2000, 500, seed=0)

    def features(images):
        gray = images.astype(float).mean(-1)
        gray -= gray.mean((1, 2), keepdims=True)
        power = np.abs(np.fft.fft2(gray)).reshape(len(images), -1) ** 2
        power /= power.sum(1, keepdims=True)
        colour = images.reshape(len(images), -1, 3).mean(1) / 255
        return np.concatenate([30 * power, colour], 1)

    train = features(data["train_images"])
    centroids = np.stack([train[data["train_labels"] == c].mean(0) for c in range(10)])

    def accuracy(images):
        f = features(images)
        predicted = np.argmin(((f[:, None] - centroids[None]) ** 2).sum(-1), 1)
        return (predicted == data["test_labels"]).mean()

    upright = accuracy(data["test_images"])
    turned = accuracy(np.rot90(data["test_images"], 1, (1, 2)))
    assert upright > 0.5 and turned < 0.3, (upright, turned)


def test_load_refuses_corrupted_npz(tmp_path):
    dest = tmp_path / "cifar10"
    fetch_cifar10(dest, url=(tmp_path / "nowhere").as_uri(), log=_quiet,
                  allow_synthetic={"n_train": 10, "n_test": 10, "seed": 0})
    raw = bytearray((dest / "cifar10.npz").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (dest / "cifar10.npz").write_bytes(bytes(raw))
    with pytest.raises(HashMismatchError, match="cifar10.npz"):
        load_cifar10(dest)


def test_batch_pickles_may_not_run_code(tmp_path):
    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": Evil(), b"labels": []}, protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refused"):
        cifar10._read_batch(path)
