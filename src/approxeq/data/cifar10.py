"""CIFAR10 acquisition (paper Section 4.3): the canonical python tarball, MD5-checked, converted to
one npz; or, only when explicitly allowed, a clearly labelled synthetic stand-in.

`fetch_cifar10` takes `dest_dir/cifar-10-python.tar.gz` if a user placed it there, else downloads
it; either way the tarball must match the canonical MD5 (HashMismatchError otherwise, naming the
file and both hashes). It is then extracted safely and converted to `dest_dir/cifar10.npz`
(train_images (50000, 32, 32, 3) uint8 HWC, train_labels, test_images, test_labels) with a
`source.json` record. No registry reachable from the project's machines ships CIFAR10, so offline
runs need `allow_synthetic`; the record, the loader and every log line then say "synthetic".
"""
from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from approxeq.runtime.io import (
    DownloadError,
    atomic_path,
    check_hash,
    file_hash,
    obtain_verified,
    read_json,
    safe_extract,
    write_json_atomic,
)

__all__ = [
    "CIFAR10_URL",
    "CIFAR10_MD5",
    "TARBALL",
    "fetch_cifar10",
    "load_cifar10",
    "convert_tarball",
    "synthetic_cifar10",
]

Log = Callable[[str], None]

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
TARBALL = "cifar-10-python.tar.gz"
ARRAYS = "cifar10.npz"
SOURCE_RECORD = "source.json"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
N_CLASSES = 10
SIDE = 32
_MAX_TARBALL_BYTES = 256 << 20  # the real tarball is 170 MB; a broken mirror cannot fill the disk


# --------------------------------------------------------------------------------------------
# The python-format tarball
# --------------------------------------------------------------------------------------------


class _BatchUnpickler(pickle.Unpickler):
    """CIFAR batches are pickled dicts of numpy arrays and lists. Even after the MD5 check, allow
    only the globals that such a pickle needs, so a pickle can never run arbitrary code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how a Python 3 pickle (protocol < 3) stores bytes
    }

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"CIFAR batch pickle refers to {module}.{name}; refused")
        return super().find_class(module, name)


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 32, 32, 3) uint8, labels (N,) uint8) from one batch: b"data" rows are
    3072 bytes, the red, green, blue 32×32 planes in row-major order (CHW)."""
    if not path.is_file():
        raise FileNotFoundError(f"the CIFAR10 tarball has no {path.name} ({path})")
    with open(path, "rb") as handle:
        batch = _BatchUnpickler(handle, encoding="bytes").load()
    data = np.asarray(batch[b"data"], dtype=np.uint8)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * SIDE * SIDE or labels.shape != (len(data),):
        raise ValueError(f"{path.name}: data {data.shape} / labels {labels.shape}; expected "
                         f"(N, 3072) and (N,)")
    if len(labels) and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise ValueError(f"{path.name}: labels outside 0..9")
    images = data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.uint8)


def convert_tarball(tarball: str | Path) -> dict[str, np.ndarray]:
    """Extract (safely) and read the python-format tarball: train = data_batch_1..5 in order,
    test = test_batch. Images (N, 32, 32, 3) uint8, labels (N,) uint8."""
    with tempfile.TemporaryDirectory(prefix="approxeq-cifar10-") as staging:
        safe_extract(tarball, staging)
        folder = Path(staging) / "cifar-10-batches-py"
        train = [_read_batch(folder / name) for name in TRAIN_BATCHES]
        test_images, test_labels = _read_batch(folder / TEST_BATCH)
    return {"train_images": np.concatenate([b[0] for b in train]),
            "train_labels": np.concatenate([b[1] for b in train]),
            "test_images": test_images, "test_labels": test_labels}


# --------------------------------------------------------------------------------------------
# Synthetic stand-in
# --------------------------------------------------------------------------------------------


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV → RGB, all inputs in [0, 1], output (..., 3)."""
    i = np.floor(h * 6).astype(np.int64) % 6
    f = h * 6 - np.floor(h * 6)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = [np.stack(c, -1) for c in
               ((v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q))]
    out = np.zeros(h.shape + (3,))
    for k, rgb in enumerate(choices):
        out[i == k] = rgb[i == k]
    return out


def _synthetic_split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Class c: a grating at orientation c·18° (± 4°) inside a disc at a random place, its hue
    shared by the class pair {2k, 2k+1} (so colour alone does not decide the class), over a
    vertical "sky to ground" background gradient, plus pixel noise. A 90° turn maps orientation
    c·18° to that of class c + 5 (another hue) and turns the gradient sideways: the classes are
    learnable and NOT rotation invariant."""
    labels = rng.permutation(np.arange(n) % N_CLASSES)
    theta = np.deg2rad(labels * 18.0 + rng.normal(0.0, 4.0, n))[:, None, None]
    freq = rng.uniform(2.5, 5.0, n)[:, None, None] / SIDE * 2 * np.pi  # cycles per image
    phase = rng.uniform(0, 2 * np.pi, n)[:, None, None]
    cy, cx = rng.uniform(10, 22, (2, n, 1, 1))
    radius = rng.uniform(8, 13, n)[:, None, None]
    y, x = np.mgrid[:SIDE, :SIDE].astype(np.float64)
    # direction of the grating's stripes: along (cos θ, −sin θ) in (x right, y up) coordinates
    wave = 0.5 + 0.5 * np.sin(freq * ((x - cx) * np.sin(theta) + (y - cy) * np.cos(theta))
                              + phase)
    disc = np.clip(radius - np.hypot(y - cy, x - cx) + 0.5, 0, 1)  # anti-aliased
    hue = ((labels // 2) / 5.0 + rng.normal(0, 0.03, n)) % 1.0
    fg = _hsv_to_rgb(hue, rng.uniform(0.6, 1.0, n), rng.uniform(0.7, 1.0, n))[:, None, None, :]
    sky = rng.uniform(0.55, 0.9, (n, 1, 1, 1)) * np.array([0.75, 0.85, 1.0])
    ground = rng.uniform(0.15, 0.4, (n, 1, 1, 1)) * np.array([0.8, 0.7, 0.5])
    height = (y / (SIDE - 1))[None, :, :, None]
    background = sky * (1 - height) + ground * height
    inside = fg * (0.25 + 0.75 * wave[..., None])
    image = background * (1 - disc[..., None]) + inside * disc[..., None]
    image = image + rng.normal(0, 0.05, image.shape)
    return (np.clip(image * 255 + 0.5, 0, 255).astype(np.uint8), labels.astype(np.uint8))


def synthetic_cifar10(n_train: int = 5000, n_test: int = 1000, seed: int = 0) -> dict:
    """A synthetic stand-in with CIFAR10's layout: (N, 32, 32, 3) uint8 images, labels 0..9,
    balanced. Train and test use independent streams derived from `seed`. NOT CIFAR10."""
    train = _synthetic_split(int(n_train), np.random.default_rng([int(seed), 0]))
    test = _synthetic_split(int(n_test), np.random.default_rng([int(seed), 1]))
    return {"train_images": train[0], "train_labels": train[1],
            "test_images": test[0], "test_labels": test[1]}


# --------------------------------------------------------------------------------------------
# Fetch / load
# --------------------------------------------------------------------------------------------


def _save_arrays(dest: Path, arrays: Mapping[str, np.ndarray]) -> str:
    with atomic_path(dest / ARRAYS) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
    return file_hash(dest / ARRAYS, "sha256")


def _sizes(arrays: Mapping[str, np.ndarray]) -> dict:
    return {"train": int(len(arrays["train_labels"])), "test": int(len(arrays["test_labels"]))}


def _reusable(dest: Path, md5: str) -> dict | None:
    """The existing record, if it describes real data from a tarball with this MD5 and the npz
    still matches it (the tarball itself may have been deleted since)."""
    try:
        record = read_json(dest / SOURCE_RECORD)
        if record.get("synthetic") is False and record.get("md5") == md5.lower() and \
                file_hash(dest / ARRAYS, "sha256") == record.get("sha256"):
            return record
    except (OSError, ValueError, KeyError):
        pass
    return None


def _manual_instructions(tarball: Path, url: str, md5: str) -> str:
    return (f"To supply CIFAR10 by hand, download {url} on a machine that can reach it and put "
            f"the file at exactly {tarball} (MD5 {md5}); then re-run. Alternatively allow the "
            f"synthetic stand-in (its results are not CIFAR10 results).")


def fetch_cifar10(dest_dir: str | Path, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5,
                  timeout: float = 60, log: Log = print,
                  allow_synthetic: Mapping | None = None) -> dict:
    """Fill `dest_dir` with `cifar10.npz` and `source.json`; return the record.

    Uses `dest_dir/cifar-10-python.tar.gz` if present, else downloads `url` there. The tarball
    must match `md5` (a mismatch is always refused, synthetic or not). If it cannot be obtained:
    with `allow_synthetic` None, RuntimeError saying why and how to supply the file; with
    `allow_synthetic` = {"n_train", "n_test", "seed"}, a synthetic stand-in is written and the
    record says {"synthetic": true, "reason": ...}.
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    tarball = dest / TARBALL
    md5 = md5.lower()
    reuse = _reusable(dest, md5)
    if reuse is not None:
        log(f"CIFAR10: reusing {dest / ARRAYS} (matches {SOURCE_RECORD})")
        return reuse
    (dest / SOURCE_RECORD).unlink(missing_ok=True)  # written last: never a stale record

    try:
        source = obtain_verified(tarball, url, md5, timeout, _MAX_TARBALL_BYTES, "CIFAR10", log)
    except DownloadError as exc:
        if allow_synthetic is None:
            raise RuntimeError(f"could not obtain CIFAR10: {exc}. "
                               f"{_manual_instructions(tarball, url, md5)}") from exc
        return _install_synthetic(dest, dict(allow_synthetic), str(exc), log)
    arrays = convert_tarball(tarball)
    sha256 = _save_arrays(dest, arrays)
    record = {"source": source, "synthetic": False, "md5": md5, "sha256": sha256,
              "sizes": _sizes(arrays)}
    write_json_atomic(dest / SOURCE_RECORD, record)
    log(f"CIFAR10: installed {dest / ARRAYS} ({record['sizes']}) from {source['kind']}")
    return record


def _install_synthetic(dest: Path, params: dict, reason: str, log: Log) -> dict:
    params = {"n_train": int(params.get("n_train", 5000)), "n_test": int(params.get("n_test", 1000)),
              "seed": int(params.get("seed", 0))}
    log(f"CIFAR10: {reason}")
    log(f"CIFAR10: WARNING: writing a SYNTHETIC stand-in {params}; results on it are NOT "
        f"CIFAR10 results")
    arrays = synthetic_cifar10(**params)
    sha256 = _save_arrays(dest, arrays)
    record = {"source": {"kind": "synthetic", **params}, "synthetic": True, "reason": reason,
              "sha256": sha256, "sizes": _sizes(arrays)}
    write_json_atomic(dest / SOURCE_RECORD, record)
    return record


def load_cifar10(dest_dir: str | Path, verify: bool = True) -> dict:
    """Read a directory filled by fetch_cifar10: images (N, 32, 32, 3) uint8, labels (N,) int64,
    and "synthetic" (bool). With `verify`, the npz is re-hashed against source.json."""
    dest = Path(dest_dir)
    record_path = dest / SOURCE_RECORD
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} is missing: {dest} was not filled by fetch_cifar10")
    record = read_json(record_path)
    if verify:
        check_hash(dest / ARRAYS, record["sha256"], "sha256")
    with np.load(dest / ARRAYS) as data:
        out = {key: data[key] for key in ("train_images", "train_labels", "test_images",
                                          "test_labels")}
    for split in ("train", "test"):
        images, labels = out[f"{split}_images"], out[f"{split}_labels"].astype(np.int64)
        if images.ndim != 4 or images.shape[1:] != (SIDE, SIDE, 3) or images.dtype != np.uint8 \
                or labels.shape != (len(images),):
            raise ValueError(f"{dest / ARRAYS}: {split} images {images.dtype} {images.shape}, "
                             f"labels {labels.shape}; expected (N, 32, 32, 3) uint8 and (N,)")
        out[f"{split}_labels"] = labels
    out["synthetic"] = bool(record["synthetic"])
    return out
