"""MedMNIST3D (paper Section 6.2, Table 5): Nodule3D, Synapse3D and Organ3D at 28³.

URL, MD5, task, class names and split sizes come from `medmnist.INFO` (the package's own metadata),
not from a copy of ours. `fetch_medmnist` puts `{flag}.npz` into a folder (a file placed there by
hand, else a download with the project's downloader), checks its MD5 and writes `{flag}.json`, a
record of where it came from. `load_medmnist` checks the MD5 again before every use: medmnist
itself checks it only while downloading (pitfall 7).

The servers that host the files are not reachable from every machine (not from our CI). Only when
the configuration allows it, a deterministic synthetic stand-in with the same npz layout and keys
is written instead (`{flag}_synthetic.npz`, never the real file's name), and its record, the
loader and every output built from it say SYNTHETIC.
"""
from __future__ import annotations

import functools
import importlib.util
import shutil
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from approxeq.runtime.io import (
    DownloadError,
    HashMismatchError,
    atomic_path,
    check_hash,
    file_hash,
    obtain_verified,
    read_json,
    write_json_atomic,
)

Log = Callable[[str], None]

FLAGS = ("nodulemnist3d", "synapsemnist3d", "organmnist3d")
SPLITS = ("train", "val", "test")
SIDE = 28
_MAX_BYTES = 512 << 20  # the real files are 6-30 MB at size 28


class MedMNISTError(RuntimeError):
    """A MedMNIST3D file that cannot be obtained or does not have the expected layout."""


@functools.cache
def medmnist_info() -> dict:
    """`medmnist.INFO`, read from the installed package's own `info.py` without importing the
    package, whose `__init__` pulls in torch.utils.data, PIL and scikit-learn (≈ 1.5 s in every
    fetch and training job)."""
    spec = importlib.util.find_spec("medmnist")
    if spec is None or not spec.submodule_search_locations:
        raise MedMNISTError("the medmnist package is not installed: run ./install.sh "
                            "(pip install --no-deps medmnist==3.0.2)")
    info_file = Path(next(iter(spec.submodule_search_locations))) / "info.py"
    module_spec = importlib.util.spec_from_file_location("_medmnist_info", info_file)
    module = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(module)
    return module.INFO


def dataset_info(flag: str) -> dict:
    """The package's metadata of one 3D flag: url, md5, task, class names, split sizes."""
    info_table = medmnist_info()
    if flag not in info_table:
        raise MedMNISTError(f"unknown MedMNIST flag {flag!r}; 3D flags: "
                            f"{sorted(f for f in info_table if f.endswith('3d'))}")
    info = info_table[flag]
    if not info["python_class"].endswith("MNIST3D"):
        raise MedMNISTError(f"{flag} is not a 3D MedMNIST data set ({info['python_class']})")
    return {"flag": flag, "url": info["url"], "md5": info["MD5"].lower(), "task": info["task"],
            "labels": {int(k): v for k, v in info["label"].items()},
            "n_classes": len(info["label"]), "n_samples": dict(info["n_samples"]),
            "n_channels": info["n_channels"], "python_class": info["python_class"],
            "license": info.get("license")}


def npz_path(dest_dir: str | Path, flag: str) -> Path:
    return Path(dest_dir) / f"{flag}.npz"  # the name medmnist's own classes and Evaluator expect


def synthetic_path(dest_dir: str | Path, flag: str) -> Path:
    """The stand-in never takes the real file's name, so it can never be mistaken for one."""
    return Path(dest_dir) / f"{flag}_synthetic.npz"


def record_path(dest_dir: str | Path, flag: str) -> Path:
    return Path(dest_dir) / f"{flag}.json"


# --------------------------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------------------------


def check_layout(arrays: Mapping[str, np.ndarray], n_classes: int, where: str) -> dict[str, int]:
    """Keys {train,val,test}_{images,labels}, images (N, 28, 28, 28) uint8, labels (N, 1) integer in
    0..n_classes−1. Returns the split sizes."""
    sizes = {}
    for split in SPLITS:
        images, labels = arrays.get(f"{split}_images"), arrays.get(f"{split}_labels")
        if images is None or labels is None:
            raise MedMNISTError(f"{where}: missing {split}_images or {split}_labels; keys "
                                f"{sorted(arrays)}")
        if images.dtype != np.uint8 or images.shape[1:] != (SIDE, SIDE, SIDE):
            raise MedMNISTError(f"{where}: {split}_images is {images.dtype} {images.shape}, expected "
                                f"uint8 (N, {SIDE}, {SIDE}, {SIDE})")
        if labels.shape != (len(images), 1) or not np.issubdtype(labels.dtype, np.integer):
            raise MedMNISTError(f"{where}: {split}_labels is {labels.dtype} {labels.shape}, expected "
                                f"integer ({len(images)}, 1)")
        if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
            raise MedMNISTError(f"{where}: {split}_labels outside 0..{n_classes - 1}")
        sizes[split] = int(len(images))
    return sizes


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


# --------------------------------------------------------------------------------------------
# Synthetic stand-in
# --------------------------------------------------------------------------------------------


def synthetic_medmnist(flag: str, sizes: Mapping[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    """A stand-in with the real file's keys and layout. NOT MedMNIST.

    Class c of n: a noisy ellipsoid whose mean radius grows with c (3.5 … 9.5 voxels), placed
    off-centre, stretched along a random axis and brighter inside for odd classes, with a small
    satellite blob in a random direction, in speckle noise. Learnable from a few examples; the
    class is not tied to an orientation (like a nodule), while each volume has one.
    """
    n_classes = dataset_info(flag)["n_classes"]
    rng = np.random.default_rng([int(seed), FLAGS.index(flag) if flag in FLAGS else 99])
    grid = np.stack(np.meshgrid(*(np.arange(SIDE, dtype=np.float32),) * 3, indexing="ij"))
    arrays = {}
    for split in SPLITS:
        n = int(sizes[split])
        labels = rng.permutation(np.arange(n) % n_classes).astype(np.uint8)
        images = np.empty((n, SIDE, SIDE, SIDE), dtype=np.uint8)
        for i, label in enumerate(labels):
            radius = 3.5 + 6.0 * label / max(n_classes - 1, 1) + rng.uniform(-0.3, 0.3)
            stretch = np.ones(3, dtype=np.float32)
            stretch[rng.integers(3)] = rng.uniform(0.7, 1.3)
            centre = (SIDE - 1) / 2 + rng.uniform(-3, 3, 3)
            distance = np.sqrt((((grid - centre[:, None, None, None]) / stretch[:, None, None, None]) ** 2)
                               .sum(0))
            inside = np.clip(radius - distance + 0.5, 0, 1)
            # a small satellite blob in a random direction: orientation is visible, as in real scans
            direction = rng.normal(size=3)
            satellite = centre + direction / np.linalg.norm(direction) * (radius + 2.5)
            gap = np.sqrt(((grid - satellite[:, None, None, None]) ** 2).sum(0))
            inside = np.maximum(inside, np.clip(2.5 - gap + 0.5, 0, 1))
            level = 0.55 + 0.35 * (label % 2)
            volume = 0.1 + level * inside + rng.normal(0, 0.08, inside.shape)
            images[i] = np.clip(volume * 255 + 0.5, 0, 255).astype(np.uint8)
        arrays[f"{split}_images"] = images
        arrays[f"{split}_labels"] = labels[:, None]
    return arrays


# --------------------------------------------------------------------------------------------
# Fetch / load
# --------------------------------------------------------------------------------------------


def manual_instructions(path: Path, url: str, md5: str) -> str:
    return (f"To supply it by hand, download {url} on a machine that can reach it and put the file "
            f"at exactly {path} (MD5 {md5}); then re-run.")


def fetch_medmnist(flag: str, dest_dir: str | Path, timeout: float = 120, log: Log = print,
                   allow_synthetic: Mapping | None = None, url: str | None = None,
                   md5: str | None = None, mirror: str | None = None,
                   local_copy: str | Path | None = None) -> dict:
    """Fill `dest_dir` with `{flag}.npz` (MD5-checked) and the record `{flag}.json`; return it.

    A file already at `{flag}.npz` (placed by hand) is used; else `url` (default: medmnist.INFO's)
    is downloaded there (`mirror`: a base URL to take `{flag}.npz` from instead); `local_copy`: a
    folder whose `{flag}.npz` is copied first when present (the quick configuration reuses the paper
    run's files). The file must match `md5` (default: INFO's), else HashMismatchError naming
    the file and both hashes (and a download is removed). When it cannot be obtained:
    `allow_synthetic` None → MedMNISTError saying where to put the file by hand; a mapping
    {"sizes": {train, val, test}, "seed"} → the labelled synthetic stand-in.
    """
    info = dataset_info(flag)
    url = url or (mirror.rstrip("/") + f"/{flag}.npz" if mirror else info["url"])
    md5 = (md5 or info["md5"]).lower()
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    path, record_file = npz_path(dest, flag), record_path(dest, flag)
    record_file.unlink(missing_ok=True)  # written last: never a stale record

    copy_from = npz_path(local_copy, flag) if local_copy else None
    copied = not path.is_file() and copy_from is not None and copy_from.is_file()
    if copied:
        with atomic_path(path) as tmp:
            shutil.copyfile(copy_from, tmp)
        log(f"{flag}: copied {copy_from}")
    try:
        source = obtain_verified(path, url, md5, timeout, _MAX_BYTES, flag, log)
    except DownloadError as exc:
        if allow_synthetic is None:
            raise MedMNISTError(f"could not obtain {flag}: {exc}. "
                                f"{manual_instructions(path.absolute(), url, md5)}") from exc
        return _install_synthetic(flag, dest, dict(allow_synthetic), str(exc), log)
    except HashMismatchError:
        if copied:
            path.unlink(missing_ok=True)  # never leave an unverified copy to be reused
        raise
    if copied:
        source = {"kind": "local", "path": str(copy_from)}
    sizes = check_layout(_read_npz(path), info["n_classes"], str(path))
    record = {"flag": flag, "file": path.name, "source": source, "synthetic": False, "md5": md5,
              "sizes": sizes,
              "task": info["task"], "n_classes": info["n_classes"]}
    write_json_atomic(record_file, record)
    log(f"{flag}: installed {path} {sizes} from {source['kind']}")
    return record


def _synthetic_params(params: Mapping) -> dict:
    sizes = params.get("sizes", {})
    return {"sizes": {s: int(sizes.get(s, 32)) for s in SPLITS}, "seed": int(params.get("seed", 0))}


def _install_synthetic(flag: str, dest: Path, params: dict, reason: str, log: Log) -> dict:
    params = _synthetic_params(params)
    log(f"{flag}: {reason}")
    log(f"{flag}: WARNING: writing a SYNTHETIC stand-in {params}; results on it are NOT "
        f"MedMNIST results")
    arrays = synthetic_medmnist(flag, params["sizes"], params["seed"])
    path = synthetic_path(dest, flag)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez_compressed(handle, **arrays)
    info = dataset_info(flag)
    record = {"flag": flag, "file": path.name, "source": {"kind": "synthetic"}, "synthetic": True,
              "reason": reason,
              "params": params, "md5": file_hash(path), "sizes": params["sizes"],
              "task": info["task"], "n_classes": info["n_classes"]}
    write_json_atomic(record_path(dest, flag), record)
    return record


def load_medmnist(dest_dir: str | Path, flag: str) -> dict:
    """Splits of a folder filled by fetch_medmnist, after checking the file's MD5 again (INFO's for
    real data, the record's for the stand-in, which lives in `{flag}_synthetic.npz`): {"train": (images uint8 (N, 28, 28, 28), labels
    int64 (N,)), "val": ..., "test": ..., "synthetic": bool, "info": dataset_info(flag)}."""
    info = dataset_info(flag)
    record_file = record_path(dest_dir, flag)
    if not record_file.is_file():
        raise FileNotFoundError(f"{record_file} is missing: {Path(dest_dir)} was not filled by "
                                f"fetch_medmnist for {flag}")
    record = read_json(record_file)
    synthetic = bool(record.get("synthetic", False))
    path = synthetic_path(dest_dir, flag) if synthetic else npz_path(dest_dir, flag)
    check_hash(path, record["md5"] if synthetic else info["md5"])
    arrays = _read_npz(path)
    check_layout(arrays, info["n_classes"], str(path))
    out = {split: (arrays[f"{split}_images"], arrays[f"{split}_labels"][:, 0].astype(np.int64))
           for split in SPLITS}
    out.update(synthetic=synthetic, info=info)
    return out
