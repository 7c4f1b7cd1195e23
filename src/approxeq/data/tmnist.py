"""TMNIST (typeface MNIST, paper Section 4.1): the ten digits in two typefaces, randomly rotated and
scaled, with the cyclic group C2 swapping the typeface.

Fonts. The original TMNIST is a Kaggle CSV that cannot be fetched here, so the 20 base glyphs are
regenerated from the font files, taken from npm tarballs pinned by sha256 (the tarball and the font
file inside it): IBMPlexSans-MediumItalic (font 0) and Bahianita-Regular (font 1), both OFL.
`fonts.fetch_fonts` installs them with a `fonts.json` record.

Glyphs. `render_glyph` follows MNIST's normalisation: draw the digit large, crop to its ink box,
scale the long side to 20 px (anti-aliased), and place it in a 28×28 field with its centre of mass
at the field centre. Rendering is deterministic for one Pillow/FreeType build; the sha256 of the
(2, 10, 28, 28) glyph array from this project's build is pinned as EXPECTED_GLYPHS_SHA256, and a
different build is reported (warning, and the actual hash recorded), not refused.

Samples and the C2 action. Each sample is a digit d, an angle θ ~ U(angle_range) and a scale
s ~ U(scale_range). Its two images, d in font 0 and d in font 1, are transformed by the SAME
rotation θ (counter-clockwise) and scale s, both about the image centre, bilinear. They are stored
as `pairs[:, f]` = the image in font f, and `fonts` names the sample's own font. As a tensor the
sample is the 2-channel image (own font, other font) (`as_pair_channels`), and the generator of
C2 = groups.cyclic(2) acts by swapping the two channels (`font_swap_action`): the typeface changes
while digit, rotation and scale are kept. Swapping channels is a permutation of the tensor entries,
so this action is an exact homomorphism (swap twice = identity), with no interpolation involved.
The network sees channel 0 only; channel 1 is where the action sends it.
"""
from __future__ import annotations

import hashlib
import zlib
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import torch

from approxeq.algebra.rotations import rotate_scale_bilinear
from approxeq.data.fonts import FONT_NAMES
from approxeq.runtime.io import (
    load_splits,
    save_splits,
)

__all__ = [
    "EXPECTED_GLYPHS_SHA256",
    "render_glyph",
    "base_glyphs",
    "glyphs_sha256",
    "transform_images",
    "build_tmnist",
    "as_pair_channels",
    "font_swap_action",
    "save_tmnist",
    "load_tmnist",
]

Log = Callable[[str], None]

# sha256 of base_glyphs(<the two fonts above>).tobytes(), rendered with Pillow 13.0.0 / FreeType
# 2.14.3. Another FreeType build may rasterise differently; build_tmnist then warns and records it.
EXPECTED_GLYPHS_SHA256 = "a10e845bcbecf0f3c5bf3a9e826017ae839a6a2b00024b581978f54ff04b672e"

RENDER_SIZE = 200  # font size (px) the glyph is drawn at before it is reduced to 20 px
FIELD, BOX = 28, 20  # MNIST: 28×28 field, long side of the ink box 20 px


def synthetic_glyphs() -> np.ndarray:
    """(2, 10, 28, 28) stand-in glyphs for offline quick runs, labelled synthetic wherever used:
    face 0 is Pillow's built-in font, face 1 the same drawn oblique and bold, so the two faces
    differ as two typefaces do while the digit stays the same."""
    from PIL import Image, ImageFilter, ImageFont

    upright = np.stack([render_glyph(ImageFont.load_default(size=RENDER_SIZE), d) for d in range(10)])
    oblique = []
    for glyph in upright:
        image = Image.fromarray(glyph).transform((FIELD, FIELD), Image.Transform.AFFINE,
                                                 (1, 0.35, -0.35 * FIELD / 2, 0, 1, 0),
                                                 resample=Image.Resampling.BILINEAR)
        oblique.append(np.asarray(image.filter(ImageFilter.MaxFilter(3)), dtype=np.uint8))
    return np.stack([upright, np.stack(oblique)])


# --------------------------------------------------------------------------------------------
# Glyphs
# --------------------------------------------------------------------------------------------


def _as_font(font, size: int):
    from PIL import ImageFont

    if isinstance(font, (str, Path)):
        return ImageFont.truetype(str(font), size)
    return font  # an ImageFont object already (e.g. ImageFont.load_default(size=...))


def centre_by_mass(glyph: np.ndarray, field: int = FIELD) -> np.ndarray:
    """Place `glyph` (h, w ≤ field) in a zero field×field uint8 image, shifted by whole pixels so
    that its centre of mass lands as close as possible to the field centre ((field − 1) / 2)."""
    glyph = np.asarray(glyph, dtype=np.uint8)
    h, w = glyph.shape
    if h > field or w > field:
        raise ValueError(f"glyph of shape {glyph.shape} does not fit a {field}×{field} field")
    ink = glyph.astype(np.float64)
    total = ink.sum()
    if total == 0:
        raise ValueError("glyph has no ink")
    rows, cols = np.indices(ink.shape)
    centre_row, centre_col = (rows * ink).sum() / total, (cols * ink).sum() / total
    middle = (field - 1) / 2
    top = int(np.clip(np.floor(middle - centre_row + 0.5), 0, field - h))
    left = int(np.clip(np.floor(middle - centre_col + 0.5), 0, field - w))
    out = np.zeros((field, field), dtype=np.uint8)
    out[top:top + h, left:left + w] = glyph
    return out


def render_glyph(font, digit: int, size: int = RENDER_SIZE) -> np.ndarray:
    """One digit as a 28×28 uint8 image, MNIST-style: drawn at `size` px on a large canvas,
    cropped to its ink box, long side scaled to 20 px (Lanczos), centred by centre of mass.

    `font` is a font file path (.ttf/.otf/.woff) or a Pillow font object. Deterministic for a
    given Pillow/FreeType build."""
    from PIL import Image, ImageDraw

    if not 0 <= int(digit) <= 9:
        raise ValueError(f"digit must be 0..9, got {digit}")
    face = _as_font(font, size)
    side = 3 * size
    canvas = Image.new("L", (side, side), 0)
    ImageDraw.Draw(canvas).text((side // 2, side // 2), str(int(digit)), fill=255, font=face,
                                anchor="mm")
    box = canvas.getbbox()
    if box is None:
        raise ValueError(f"font {font} draws no ink for digit {digit}")
    if box[0] == 0 or box[1] == 0 or box[2] == side or box[3] == side:
        raise ValueError(f"digit {digit} in font {font} touches the {side}px canvas edge")
    glyph = canvas.crop(box)
    scale = BOX / max(glyph.size)
    width, height = (max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale)))
    glyph = glyph.resize((width, height), Image.LANCZOS)
    return centre_by_mass(np.asarray(glyph, dtype=np.uint8))


def base_glyphs(font_paths: Sequence, size: int = RENDER_SIZE) -> np.ndarray:
    """uint8 array (n_fonts, 10, 28, 28): glyphs[f, d] is digit d in font f (font 0 =
    IBMPlexSans-MediumItalic, font 1 = Bahianita-Regular for the default fonts)."""
    return np.stack([np.stack([render_glyph(_as_font(font, size), d, size) for d in range(10)])
                     for font in font_paths])


def glyphs_sha256(glyphs: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(glyphs, dtype=np.uint8).tobytes()).hexdigest()


# --------------------------------------------------------------------------------------------
# Augmented samples
# --------------------------------------------------------------------------------------------


def transform_images(images: np.ndarray, angles: np.ndarray, scales: np.ndarray,
                     batch: int = 4096) -> np.ndarray:
    """Rotate (counter-clockwise, degrees) and scale uint8 images (N, C, H, W) about their centre,
    all C channels of sample i by angles[i], scales[i]; bilinear, rounded back to uint8."""
    out = np.empty_like(images, dtype=np.uint8)
    for start in range(0, len(images), batch):
        stop = start + batch
        x = torch.from_numpy(images[start:stop]).float()
        y = rotate_scale_bilinear(x, torch.from_numpy(np.asarray(angles[start:stop])).float(),
                                  torch.from_numpy(np.asarray(scales[start:stop])).float())
        out[start:stop] = y.round().clamp(0, 255).to(torch.uint8).numpy()
    return out


def augment_pairs(clean: torch.Tensor, generator: torch.Generator, angle_range: Sequence[float],
                  scale_range: Sequence[float]) -> torch.Tensor:
    """A fresh transform of every sample of `clean` (uint8 or float 0–255, (N, C, H, W), on any
    device): angle ~ U(angle_range) degrees and scale ~ U(scale_range) drawn from `generator`, all
    C channels of a sample alike, as `build_tmnist` draws a split; bilinear and rounded to the 256
    levels of the stored pairs. Returns float in [0, 1]."""
    n = len(clean)
    (lo, hi), (smin, smax) = angle_range, scale_range
    angles = (lo + (hi - lo) * torch.rand(n, generator=generator, dtype=torch.float64)).float()
    scales = (smin + (smax - smin) * torch.rand(n, generator=generator, dtype=torch.float64)).float()
    x = rotate_scale_bilinear(clean.float(), angles.to(clean.device), scales.to(clean.device))
    return x.round_().clamp_(0, 255).div_(255)


def _split_rng(seed: int, split: str) -> np.random.Generator:
    # One independent stream per split, keyed by its name: adding or resizing a split never
    # changes another split.
    return np.random.default_rng([int(seed), zlib.crc32(split.encode())])


def _glyph_meta(glyphs: np.ndarray, log: Log) -> dict:
    import PIL
    from PIL import features

    actual = glyphs_sha256(glyphs)
    match = actual == EXPECTED_GLYPHS_SHA256
    if not match and glyphs.shape == (2, 10, FIELD, FIELD):
        log(f"TMNIST: WARNING: the base glyphs' sha256 is {actual}, not the pinned "
            f"{EXPECTED_GLYPHS_SHA256} (rendered with Pillow {PIL.__version__}, FreeType "
            f"{features.version('freetype2')}); another font rasteriser gives slightly different "
            f"glyphs. Continuing; the actual hash is recorded in the metadata.")
    return {"glyphs_sha256": actual, "glyphs_expected_sha256": EXPECTED_GLYPHS_SHA256,
            "glyphs_match": match, "pillow": PIL.__version__,
            "freetype": features.version("freetype2")}


def build_tmnist(glyphs: np.ndarray, n_per_split: Mapping[str, int],
                 angle_range: Sequence[float] = (-45.0, 45.0),
                 scale_range: Sequence[float] = (0.75, 1.25), seed: int = 0,
                 log: Log = print) -> tuple[dict[str, dict], dict]:
    """Augmented TMNIST splits from the (2, 10, 28, 28) base glyphs.

    Per split of n samples: `digits` (n,) and `fonts` (n,) (the sample's own font) balanced over
    the 20 (digit, font) combinations in a seeded random order; `angles` ~ U(angle_range) degrees
    (counter-clockwise) and `scales` ~ U(scale_range); `pairs` uint8 (n, 2, 28, 28) with
    pairs[:, f] = glyphs[f, digits] rotated by `angles` and scaled by `scales` (both fonts of a
    sample by the same transform). Returns (splits, meta); meta records the parameters and the
    glyph hash (a warning is logged if it differs from EXPECTED_GLYPHS_SHA256).
    """
    glyphs = np.asarray(glyphs)
    if glyphs.ndim != 4 or glyphs.shape[:2] != (2, 10) or glyphs.dtype != np.uint8:
        raise ValueError(f"glyphs must be uint8 (2, 10, H, W), got {glyphs.dtype} {glyphs.shape}")
    lo, hi = (float(v) for v in angle_range)
    smin, smax = (float(v) for v in scale_range)
    if lo > hi or smin > smax or smin <= 0:
        raise ValueError(f"bad ranges: angle_range {angle_range}, scale_range {scale_range}")
    splits = {}
    for split, n in n_per_split.items():
        if "_" in split:
            raise ValueError(f"split name {split!r} must not contain '_' (npz keys are split_field)")
        n = int(n)
        rng = _split_rng(seed, split)
        combos = rng.permutation(np.arange(n) % 20)
        digits, fonts = combos % 10, combos // 10
        angles = rng.uniform(lo, hi, size=n)
        scales = rng.uniform(smin, smax, size=n)
        clean = np.ascontiguousarray(glyphs[:, digits].swapaxes(0, 1))
        pairs = transform_images(clean, angles, scales)
        splits[split] = {"pairs": pairs, "digits": digits.astype(np.int64),
                         "fonts": fonts.astype(np.int64), "angles": angles, "scales": scales}
        if split == "train":  # the untransformed pairs, for a fresh transform every epoch
            splits[split]["clean"] = clean
    meta = {"n_per_split": {k: int(v) for k, v in n_per_split.items()},
            "angle_range": [lo, hi], "scale_range": [smin, smax], "seed": int(seed),
            "fonts": list(FONT_NAMES), **_glyph_meta(glyphs, log),
            "layout": "pairs[:, f] = the image in font f; fonts = the sample's own font; "
                      "as_pair_channels gives (own font, other font); C2 swaps the channels"}
    return splits, meta


def as_pair_channels(split: Mapping[str, np.ndarray]) -> np.ndarray:
    """uint8 (N, 2, 28, 28): channel 0 = the sample's own font, channel 1 = the other font."""
    pairs, fonts = np.asarray(split["pairs"]), np.asarray(split["fonts"])
    own = np.take_along_axis(pairs, fonts[:, None, None, None], axis=1)
    other = np.take_along_axis(pairs, 1 - fonts[:, None, None, None], axis=1)
    return np.concatenate([own, other], axis=1)


def font_swap_action(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """The C2 action on 2-channel samples (B, 2, H, W): g = 1 swaps the two typefaces, g = 0
    leaves the sample. An exact homomorphism of groups.cyclic(2) (a permutation of entries)."""
    if x.ndim < 2 or x.shape[1] != 2:
        raise ValueError(f"expected (B, 2, ...) font pairs, got shape {tuple(x.shape)}")
    g = torch.as_tensor(g, device=x.device).reshape(-1)
    if g.shape[0] != x.shape[0]:
        raise ValueError(f"{g.shape[0]} group elements for a batch of {x.shape[0]}")
    swap = (g.long() % 2 == 1).reshape(-1, *([1] * (x.ndim - 1)))
    return torch.where(swap, x.flip(1), x)


# Storage: compressed npz + `<path>.json` with its sha256 and metadata, checked on load.
save_tmnist = save_splits
load_tmnist = load_splits

