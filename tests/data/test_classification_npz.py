"""A user's own classification npz: the layout is read from the arrays, every defect is refused
with the file and the key, and the record pins the file's content."""
import numpy as np
import pytest

from approxeq.data.classification import (
    ClassificationDataError,
    describe,
    load_classification,
    mnist_classification_arrays,
    save_classification_npz,
)
from approxeq.data.mnist import synthetic_mnist
from approxeq.runtime.io import HashMismatchError, write_json_atomic


def arrays(shape, classes=3, sizes=(12, 6, 6), dtype=np.uint8):
    rng = np.random.default_rng(0)
    out = {}
    for split, n in zip(("train", "val", "test"), sizes):
        out[f"{split}_images"] = rng.integers(0, 255, (n, *shape)).astype(dtype)
        out[f"{split}_labels"] = (np.arange(n) % classes)[:, None].astype(np.uint8)
    return out


@pytest.mark.parametrize("shape, layout", [
    ((8, 8), ("image", 8, 1)),
    ((8, 8, 3), ("image", 8, 3)),
    ((6, 6, 6), ("volume", 6, 1)),
    ((6, 6, 6, 2), ("volume", 6, 2)),
])
def test_the_layout_is_read_from_the_arrays_and_loads_channels_first(tmp_path, shape, layout):
    path = tmp_path / "mine.npz"
    save_classification_npz(path, arrays(shape))
    record = describe(path)
    assert (record["domain"], record["side"], record["channels"]) == layout
    assert record["n_classes"] == 3 and record["sizes"] == {"train": 12, "val": 6, "test": 6}
    assert not record["synthetic"]
    write_json_atomic(tmp_path / "mine.json", record)
    data = load_classification(tmp_path / "mine.json")
    images, labels = data["train"]
    spatial = (layout[1],) * (2 if layout[0] == "image" else 3)
    assert images.shape == (12, layout[2], *spatial) and labels.dtype == np.int64
    stored = np.load(path)["train_images"]  # channels last in the file, first in the tensor
    np.testing.assert_array_equal(np.moveaxis(images, 1, -1).reshape(stored.shape), stored)


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("val_labels"), "missing val_images or val_labels"),
    (lambda a: a.update(train_images=a["train_images"][:, :, :7]), "neither square images"),
    (lambda a: a.update(test_labels=np.zeros((6, 2), np.uint8)), "test_labels has shape"),
    (lambda a: a.update(test_labels=np.full((6, 1), 0.5)), "expected integers"),
    (lambda a: a.update(val_labels=-np.ones((6, 1), np.int64)), "negative classes"),
    (lambda a: a.update(val_images=np.repeat(a["val_images"][..., None], 3, -1)), "has layout"),
    (lambda a: a.update(train_images=a["train_images"].astype(np.int32)), "expected uint8 or floating"),
])
def test_a_defect_is_refused_naming_the_file_and_the_key(tmp_path, change, message):
    data = arrays((8, 8))
    change(data)
    path = tmp_path / "bad.npz"
    np.savez(path, **data)
    with pytest.raises(ClassificationDataError, match=message) as error:
        describe(path)
    assert str(path) in str(error.value)


def test_the_record_pins_the_content(tmp_path):
    path = tmp_path / "mine.npz"
    save_classification_npz(path, arrays((8, 8)))
    with pytest.raises(ClassificationDataError, match="differs from the configured"):
        describe(path, sha256="0" * 64)
    record = describe(path)
    assert describe(path, sha256=record["sha256"].upper())["sha256"] == record["sha256"]
    write_json_atomic(tmp_path / "mine.json", record)
    save_classification_npz(path, arrays((8, 8), classes=2))  # the file changed after its check
    with pytest.raises(HashMismatchError):
        load_classification(tmp_path / "mine.json")


def test_a_missing_file_says_which(tmp_path):
    with pytest.raises(ClassificationDataError, match="no such file"):
        describe(tmp_path / "absent.npz")


def test_mnist_export_is_the_worked_example_layout(tmp_path):
    mnist = {**synthetic_mnist(50, 20), "synthetic": True}
    exported = mnist_classification_arrays(mnist, val=10)
    path = tmp_path / "mnist.npz"
    save_classification_npz(path, exported)
    record = describe(path)
    assert record["synthetic"]  # a stand-in's export says so, and every table built on it
    assert record["sizes"] == {"train": 40, "val": 10, "test": 20} and record["domain"] == "image"
    np.testing.assert_array_equal(exported["val_images"], mnist["train_images"][40:])
    with pytest.raises(ValueError, match="must leave training digits"):
        mnist_classification_arrays(mnist, val=50)
