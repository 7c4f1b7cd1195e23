"""TMNIST: hash-pinned fonts (via a fake `npm` offline), MNIST-style glyph rendering, augmented
pairs that share digit/angle/scale, the C2 font swap, hash-checked storage.

The real fonts need npm: the pinned-glyph-hash test runs with APPROXEQ_NETWORK_TESTS=1, or
offline with APPROXEQ_FONT_DIR pointing at a directory filled by fetch_fonts."""
import hashlib
import io
import json
import os
import stat
import sys
import tarfile

import numpy as np
import pytest
import torch

from approxeq.algebra.groups import cyclic
from approxeq.algebra.rotations import homomorphism_error
from approxeq.data import fonts, tmnist
from approxeq.data.fonts import fetch_fonts, fonts_are_synthetic, load_fonts
from approxeq.data.tmnist import (
    as_pair_channels,
    base_glyphs,
    build_tmnist,
    font_swap_action,
    glyphs_sha256,
    load_tmnist,
    render_glyph,
    save_tmnist,
    synthetic_glyphs,
    transform_images,
)
from approxeq.runtime.io import HashMismatchError, file_hash

NETWORK = os.environ.get("APPROXEQ_NETWORK_TESTS") == "1"
FONT_DIR = os.environ.get("APPROXEQ_FONT_DIR")


def _quiet(_msg):
    pass


# --------------------------------------------------------------------------------------------
# Fonts, with a fake npm that "packs" a tarball made here
# --------------------------------------------------------------------------------------------

FAKE_NPM = """#!{python}
import shutil, sys
args = sys.argv[1:]
if {fail!r}:
    sys.exit("npm ERR! network unreachable")
shutil.copy({tarball!r}, args[args.index("--pack-destination") + 1])
"""


def make_tarball(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.fixture
def fake_npm(tmp_path, monkeypatch):
    """Install an `npm` on PATH that copies a given tarball; returns a function to (re)arm it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    def arm(tarball, fail=False):
        script = bin_dir / "npm"
        script.write_text(FAKE_NPM.format(python=sys.executable, tarball=str(tarball), fail=fail))
        script.chmod(script.stat().st_mode | stat.S_IEXEC)

    return arm


@pytest.fixture
def font_package(tmp_path):
    font_bytes = b"not really a font, but hashed like one"
    tarball = make_tarball(tmp_path / "pkg.tgz", {"package/fonts/Fake.ttf": font_bytes,
                                                 "package/README.md": b"hello"})
    spec = {"name": "Fake-Regular", "package": "@fake/font@1.0.0", "path": "package/fonts/Fake.ttf",
            "sha256": file_hash(tarball, "sha256"),
            "file_sha256": hashlib.sha256(font_bytes).hexdigest()}
    return tarball, spec, font_bytes


def test_fetch_fonts_installs_pinned_file_and_record(tmp_path, fake_npm, font_package):
    tarball, spec, font_bytes = font_package
    fake_npm(tarball)
    dest = tmp_path / "fonts"
    record = fetch_fonts(dest, [spec], log=_quiet)
    assert (dest / "Fake-Regular.ttf").read_bytes() == font_bytes
    assert json.loads((dest / "fonts.json").read_text()) == record
    assert record["fonts"] == [dict(spec, file="Fake-Regular.ttf")]
    assert load_fonts(dest) == [dest / "Fake-Regular.ttf"]
    assert not list(dest.glob(".*.tmp"))

    # An installed font with the right hash is reused: npm is not called (it would fail now).
    fake_npm(tarball, fail=True)
    logged = []
    assert fetch_fonts(dest, [spec], log=logged.append) == record
    assert any("reusing" in line for line in logged)

    # A corrupted installed font is refused on load.
    (dest / "Fake-Regular.ttf").write_bytes(b"tampered")
    with pytest.raises(HashMismatchError, match="Fake-Regular.ttf"):
        load_fonts(dest)


def test_tarball_hash_mismatch_is_refused(tmp_path, fake_npm, font_package):
    tarball, spec, _ = font_package
    fake_npm(tarball)
    wrong = dict(spec, sha256="ab" * 32)
    dest = tmp_path / "fonts"
    with pytest.raises(HashMismatchError) as info:
        fetch_fonts(dest, [wrong], log=_quiet)
    message = str(info.value)
    assert "pkg.tgz" in message and "ab" * 32 in message and spec["sha256"] in message
    assert not (dest / "Fake-Regular.ttf").exists() and not (dest / "fonts.json").exists()


def test_font_file_hash_mismatch_is_refused(tmp_path, fake_npm, font_package):
    tarball, spec, _ = font_package
    fake_npm(tarball)
    wrong = dict(spec, file_sha256="cd" * 32)
    with pytest.raises(HashMismatchError) as info:
        fetch_fonts(tmp_path / "fonts", [wrong], log=_quiet)
    message = str(info.value)
    assert "Fake.ttf" in message and "cd" * 32 in message and spec["file_sha256"] in message
    assert not (tmp_path / "fonts" / "Fake-Regular.ttf").exists()


def test_font_specs_must_be_pinned_and_present(tmp_path, fake_npm, font_package):
    tarball, spec, _ = font_package
    with pytest.raises(ValueError, match="file_sha256"):
        fetch_fonts(tmp_path, [{k: v for k, v in spec.items() if k != "file_sha256"}], log=_quiet)
    fake_npm(tarball)
    with pytest.raises(FileNotFoundError, match="no file package/fonts/Other.ttf"):
        fetch_fonts(tmp_path / "f", [dict(spec, path="package/fonts/Other.ttf")], log=_quiet)
    fake_npm(tarball, fail=True)
    with pytest.raises(RuntimeError, match="npm pack @fake/font@1.0.0 failed"):
        fetch_fonts(tmp_path / "g", [spec], log=_quiet)


def test_default_fonts_are_the_paper_typefaces():
    assert [f["name"] for f in fonts.DEFAULT_FONTS] == list(fonts.FONT_NAMES)
    assert fonts.FONT_NAMES == ("IBMPlexSans-MediumItalic", "Bahianita-Regular")
    for font in fonts.DEFAULT_FONTS:
        assert len(font["sha256"]) == 64 and len(font["file_sha256"]) == 64


# --------------------------------------------------------------------------------------------
# Rendering (offline: Pillow's bundled font)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_font():
    from PIL import ImageFont
    return ImageFont.load_default(size=tmnist.RENDER_SIZE)


@pytest.fixture(scope="module")
def glyphs(default_font):
    """Two stand-in "typefaces": Pillow's bundled font, and the same glyphs mirrored."""
    font0 = base_glyphs([default_font])[0]
    return np.stack([font0, font0[:, :, ::-1]])


def test_render_glyph_is_mnist_style_and_deterministic(default_font):
    for digit in range(10):
        image = render_glyph(default_font, digit)
        assert image.shape == (28, 28) and image.dtype == np.uint8
        assert np.array_equal(image, render_glyph(default_font, digit))
        rows, cols = np.nonzero(image)
        long_side = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        assert 18 <= long_side <= 20
        ink = image.astype(float)
        yy, xx = np.indices(image.shape)
        centre = np.array([(yy * ink).sum(), (xx * ink).sum()]) / ink.sum()
        assert np.all(np.abs(centre - 13.5) <= 0.5 + 1e-9), (digit, centre)
    with pytest.raises(ValueError, match="0..9"):
        render_glyph(default_font, 10)


def test_base_glyphs_shape_and_hash(glyphs):
    assert glyphs.shape == (2, 10, 28, 28) and glyphs.dtype == np.uint8
    assert len({glyphs[0, d].tobytes() for d in range(10)}) == 10  # ten different digits
    assert glyphs_sha256(glyphs) == glyphs_sha256(glyphs.copy())


def test_centre_by_mass_places_the_centre_of_mass_at_the_field_centre():
    glyph = np.zeros((5, 3), np.uint8)
    glyph[4, 2] = 255  # all mass in one corner pixel
    out = tmnist.centre_by_mass(glyph)
    # mass at (4, 2) of the glyph; 13.5 rounds half up, so it lands on pixel (14, 14)
    assert np.argwhere(out).tolist() == [[14, 14]] and out.sum() == 255
    with pytest.raises(ValueError, match="does not fit"):
        tmnist.centre_by_mass(np.ones((29, 3), np.uint8))
    with pytest.raises(ValueError, match="no ink"):
        tmnist.centre_by_mass(np.zeros((3, 3), np.uint8))


@pytest.mark.skipif(not (NETWORK or FONT_DIR),
                    reason="needs the real fonts: APPROXEQ_NETWORK_TESTS=1 (npm) or APPROXEQ_FONT_DIR")
def test_real_fonts_render_to_the_pinned_glyphs(tmp_path):
    dest = FONT_DIR or tmp_path / "fonts"
    if not FONT_DIR:
        fetch_fonts(dest, timeout=300)
    glyphs = base_glyphs(load_fonts(dest))
    assert glyphs.shape == (2, 10, 28, 28)
    assert glyphs_sha256(glyphs) == tmnist.EXPECTED_GLYPHS_SHA256
    assert glyphs_sha256(base_glyphs(load_fonts(dest))) == tmnist.EXPECTED_GLYPHS_SHA256


# --------------------------------------------------------------------------------------------
# Augmented pairs
# --------------------------------------------------------------------------------------------

SIZES = {"train": 200, "val": 40, "test": 60}


def test_build_shapes_balance_and_ranges(glyphs):
    splits, meta = build_tmnist(glyphs, SIZES, seed=1, log=_quiet)
    assert set(splits) == set(SIZES)
    for split, n in SIZES.items():
        data = splits[split]
        assert data["pairs"].shape == (n, 2, 28, 28) and data["pairs"].dtype == np.uint8
        for key in ("digits", "fonts", "angles", "scales"):
            assert data[key].shape == (n,)
        combos = np.bincount(data["fonts"] * 10 + data["digits"], minlength=20)
        assert combos.max() - combos.min() <= 1  # balanced over (digit, font)
        assert data["angles"].min() >= -45 and data["angles"].max() <= 45
        assert data["scales"].min() >= 0.75 and data["scales"].max() <= 1.25
    assert splits["train"]["angles"].std() > 20  # really spread over the range
    assert meta["angle_range"] == [-45.0, 45.0] and meta["scale_range"] == [0.75, 1.25]
    assert meta["n_per_split"] == SIZES and meta["seed"] == 1


def test_both_fonts_share_digit_angle_and_scale(glyphs):
    splits, _ = build_tmnist(glyphs, {"test": 30}, seed=0, log=_quiet)
    data = splits["test"]
    for i in range(30):
        for f in range(2):
            one = glyphs[f, data["digits"][i]][None, None]
            expected = transform_images(one, data["angles"][i:i + 1], data["scales"][i:i + 1])
            assert np.abs(expected[0, 0].astype(int) - data["pairs"][i, f].astype(int)).max() <= 1
    # with the mirrored stand-in font, channel 1 is channel 0 mirrored AND rotated the other way:
    # only equal when the angle is ~0, a sanity check that the fonts really differ
    assert not np.array_equal(data["pairs"][:, 0], data["pairs"][:, 1])


def test_identity_transform_keeps_the_glyph(glyphs):
    one = np.ascontiguousarray(glyphs[:, 3][None])  # (1, 2, 28, 28)
    assert np.array_equal(transform_images(one, np.zeros(1), np.ones(1)), one)


def test_build_is_deterministic_and_splits_are_independent(glyphs):
    a, _ = build_tmnist(glyphs, SIZES, seed=5, log=_quiet)
    b, _ = build_tmnist(glyphs, SIZES, seed=5, log=_quiet)
    c, _ = build_tmnist(glyphs, dict(SIZES, train=100), seed=5, log=_quiet)
    d, _ = build_tmnist(glyphs, SIZES, seed=6, log=_quiet)
    for split in SIZES:
        for key in a[split]:
            assert np.array_equal(a[split][key], b[split][key])
    assert np.array_equal(a["test"]["pairs"], c["test"]["pairs"])  # train size does not matter
    assert not np.array_equal(a["test"]["angles"], d["test"]["angles"])


def test_glyph_hash_mismatch_warns_and_is_recorded(glyphs):
    logged = []
    _, meta = build_tmnist(glyphs, {"test": 4}, log=logged.append)
    assert meta["glyphs_match"] is False
    assert meta["glyphs_sha256"] == glyphs_sha256(glyphs)
    assert meta["glyphs_expected_sha256"] == tmnist.EXPECTED_GLYPHS_SHA256
    assert any("WARNING" in line and glyphs_sha256(glyphs) in line for line in logged)


def test_build_refuses_bad_inputs(glyphs):
    with pytest.raises(ValueError, match="glyphs must be uint8"):
        build_tmnist(glyphs[:1], {"test": 4}, log=_quiet)
    with pytest.raises(ValueError, match="must not contain"):
        build_tmnist(glyphs, {"my_split": 4}, log=_quiet)


# --------------------------------------------------------------------------------------------
# The C2 action
# --------------------------------------------------------------------------------------------


def test_pair_channels_put_the_own_font_first(glyphs):
    splits, _ = build_tmnist(glyphs, {"test": 40}, log=_quiet)
    data = splits["test"]
    x = as_pair_channels(data)
    assert x.shape == (40, 2, 28, 28) and x.dtype == np.uint8
    for i in range(40):
        own = data["fonts"][i]
        assert np.array_equal(x[i, 0], data["pairs"][i, own])
        assert np.array_equal(x[i, 1], data["pairs"][i, 1 - own])


def test_font_swap_is_an_exact_c2_action(glyphs):
    splits, _ = build_tmnist(glyphs, {"test": 16}, log=_quiet)
    x = torch.from_numpy(as_pair_channels(splits["test"])).float()
    g = torch.arange(16) % 2
    out = font_swap_action(x, g)
    assert torch.equal(out[g == 0], x[g == 0])
    assert torch.equal(out[g == 1, 0], x[g == 1, 1]) and torch.equal(out[g == 1, 1], x[g == 1, 0])
    assert torch.equal(font_swap_action(out, g), x)  # swap twice = identity
    result = homomorphism_error(font_swap_action, cyclic(2), x)
    assert result["max"] == 0.0 and result["identity"] == 0.0
    # the swapped sample is the same digit, angle and scale in the other font
    data = splits["test"]
    flipped = dict(data, fonts=1 - data["fonts"])
    assert torch.equal(font_swap_action(x, torch.ones(16, dtype=torch.long)),
                       torch.from_numpy(as_pair_channels(flipped)).float())
    with pytest.raises(ValueError, match="font pairs"):
        font_swap_action(torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long))


# --------------------------------------------------------------------------------------------
# Storage
# --------------------------------------------------------------------------------------------


def test_save_load_round_trip_and_refuses_corruption(tmp_path, glyphs):
    splits, meta = build_tmnist(glyphs, {"train": 20, "test": 10}, log=_quiet)
    path = tmp_path / "tmnist.npz"
    saved = save_tmnist(path, splits, meta)
    assert saved["sizes"] == {"train": 20, "test": 10}
    assert saved["sha256"] == file_hash(path, "sha256")
    back, back_meta = load_tmnist(path)
    assert back_meta == json.loads(json.dumps(saved))
    for split in splits:
        for key in splits[split]:
            assert np.array_equal(back[split][key], splits[split][key])
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(HashMismatchError, match="tmnist.npz"):
        load_tmnist(path)


def test_offline_fallback_is_synthetic_only_when_allowed(tmp_path, fake_npm, font_package):
    tarball, spec, _ = font_package
    fake_npm(tarball, fail=True)  # npm unreachable
    with pytest.raises(RuntimeError):
        fetch_fonts(tmp_path / "strict", [spec], log=_quiet)
    record = fetch_fonts(tmp_path / "quick", [spec], log=_quiet, allow_synthetic=True)
    assert record["synthetic"] and "@fake/font@1.0.0" in record["reason"]
    assert fonts_are_synthetic(tmp_path / "quick")
    # a hash mismatch is never papered over by the fallback
    fake_npm(tarball)
    with pytest.raises(HashMismatchError):
        fetch_fonts(tmp_path / "mismatch", [dict(spec, sha256="ab" * 32)], log=_quiet,
                    allow_synthetic=True)


def test_synthetic_faces_differ_but_keep_the_digit():
    glyphs = synthetic_glyphs()
    assert glyphs.shape == (2, 10, 28, 28) and glyphs.dtype == np.uint8
    assert np.array_equal(glyphs, synthetic_glyphs())  # deterministic
    for digit in range(10):
        upright, oblique = glyphs[0, digit].astype(float), glyphs[1, digit].astype(float)
        assert upright.sum() > 0 and oblique.sum() > upright.sum()  # the second face is bolder
        assert not np.array_equal(upright, oblique)
