"""A synthetic MNIST stand-in (digits rendered with Pillow's bundled font, MNIST-style
normalisation), so that the pipeline runs end to end offline; never MNIST results (fetch_mnist's
source.json says so)."""
from __future__ import annotations

import numpy as np

# --------------------------------------------------------------------------------------------
# Synthetic stand-in
# --------------------------------------------------------------------------------------------


def _render_digit(digit: int, rng: np.random.Generator, fonts: dict) -> np.ndarray:
    """One 28x28 digit, normalised the way MNIST was: the glyph is drawn large, cropped to its
    ink, its long side scaled to 20 px (anti-aliased), then placed in a 28x28 field so that its
    centre of mass is at the centre. Jitter (font size, stroke, aspect, rotation, shift) is drawn
    from `rng` in a fixed order so a seed always gives the same image."""
    from PIL import Image, ImageDraw, ImageFont

    size = int(rng.integers(44, 73))
    stroke = round(size * float(rng.uniform(0.0, 0.05)))  # relative, so no size blots
    aspect = float(rng.uniform(0.7, 1.15))  # overall scale is normalised away; aspect survives
    angle = float(rng.uniform(-15.0, 15.0))
    shift = rng.integers(-2, 3, size=2)

    if size not in fonts:
        fonts[size] = ImageFont.load_default(size=size)
    canvas = Image.new("L", (160, 160), 0)
    ImageDraw.Draw(canvas).text((80, 80), str(digit), fill=255, font=fonts[size], anchor="mm",
                                stroke_width=stroke, stroke_fill=255)
    glyph = canvas.crop(canvas.getbbox())
    glyph = glyph.resize((max(1, round(glyph.width * aspect)), glyph.height), Image.BILINEAR)
    glyph = glyph.rotate(angle, resample=Image.BILINEAR, expand=True)
    glyph = glyph.crop(glyph.getbbox())
    scale = 20.0 / max(glyph.size)
    glyph = glyph.resize((max(1, round(glyph.width * scale)), max(1, round(glyph.height * scale))),
                         Image.LANCZOS)

    ink = np.asarray(glyph, dtype=np.float64)
    rows, cols = np.indices(ink.shape)
    total = ink.sum()
    centre = np.array([(rows * ink).sum(), (cols * ink).sum()]) / total
    h, w = ink.shape
    top = int(np.clip(round(13.5 - centre[0]) + shift[0], 0, 28 - h))
    left = int(np.clip(round(13.5 - centre[1]) + shift[1], 0, 28 - w))
    field = np.zeros((28, 28), dtype=np.uint8)
    field[top:top + h, left:left + w] = np.asarray(glyph, dtype=np.uint8)
    return field


def _synthetic_split(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Balanced classes (counts differ by at most one), in a seeded random order.
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    fonts: dict = {}
    images = np.stack([_render_digit(int(d), rng, fonts) for d in labels]) if n else \
        np.zeros((0, 28, 28), dtype=np.uint8)
    return images, labels


def synthetic_mnist(n_train: int = 6000, n_test: int = 1000, seed: int = 0) -> dict:
    """A synthetic MNIST stand-in with the real layout (uint8 28x28 images, uint8 labels 0-9).

    Bit-identical for a given seed on a given Pillow/FreeType build. Train and test use
    independent streams derived from the seed, so the test set does not depend on n_train."""
    train = _synthetic_split(n_train, np.random.default_rng([seed, 0]))
    test = _synthetic_split(n_test, np.random.default_rng([seed, 1]))
    return {"train_images": train[0], "train_labels": train[1],
            "test_images": test[0], "test_labels": test[1]}
