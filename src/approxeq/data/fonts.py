"""The two typefaces of TMNIST, fetched with `npm pack` from tarballs pinned by sha256 (the tarball
and the font file inside it) and installed with a `fonts.json` record; a synthetic stand-in where
npm is unreachable (labelled so)."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable, Mapping, Sequence

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

Log = Callable[[str], None]

FONT_NAMES = ("IBMPlexSans-MediumItalic", "Bahianita-Regular")

# sha256 of the npm tarball ("sha256") and of the font file inside it ("file_sha256"), both
# determined with `npm pack` from registry.npmjs.org.
DEFAULT_FONTS = (
    {
        "name": "IBMPlexSans-MediumItalic",
        "package": "@expo-google-fonts/ibm-plex-sans@0.4.1",
        "path": "package/500Medium_Italic/IBMPlexSans_500Medium_Italic.ttf",
        "sha256": "8b0e86cb17fbcf46a1b3ee9fcf339ebb552938cc5b753eb28671725aa3f66671",
        "file_sha256": "cec70052329bed53657265d8f3faf19a8fa1f056916640cd81a825a5e5dd208d",
        "license": "OFL-1.1",
    },
    {
        "name": "Bahianita-Regular",
        "package": "@fontsource/bahianita@5.3.0",
        "path": "package/files/bahianita-latin-400-normal.woff",
        "sha256": "ae311f9d77c4a1267d82d0dae92d90c55d623ffb773448eb98dc817cd8b40cc2",
        "file_sha256": "54d776c9b55f532abbd991c9ffb5d1826c5ec3c5b305dbef85fb696064a3979c",
        "license": "OFL-1.1",
    },
)

FONTS_RECORD = "fonts.json"
_FONT_KEYS = ("name", "package", "path", "sha256", "file_sha256")


# --------------------------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------------------------


def _font_file_name(font: Mapping) -> str:
    suffix = Path(str(font["path"])).suffix.lower()
    if suffix not in (".ttf", ".otf", ".woff", ".woff2"):
        raise ValueError(f"font {font['name']}: {font['path']} is not a font file (.ttf/.otf/.woff)")
    return f"{font['name']}{suffix}"


def _check_font_specs(fonts: Sequence[Mapping]) -> None:
    if not fonts:
        raise ValueError("no fonts given")
    for font in fonts:
        missing = [key for key in _FONT_KEYS if not font.get(key)]
        if missing:
            raise ValueError(f"font spec {dict(font)} lacks {missing} (every font is pinned by the "
                             f"sha256 of its tarball and of the font file)")
        name = str(font["name"])
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"font name {name!r} cannot be used as a file name")
        _font_file_name(font)
    names = [f["name"] for f in fonts]
    if len(set(names)) != len(names):
        raise ValueError(f"font names must be unique, got {names}")


def _record(fonts: Sequence[Mapping]) -> dict:
    return {"fonts": [dict(font, file=_font_file_name(font)) for font in fonts]}


def _extract_font(font: Mapping, staging: Path, timeout: float, log: Log) -> Path:
    log(f"fonts: npm pack {font['package']}")
    tarball = npm_pack_verified(str(font["package"]), str(font["sha256"]), staging, timeout)
    extract = staging / "extract"
    safe_extract(tarball, extract)
    member = (extract / str(font["path"])).resolve()
    if not member.is_relative_to(extract.resolve()) or not member.is_file():
        raise FileNotFoundError(f"{font['package']} has no file {font['path']}")
    check_hash(member, str(font["file_sha256"]), algorithm="sha256")
    return member


def fetch_fonts(dest_dir: str | Path, fonts: Sequence[Mapping] = DEFAULT_FONTS,
                timeout: float = 120, log: Log = print, allow_synthetic: bool = False) -> dict:
    """Install each font of `fonts` as `dest_dir/<name>.<ext>` and write `dest_dir/fonts.json`.

    Each font dict has `name`, `package` (npm spec, e.g. "@fontsource/bahianita@5.3.0"), `path`
    (inside the tarball), `sha256` (of the tarball) and `file_sha256` (of the font file). The
    tarball comes from `npm pack` and is refused, as is the extracted file, unless its hash
    matches (HashMismatchError naming the file and both hashes). A font already in `dest_dir`
    with the right `file_sha256` is kept without calling npm. Returns the record:
    {"fonts": [font dict + "file": installed file name, ...]} in the given order.
    """
    dest = Path(dest_dir)
    fonts = [dict(font) for font in fonts]
    _check_font_specs(fonts)
    dest.mkdir(parents=True, exist_ok=True)
    # Drop the record first and write it last: a crash leaves no record rather than a stale one.
    (dest / FONTS_RECORD).unlink(missing_ok=True)
    for index, font in enumerate(fonts):
        target = dest / _font_file_name(font)
        if target.is_file() and file_hash(target, "sha256") == str(font["file_sha256"]).lower():
            log(f"fonts: reusing {target} (sha256 matches)")
            continue
        try:
            with tempfile.TemporaryDirectory(prefix=f"approxeq-font{index}-") as staging:
                member = _extract_font(font, Path(staging), timeout, log)
                with atomic_path(target) as tmp:
                    shutil.copyfile(member, tmp)
        except (OSError, RuntimeError, TimeoutError) as error:
            if not allow_synthetic or isinstance(error, HashMismatchError):
                raise
            # Offline quick runs only: two synthetic faces from Pillow's built-in font.
            reason = f"{font['package']}: {one_line(error)}"
            log(f"fonts: {reason}; using the SYNTHETIC stand-in faces")
            record = {"fonts": [], "synthetic": True, "reason": reason}
            write_json_atomic(dest / FONTS_RECORD, record)
            return record
        log(f"fonts: installed {target} from {font['package']}")
    record = _record(fonts)
    write_json_atomic(dest / FONTS_RECORD, record)
    return record


def load_fonts(dest_dir: str | Path, verify: bool = True) -> list[Path]:
    """The font files recorded in `dest_dir/fonts.json`, in record order, each re-hashed."""
    dest = Path(dest_dir)
    record_path = dest / FONTS_RECORD
    if not record_path.is_file():
        raise FileNotFoundError(f"{record_path} is missing: {dest} was not filled by fetch_fonts")
    paths = []
    for font in read_json(record_path)["fonts"]:
        path = dest / font["file"]
        if verify:
            check_hash(path, font["file_sha256"], "sha256")
        paths.append(path)
    return paths


def fonts_are_synthetic(dest_dir: str | Path) -> bool:
    return bool(read_json(Path(dest_dir) / FONTS_RECORD).get("synthetic", False))
