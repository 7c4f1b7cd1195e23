"""DDMNIST construction: sizes, balance, x2 == g·x1, artefacts, hash-checked storage."""
import numpy as np
import pytest
import torch

from approxeq.data.ddmnist import (
    Canvas,
    build_ddmnist,
    load_ddmnist,
    pair_action,
    product_group,
    save_ddmnist,
)
from approxeq.runtime.io import HashMismatchError

PER_CLASS = {"train": 4, "val": 2, "test": 3}


@pytest.fixture(scope="module")
def mnist():
    """Smooth blob digits so that bilinear artefacts stay small, 20 per class."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]
    def blobs(n):
        cy, cx = rng.uniform(9, 19, (2, n, 1, 1))
        images = 255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2 / 4) / 18)
        return images.astype(np.uint8), np.arange(n) % 10
    train_x, train_y = blobs(200)
    test_x, test_y = blobs(100)
    return {"train_images": train_x, "train_labels": train_y, "test_images": test_x,
            "test_labels": test_y, "synthetic": True}


def element_index(group_name, elements):
    n = product_group(group_name).order
    side = int(round(n ** 0.5))
    return torch.from_numpy(elements[:, 0] * side + elements[:, 1])


@pytest.mark.parametrize("group", ["C4", "D1", "D4"])
def test_split_sizes_class_balance_and_labels(mnist, group):
    splits = build_ddmnist(mnist, group, artefacts=False, seed=0, per_class=PER_CLASS)
    for split, per_class in PER_CLASS.items():
        data = splits[split]
        assert data["images"].shape == (100 * per_class, 56, 56)
        assert data["images"].dtype == np.uint8
        assert np.array_equal(np.bincount(data["labels"], minlength=100), np.full(100, per_class))
        source_labels = mnist["train_labels" if split == "train" else "test_labels"]
        assert np.array_equal(source_labels[data["sources"][:, 0]], data["labels"] // 10)
        assert np.array_equal(source_labels[data["sources"][:, 1]], data["labels"] % 10)
        outside = np.ones((56, 56), bool)
        outside[14:42, :] = False
        assert not data["images"][:, outside].any()  # padding stays zero


@pytest.mark.parametrize("group", ["C4", "D1", "D4"])
def test_images_are_the_group_action_on_clean_pairs(mnist, group):
    splits = build_ddmnist(mnist, group, artefacts=False, seed=1, per_class=PER_CLASS)
    for data in splits.values():
        clean = torch.from_numpy(data["clean"]).unsqueeze(1)
        transformed = pair_action(group)(clean, element_index(group, data["elements"]))
        assert torch.equal(transformed[:, 0], torch.from_numpy(data["images"]))


@pytest.mark.parametrize("group", ["C4", "D4"])
def test_artefacts_stay_close_to_the_exact_action(mnist, group):
    data = build_ddmnist(mnist, group, artefacts=True, seed=2, per_class=PER_CLASS)["train"]
    clean = torch.from_numpy(data["clean"]).unsqueeze(1).float()
    exact = pair_action(group)(clean, element_index(group, data["elements"]))[:, 0]
    images = torch.from_numpy(data["images"]).float()
    relative = (images - exact).norm() / exact.norm()
    assert 0 < relative < 0.15  # blurred (artefacts present) but the same transform


@pytest.mark.parametrize("group", ["C4", "D1", "D4"])
def test_training_pairs_satisfy_x2_equals_g_x1(mnist, group):
    """The pairs the trainer draws: x from the data set, g·x from the exact action (pitfall 3)."""
    data = build_ddmnist(mnist, group, artefacts=True, seed=3, per_class=PER_CLASS)["train"]
    x1 = torch.from_numpy(data["images"]).unsqueeze(1)
    g = torch.randint(product_group(group).order, (len(x1),), generator=torch.Generator().manual_seed(0))
    action = pair_action(group)
    x2 = action(x1, g)
    # undo g with its inverse: must give x1 back exactly
    inverses = torch.tensor(product_group(group).inverses)
    assert torch.equal(action(x2, inverses[g]), x1)
    for b in range(0, len(x1), 37):  # spot-check against the definition, one sample at a time
        assert torch.equal(x2[b:b + 1], action(x1[b:b + 1], g[b:b + 1]))


def test_build_is_seeded(mnist):
    a = build_ddmnist(mnist, "D4", True, seed=5, per_class=PER_CLASS)
    b = build_ddmnist(mnist, "D4", True, seed=5, per_class=PER_CLASS)
    c = build_ddmnist(mnist, "D4", True, seed=6, per_class=PER_CLASS)
    assert all(np.array_equal(a["train"][k], b["train"][k]) for k in a["train"])
    assert not np.array_equal(a["train"]["images"], c["train"]["images"])


def test_save_load_round_trip_and_hash_check(mnist, tmp_path):
    splits = build_ddmnist(mnist, "C4", True, seed=0, per_class=PER_CLASS)
    path = tmp_path / "C4.npz"
    meta = save_ddmnist(path, splits, {"group": "C4", "canvas": {"size": 56, "top": 14}})
    loaded, loaded_meta = load_ddmnist(path)
    assert loaded_meta["sha256"] == meta["sha256"]
    assert loaded_meta["sizes"] == {"train": 400, "val": 200, "test": 300}
    assert all(np.array_equal(loaded["test"][k], splits["test"][k]) for k in splits["test"])
    with open(path, "r+b") as handle:  # corrupt one byte
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(HashMismatchError, match=str(path)):
        load_ddmnist(path)


def test_custom_canvas(mnist):
    splits = build_ddmnist(mnist, "C4", False, seed=0, per_class={"train": 1, "val": 1, "test": 1},
                           canvas=Canvas(size=64, top=18))
    assert splits["train"]["images"].shape == (100, 64, 64)
    assert not splits["train"]["images"][:, :18].any()
