"""What a trained model is a function of, beyond its run settings: the content of the files it read
and the code that trained it. A checkpoint carries this identity; one whose identity differs from
the run's is never resumed or reused (approxeq.method.train sets it aside and says what changed).

The code fingerprint hashes the sources of the package modules loaded when training starts (the
data loaders, networks, actions, loss and training loop the run imported), not of the whole
package: a change to the report code does not throw trained models away. Modules that only say
where and how a run executes (device locks, atomic file writing, log redirection) are left out.
"""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from approxeq.runtime.io import file_hash

PACKAGE = __name__.split(".")[0]
# Where and how a run executes (devices, io, logs, this module), never what it computes.
RUNTIME = __name__.rsplit(".", 1)[0]


def code_modules() -> dict[str, Path]:
    """The package's modules loaded in this process that define what a run computes, by name."""
    modules = {}
    for name, module in sorted(sys.modules.items()):
        runtime = name == RUNTIME or name.startswith(RUNTIME + ".")
        if (name == PACKAGE or name.startswith(PACKAGE + ".")) and not runtime:
            source = getattr(module, "__file__", None)
            if source and source.endswith(".py"):
                modules[name] = Path(source)
    return modules


def code_fingerprint() -> str:
    """sha256 (16 hex digits) over the names and sources of code_modules()."""
    digest = hashlib.sha256()
    for name, path in code_modules().items():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def input_hashes(paths) -> dict[str, str]:
    """sha256 of every input file of a run, by path (a data set, or the record of a data folder,
    which holds the hashes of the files in it)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    return {str(p): file_hash(p, "sha256") for p in paths}


def data_digest(hashes: dict[str, str]) -> str:
    """One hash for a run's input files: the file's sha256, or for several the sha256 of their
    sorted "path sha256" lines (the report's provenance shows it, shortened)."""
    if len(hashes) == 1:
        return next(iter(hashes.values()))
    lines = "".join(f"{path} {digest}\n" for path, digest in sorted(hashes.items()))
    return hashlib.sha256(lines.encode()).hexdigest()


def identity_changes(old: dict | None, new: dict) -> list[str]:
    """What differs between two identities ({settings, data, code, torch}), in words: the changed
    settings by key, the data files whose content changed, a changed code fingerprint."""
    if not old:
        return ["the checkpoint records no identity (written before identities were recorded)"]
    changes = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if isinstance(before, dict) and isinstance(after, dict):
            for sub in sorted(set(before) | set(after)):
                if before.get(sub) != after.get(sub):
                    changes.append(f"{key}.{sub}: {_short(before.get(sub))} → {_short(after.get(sub))}")
        else:
            changes.append(f"{key}: {_short(before)} → {_short(after)}")
    return changes


def _short(value) -> str:
    text = "absent" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."
