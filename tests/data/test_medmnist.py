"""MedMNIST3D: metadata from medmnist.INFO, MD5 checked after download and before every use, the
labelled synthetic stand-in, the C.2 ResNet and the experiment as the shared trainer sees it."""
import json

import numpy as np
import pandas as pd
import pytest
import torch

from approxeq.data import medmnist3d
from approxeq.data.classification import stratified_sample
from approxeq.data.medmnist3d import (
    FLAGS,
    MedMNISTError,
    dataset_info,
    fetch_medmnist,
    load_medmnist,
    synthetic_medmnist,
)
from approxeq.experiments import medmnist as medmnist_experiment
from approxeq.experiments import setup_experiment
from approxeq.method.train import TrainConfig, train
from approxeq.nn.encoder_head import count_parameters
from approxeq.nn.networks import medmnist_resnet3d
from approxeq.runtime.io import HashMismatchError, file_hash

SIZES = {"train": 8, "val": 4, "test": 12}  # every Organ3D class in the test split


def _quiet(message):
    pass


def test_metadata_comes_from_medmnist_info():
    """protocols.md's split sizes, classes and MD5s, as the package states them."""
    expected = {"organmnist3d": ((971, 161, 610), 11, "a0c5a1ff56af4f155c46d46fbb45a2fe"),
                "nodulemnist3d": ((1158, 165, 310), 2, "8755a7e9e05a4d9ce80a24c3e7a256f3"),
                "synapsemnist3d": ((1230, 177, 352), 2, "1235b78a3cd6280881dd7850a78eadb6")}
    for flag, (sizes, classes, md5) in expected.items():
        info = dataset_info(flag)
        assert tuple(info["n_samples"][s] for s in ("train", "val", "test")) == sizes
        assert info["n_classes"] == classes and info["md5"] == md5
        assert info["url"].startswith("https://") and flag in info["url"]
    with pytest.raises(MedMNISTError, match="not a 3D"):
        dataset_info("pathmnist")
    import medmnist  # the table read without importing the package is the package's own
    assert medmnist3d.medmnist_info() == medmnist.INFO
    with pytest.raises(MedMNISTError, match="unknown MedMNIST flag"):
        dataset_info("nodule3d")


@pytest.fixture
def real_like_file(tmp_path):
    """A file with the real layout standing in for a download (its own MD5 passed as the pin)."""
    arrays = synthetic_medmnist("nodulemnist3d", SIZES, seed=1)
    path = tmp_path / "mirror" / "nodulemnist3d.npz"
    path.parent.mkdir()
    np.savez_compressed(path, **arrays)
    return path, file_hash(path), arrays


def test_download_is_md5_checked_and_recorded(tmp_path, real_like_file):
    path, md5, arrays = real_like_file
    dest = tmp_path / "medmnist"
    record = fetch_medmnist("nodulemnist3d", dest, log=_quiet, url=path.as_uri(), md5=md5)
    assert record["synthetic"] is False and record["md5"] == md5
    assert record["sizes"] == SIZES
    assert json.loads((dest / "nodulemnist3d.json").read_text()) == record
    assert file_hash(dest / "nodulemnist3d.npz") == md5
    assert not list(dest.glob(".*.tmp"))


def test_a_mismatching_download_is_refused_and_removed(tmp_path, real_like_file):
    path, md5, _ = real_like_file
    dest = tmp_path / "medmnist"
    with pytest.raises(HashMismatchError) as info:
        fetch_medmnist("nodulemnist3d", dest, log=_quiet, url=path.as_uri(), md5="0" * 32)
    message = str(info.value)
    assert "nodulemnist3d.npz" in message and "0" * 32 in message and md5 in message
    assert not (dest / "nodulemnist3d.npz").exists() and not (dest / "nodulemnist3d.json").exists()


def test_a_file_placed_by_hand_is_checked_against_medmnist_info(tmp_path, real_like_file):
    path, md5, _ = real_like_file
    dest = tmp_path / "medmnist"
    dest.mkdir()
    (dest / "nodulemnist3d.npz").write_bytes(path.read_bytes())
    with pytest.raises(HashMismatchError) as info:  # default pin: medmnist.INFO's MD5
        fetch_medmnist("nodulemnist3d", dest, log=_quiet, url="http://127.0.0.1:9/x.npz")
    assert dataset_info("nodulemnist3d")["md5"] in str(info.value) and md5 in str(info.value)
    assert (dest / "nodulemnist3d.npz").exists()  # the user's file is not deleted
    record = fetch_medmnist("nodulemnist3d", dest, log=_quiet, md5=md5)  # the right pin: accepted
    assert record["source"]["kind"] == "local"


def test_local_copy_is_copied_then_checked(tmp_path, real_like_file):
    path, md5, _ = real_like_file
    dest = tmp_path / "quick"
    record = fetch_medmnist("nodulemnist3d", dest, log=_quiet, md5=md5, local_copy=path.parent,
                            url="http://127.0.0.1:9/x.npz")
    assert record["source"] == {"kind": "local", "path": str(path)}
    with pytest.raises(HashMismatchError):
        fetch_medmnist("nodulemnist3d", tmp_path / "other", log=_quiet, md5="1" * 32,
                       local_copy=path.parent)
    assert not (tmp_path / "other" / "nodulemnist3d.npz").exists()


def test_the_md5_is_checked_again_before_every_use(tmp_path, real_like_file, monkeypatch):
    path, md5, arrays = real_like_file
    dest = tmp_path / "medmnist"
    fetch_medmnist("nodulemnist3d", dest, log=_quiet, url=path.as_uri(), md5=md5)
    info = dict(dataset_info("nodulemnist3d"), md5=md5)
    monkeypatch.setattr(medmnist3d, "dataset_info", lambda flag: info)
    data = load_medmnist(dest, "nodulemnist3d")
    assert data["synthetic"] is False
    assert np.array_equal(data["train"][0], arrays["train_images"])
    assert data["train"][1].tolist() == arrays["train_labels"][:, 0].tolist()
    with open(dest / "nodulemnist3d.npz", "r+b") as handle:  # corrupt one byte after the fetch
        handle.seek(100)
        byte = handle.read(1)
        handle.seek(100)
        handle.write(bytes([byte[0] ^ 1]))
    with pytest.raises(HashMismatchError, match="nodulemnist3d.npz"):
        load_medmnist(dest, "nodulemnist3d")


def test_unreachable_server_says_where_to_put_the_file(tmp_path):
    dest = tmp_path / "medmnist"
    with pytest.raises(MedMNISTError) as info:
        fetch_medmnist("organmnist3d", dest, log=_quiet, timeout=5, mirror="http://127.0.0.1:9/")
    message = str(info.value)
    assert str(dest / "organmnist3d.npz") in message
    assert dataset_info("organmnist3d")["md5"] in message
    assert "http://127.0.0.1:9/organmnist3d.npz" in message
    assert not (dest / "organmnist3d.json").exists()


def test_synthetic_stand_in_has_the_real_layout_and_says_so(tmp_path):
    dest = tmp_path / "quick"
    logged = []
    record = fetch_medmnist("organmnist3d", dest, log=logged.append, timeout=5,
                            mirror="http://127.0.0.1:9/", allow_synthetic={"sizes": SIZES, "seed": 0})
    assert record["synthetic"] is True and "failed" in record["reason"]
    assert any("SYNTHETIC" in line for line in logged)
    assert not (dest / "organmnist3d.npz").exists()  # never under the real file's name
    with np.load(dest / "organmnist3d_synthetic.npz") as npz:
        assert sorted(npz.files) == sorted(f"{s}_{k}" for s in ("train", "val", "test")
                                           for k in ("images", "labels"))
        assert npz["train_images"].shape == (8, 28, 28, 28) and npz["train_images"].dtype == np.uint8
        assert npz["train_labels"].shape == (8, 1)
    data = load_medmnist(dest, "organmnist3d")
    assert data["synthetic"] is True
    (dest / "organmnist3d.json").unlink()  # as Snakemake does before rerunning the rule
    again = fetch_medmnist("organmnist3d", dest, log=_quiet, mirror="http://127.0.0.1:9/",
                           allow_synthetic={"sizes": SIZES, "seed": 0})
    assert again == record  # deterministic
    a = synthetic_medmnist("organmnist3d", SIZES, seed=0)
    b = synthetic_medmnist("organmnist3d", SIZES, seed=0)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # a paper run in the same folder never takes the stand-in for the real file
    with pytest.raises(MedMNISTError, match="could not obtain organmnist3d"):
        fetch_medmnist("organmnist3d", dest, log=_quiet, timeout=5, mirror="http://127.0.0.1:9/")


def test_bad_layout_is_refused_naming_the_file(tmp_path):
    arrays = synthetic_medmnist("nodulemnist3d", SIZES)
    arrays["val_labels"] = arrays["val_labels"][:, 0]
    path = tmp_path / "nodulemnist3d.npz"
    np.savez(path, **arrays)
    with pytest.raises(MedMNISTError, match="nodulemnist3d.npz.*val_labels"):
        fetch_medmnist("nodulemnist3d", tmp_path, log=_quiet, md5=file_hash(path))


def test_resnet_of_appendix_c2():
    model = medmnist_resnet3d(n_classes=2)
    # counted layer by layer from the appendix code; the paper's Par column says 0.19 M
    assert count_parameters(model) == 141_998
    assert count_parameters(medmnist_resnet3d(n_classes=11)) == 141_998 + 9 * 49
    x = torch.rand(3, 1, 28, 28, 28)
    assert model.encoder(x).shape == (3, 48)
    model.eval()
    assert torch.equal(model(x), model.head(model.encoder(x)))
    with pytest.raises(ValueError, match="8c"):
        medmnist_resnet3d(c=6, latent_dim=66)


def run_settings(data_dir, flag, model="ours", **overrides):
    run = {"experiment": flag, "group": "O", "model": model, "seed": 0, "data": str(data_dir),
           "network": {"name": "medmnist_resnet3d", "c": 3, "upsample": 29, "latent_dim": 24},
           "weights": {"task": 0.5, "shift": 0.5, "equivariance": 1.0}, "eval_batch_size": 4,
           "rotated_test_seed": 0, "subset": None, "data_seed": 0}
    run.update(overrides)
    return run


@pytest.fixture(scope="module")
def synthetic_dir(tmp_path_factory):
    dest = tmp_path_factory.mktemp("medmnist")
    for flag in FLAGS:
        fetch_medmnist(flag, dest, log=_quiet, timeout=5, mirror="http://127.0.0.1:9/",
                       allow_synthetic={"sizes": SIZES, "seed": 0})
    return dest


def test_experiment_trains_and_evaluates_bit_identically(synthetic_dir, tmp_path):
    results = []
    for attempt in range(2):
        torch.manual_seed(0)
        setup = setup_experiment(run_settings(synthetic_dir, "organmnist3d"), torch.device("cpu"))
        assert setup.synthetic is True
        assert set(setup.test_sets) == {"test", "test_rotated"}
        cfg = TrainConfig(lr=1e-3, batch_size=4, epochs=1, patience=1, seed=0)
        result = train(setup.model, setup.data, cfg, tmp_path / f"run{attempt}", log=_quiet)
        setup.model.load_state_dict(result.best_state)
        metrics = setup.extra_metrics(setup.model)
        assert set(metrics) == {"test_auc", "test_evaluator_accuracy", "test_rotated_auc",
                                "test_rotated_evaluator_accuracy"}
        assert all(0 <= v <= 1 for v in metrics.values())
        accuracy = setup.test_metric(setup.model, *setup.test_sets["test"])
        assert metrics["test_evaluator_accuracy"] == pytest.approx(accuracy)  # multi-class: argmax
        results.append((result.history[0]["train_task"], metrics))
    assert results[0] == results[1]


def test_rotated_test_set_is_the_same_volumes_rotated(synthetic_dir):
    setup = setup_experiment(run_settings(synthetic_dir, "nodulemnist3d"), torch.device("cpu"))
    x, y = setup.test_sets["test"]
    xr, yr = setup.test_sets["test_rotated"]
    assert torch.equal(y, yr)
    g = torch.randint(24, (len(x),), generator=torch.Generator().manual_seed(0))
    assert torch.equal(xr, setup.input_action(x, g))
    # the method's latent action: two copies of the regular representation, applied per sample
    z = torch.randn(len(x), 24)
    assert setup.latent_action(z, g).shape == z.shape


def test_subset_draws_a_seeded_sample_holding_every_class(synthetic_dir):
    run = run_settings(synthetic_dir, "synapsemnist3d", subset={"train": 5, "val": 4, "test": 3})
    a = setup_experiment(run, torch.device("cpu"))
    b = setup_experiment(run, torch.device("cpu"))
    assert len(a.data.x_train) == 5 and len(a.test_sets["test"][0]) == 3
    assert torch.equal(a.data.x_train, b.data.x_train)
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    for seed in range(5):
        chosen = stratified_sample(labels, 3, seed)
        assert sorted(labels[chosen]) == [0, 1, 2] and list(chosen) == sorted(set(chosen))


def test_table5_has_a_number_in_every_cell_of_our_rows():
    runs = pd.DataFrame([
        {"experiment": flag, "model": model, "seed": seed, "test_accuracy": 0.5 + 0.01 * seed,
         "test_rotated_accuracy": 0.4, "test_auc": 0.6, "test_rotated_auc": 0.55,
         "latent_equivariance_relative": 0.3, "best_epoch": 3, "epochs_run": 5,
         "parameters": 141_998, "synthetic": False}
        for flag in FLAGS for model in ("cnn", "cnn_aug", "ours") for seed in (0, 1)])
    paper = pd.read_csv(__import__("pathlib").Path(__file__).resolve().parents[2]
                        / "workflow/paper/table5.csv", keep_default_na=False)
    flags = {"nodulemnist3d": "Nodule3D", "synapsemnist3d": "Synapse3D", "organmnist3d": "Organ3D"}
    labels = {"cnn": "CNN", "cnn_aug": "CNN", "ours": "Ours"}
    table = medmnist_experiment.paper_table(runs, paper, flags, labels)
    ours = table[table["Source"] == "this run"]
    assert list(ours["Aug"]) == ["No", "Yes", "Yes"]
    assert list(ours["Group"]) == ["N/A", "N/A", "O ≅ S4"]
    assert not ours[list(flags.values()) + ["Par (M)"]].isin(["–"]).any().any()
    assert ours["Nodule3D"].iloc[0] == "0.505 (0.007)"
    assert (table["Source"] == "paper (imported)").sum() == 6
    details = medmnist_experiment.details_table(runs, flags, labels, {"cnn": "No", "cnn_aug": "Yes", "ours": "Yes"})
    assert len(details) == 9 and details["seeds"].eq(2).all()
