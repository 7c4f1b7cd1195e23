"""Issue 11: where the DDMNIST latent is taken, the scale-invariant penalty, the scale-aware
diagnostics and the latent study's bookkeeping."""
import math

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
import yaml
from equivariant_model import setup as equivariant_setup
from hypothesis import given, settings
from hypothesis import strategies as st
from snakemake.utils import update_config, validate
from torch import nn

from approxeq.algebra.actions import image_action, trivial_action
from approxeq.algebra.groups import group_from_name
from approxeq.algebra.representations import apply_matrices, latent_representation
from approxeq.config import ConfigError, check_config
from approxeq.data.ddmnist import build_ddmnist, save_ddmnist
from approxeq.experiments import setup_experiment
from approxeq.experiments.ddmnist import (
    model_settings,
    study_cells,
    study_placements,
    study_variants,
)
from approxeq.method.evaluate import latent_equivariance_error
from approxeq.method.loss import LossWeights, equivariance_penalty, method_loss
from approxeq.method.train import TrainConfig, seed_everything, train
from approxeq.nn.encoder_head import EncoderHead
from approxeq.nn.networks import DDMNIST_PLACEMENTS, ddmnist_cnn, ddmnist_latent_encoder
from approxeq.report.latent_study import shown_table, study_table

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ placements


def test_placements_share_parameters_initialisation_and_function():
    models = {}
    for placement in DDMNIST_PLACEMENTS:
        torch.manual_seed(0)
        models[placement] = ddmnist_cnn(latent=placement)
    reference = [p.detach() for p in models["conv"].parameters()]
    x = torch.rand(6, 1, 56, 56, generator=torch.Generator().manual_seed(1))
    outputs = {}
    for placement, model in models.items():
        assert all(torch.equal(a, b) for a, b in zip(reference, model.parameters()))
        assert len(list(model.parameters())) == len(reference)
        outputs[placement] = (model.train()(x), model.eval()(x))
    for placement in ("bn", "bn_elu"):
        assert all(torch.equal(a, b) for a, b in zip(outputs["conv"], outputs[placement]))
    # the encoders really end at three different points, and the head of bn_elu is the last Linear
    model = models["conv"].eval()
    conv = model.encoder(x)
    bn = model.head[0](conv)
    torch.testing.assert_close(models["bn"].eval().encoder(x), bn)
    torch.testing.assert_close(models["bn_elu"].eval().encoder(x), F.elu(bn))
    assert isinstance(models["bn_elu"].head[0], nn.Linear) and len(models["bn_elu"].head) == 1
    assert not torch.allclose(conv, bn)


def test_latent_view_shares_modules_and_mode():
    torch.manual_seed(0)
    model = ddmnist_cnn(latent="conv").eval()
    x = torch.rand(4, 1, 56, 56)
    for placement in DDMNIST_PLACEMENTS:
        view = ddmnist_latent_encoder(model, placement)
        assert not view.training  # a view built in training mode would flip the model's BatchNorms
        assert {id(p) for p in view.parameters()} == {id(p) for p in model.parameters()}
        torch.testing.assert_close(view(x), model(x))
    torch.testing.assert_close(ddmnist_latent_encoder(model, "bn_elu").encoder(x),
                               F.elu(model.head[0](model.encoder(x))))
    with pytest.raises(ValueError, match="placement 'logits'"):
        ddmnist_latent_encoder(model, "logits")
    with pytest.raises(ValueError, match="placement 'relu'"):
        ddmnist_cnn(latent="relu")


# ------------------------------------------------------------------ penalty forms


finite = st.floats(-10, 10, allow_nan=False, width=32)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), c=st.floats(1e-3, 1e3), batch=st.integers(2, 9),
       offset=finite)
def test_rescaling_the_latent_leaves_the_normalised_penalty_unchanged(seed, c, batch, offset):
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, 12, generator=generator, dtype=torch.float64) + offset
    transformed = torch.randn(batch, 12, generator=generator, dtype=torch.float64) + offset
    expected = z.roll(1, dims=1)  # some permutation of the latent, as ρ(g) would give
    plain = equivariance_penalty(transformed, expected, z, "mse")
    normalised = equivariance_penalty(transformed, expected, z, "normalised")
    assert equivariance_penalty(c * transformed, c * expected, c * z, "mse").item() == \
        pytest.approx(c * c * plain.item(), rel=1e-9)
    assert equivariance_penalty(c * transformed, c * expected, c * z, "normalised").item() == \
        pytest.approx(normalised.item(), rel=1e-9)


class Scaled(nn.Module):
    """The wrapped encoder's output times a learnable scale c: shrinking the latent is one step."""

    def __init__(self, encoder, c=1.0):
        super().__init__()
        self.encoder = encoder
        self.c = nn.Parameter(torch.tensor(float(c)))

    def forward(self, x):
        return self.c * self.encoder(x)


def generic_task(c=1.0):
    torch.manual_seed(0)
    group = group_from_name("D4")
    action = image_action(group, 6)
    rep = latent_representation(group, 10, copies=1)
    encoder = Scaled(nn.Sequential(nn.Flatten(), nn.Linear(36, 10)), c)
    model = EncoderHead(encoder, nn.Linear(10, 3), 10)
    x = torch.randn(32, 1, 6, 6, generator=torch.Generator().manual_seed(2))
    y = torch.randint(3, (32,), generator=torch.Generator().manual_seed(3))
    g = torch.randint(8, (32,), generator=torch.Generator().manual_seed(4))
    return model, action, (lambda z, h: apply_matrices(rep, h, z)), x, y, g


def latent_term(penalty, c):
    model, action, latent_action, x, y, g = generic_task(c)
    _, terms = method_loss(model, x, y, g, LossWeights(1, 0, 1), F.cross_entropy, action,
                           latent_action, trivial_action, penalty=penalty)
    return terms["equivariance"].item()


@pytest.mark.parametrize("c", [0.01, 0.3, 5.0])
def test_a_rescaled_encoder_cannot_lower_the_normalised_penalty(c):
    assert latent_term("mse", c) == pytest.approx(c * c * latent_term("mse", 1.0), rel=1e-5)
    assert latent_term("normalised", c) == pytest.approx(latent_term("normalised", 1.0), rel=1e-5)
    assert latent_term("normalised", 1.0) > 0.1  # a generic encoder is far from equivariant


def test_the_normalised_penalty_has_no_gradient_towards_shrinking():
    """d/dc of the latent term at c = 1: 2·MSE for the plain form (shrinking pays), 0 for the
    normalised one (its denominator is not detached)."""
    grads = {}
    for penalty in ("mse", "normalised"):
        model, action, latent_action, x, y, g = generic_task()
        total, terms = method_loss(model, x, y, g, LossWeights(0, 0, 1), F.cross_entropy, action,
                               latent_action, trivial_action, penalty=penalty)
        total.backward()
        grads[penalty] = (model.encoder.c.grad.item(), terms["equivariance"].item())
    assert grads["mse"][0] == pytest.approx(2 * grads["mse"][1], rel=1e-5)
    assert abs(grads["normalised"][0]) < 1e-5 * grads["normalised"][1]


@pytest.mark.parametrize("group_name", ["C4", "D1", "D4"])
def test_normalised_penalty_is_zero_for_an_equivariant_encoder(group_name):
    model, action, latent_action, x, y, g = equivariant_setup(group_name)
    _, terms = method_loss(model, x, y, g, LossWeights(1, 0, 1), F.cross_entropy, action,
                           latent_action, trivial_action, penalty="normalised")
    assert terms["equivariance"] < 1e-10


def test_unknown_penalty_and_tiny_batch_are_refused():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="penalty 'l1'"):
        equivariance_penalty(z, z, z, "l1")
    with pytest.raises(ValueError, match="at least 2"):
        equivariance_penalty(z[:1], z[:1], z[:1], "normalised")


# ------------------------------------------------------------------ diagnostics


class Noise(nn.Module):
    """An 'encoder' whose every call is independent of the last: nothing equivariant about it."""

    def __init__(self):
        super().__init__()
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, x):
        return torch.randn(len(x), 64, generator=self.generator, dtype=torch.float64)


def test_diagnostics_separate_scale_from_equivariance():
    """Rescaling the encoder scales the MSE by c² and the norm by c; the relative error stays. An
    unrelated latent (ρ(g) a random permutation per g) sits near √2."""
    model, action, latent_action, x, _, _ = generic_task(1.0)
    base = latent_equivariance_error(model, x, 8, action, latent_action, seed=0)
    with torch.no_grad():
        model.encoder.c.fill_(0.1)
    small = latent_equivariance_error(model, x, 8, action, latent_action, seed=0)
    assert small["latent_equivariance_mse"] == pytest.approx(0.01 * base["latent_equivariance_mse"], rel=1e-4)
    assert small["latent_norm_mean"] == pytest.approx(0.1 * base["latent_norm_mean"], rel=1e-5)
    assert small["latent_equivariance_relative"] == pytest.approx(base["latent_equivariance_relative"], rel=1e-5)
    expected_norm = model.encoder(x).norm(dim=1).mean().item()
    assert small["latent_norm_mean"] == pytest.approx(expected_norm, rel=1e-5)
    # independent Gaussian latents: relative error √2 up to sampling noise
    noise = EncoderHead(Noise(), nn.Identity(), 64)
    unrelated = latent_equivariance_error(noise, torch.zeros(4000, 1), 8, lambda t, g: t,
                                          lambda z, g: z)
    assert unrelated["latent_equivariance_relative"] == pytest.approx(math.sqrt(2), abs=0.01)


@pytest.fixture(scope="module")
def ddmnist_file(tmp_path_factory):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:28, :28]

    def blobs(n):
        cy, cx = rng.uniform(9, 19, (2, n, 1, 1))
        return (255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2 / 4) / 18)).astype(np.uint8), np.arange(n) % 10

    (train_x, train_y), (test_x, test_y) = blobs(200), blobs(200)
    mnist = {"train_images": train_x, "train_labels": train_y, "test_images": test_x,
             "test_labels": test_y, "synthetic": True}
    splits = build_ddmnist(mnist, "D4", True, seed=0, per_class={"train": 1, "val": 1, "test": 1})
    path = tmp_path_factory.mktemp("ddmnist") / "D4.npz"
    save_ddmnist(path, splits, {"group": "D4", "canvas": {"size": 56, "top": 14}, "synthetic": True})
    return path


def ddmnist_run(path, placement="conv", penalty="mse"):
    return {"experiment": "ddmnist", "group": "D4", "model": "ours", "seed": 0, "data": str(path),
            "network": {"name": "ddmnist_cnn", "c": 2, "latent_dim": 66, "n_classes": 100},
            "weights": {"task": 1.0, "shift": 0.0, "equivariance": 1.0},
            "latent": {"placement": placement, "penalty": penalty}}


def test_ddmnist_diagnostics_every_epoch_leave_training_unchanged(ddmnist_file, tmp_path):
    """history.jsonl gets the latent norm, MSE and relative error per epoch; computing them draws
    no random numbers and updates no BatchNorm statistics, so the weights are bit-identical."""
    cfg = TrainConfig(lr=1e-3, batch_size=25, epochs=2, patience=5, seed=0)
    states, histories = [], []
    for with_metrics in (True, False):
        seed_everything(0)
        setup = setup_experiment(ddmnist_run(ddmnist_file, "bn", "normalised"), torch.device("cpu"))
        if not with_metrics:
            setup.data.epoch_metrics = None
        result = train(setup.model, setup.data, cfg, tmp_path / str(with_metrics), log=lambda m: None)
        states.append(setup.model.state_dict())
        histories.append(result.history)
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    for record in histories[0]:
        assert record["val_latent_norm_mean"] > 0
        assert 0 < record["val_latent_equivariance_relative"] < 3
        assert record["val_latent_equivariance_mse"] > 0
    assert "val_latent_norm_mean" not in histories[1][0]
    assert setup.model.encoder[-1].__class__ is nn.BatchNorm1d  # placement "bn" ends at the BatchNorm


def test_ddmnist_test_metrics_at_every_placement(ddmnist_file):
    setup = setup_experiment(ddmnist_run(ddmnist_file, "bn_elu"), torch.device("cpu"))
    model = setup.model.eval()
    metrics = setup.extra_metrics(model)
    assert not model.training  # the per-placement views must not flip the model to training mode
    assert metrics["placement"] == "bn_elu" and metrics["penalty"] == "mse"
    own = latent_equivariance_error(model, setup.test_sets["test"][0], setup.data.group_order,
                                    setup.input_action, setup.latent_action, setup.data.prepare)
    for key, value in own.items():  # the run's own placement is one of the three
        assert metrics[f"{key}_at_bn_elu"] == pytest.approx(value, rel=1e-6)
    assert metrics["latent_norm_mean_at_conv"] != pytest.approx(metrics["latent_norm_mean_at_bn"])


def test_ddmnist_run_without_latent_settings_is_refused(ddmnist_file):
    run = ddmnist_run(ddmnist_file)
    del run["latent"]
    with pytest.raises(KeyError, match="latent"):
        setup_experiment(run, torch.device("cpu"))


# ------------------------------------------------------------------ study bookkeeping


def paper_config(*overlays):
    config = {}
    for name in ("config.yaml", *overlays):
        update_config(config, yaml.safe_load((ROOT / name).read_text()))
    validate(config, str(ROOT / "workflow/schemas/config.schema.yaml"))  # fills the defaults
    return config


@pytest.mark.parametrize("overlay", ["config.quick.yaml", "config.latent_study_small.yaml",
                                     "config.latent_study_cpu.yaml", "config.authors_training.yaml"])
def test_shipped_overlays_are_valid(overlay):
    check_config(paper_config(overlay))


def test_study_variants_exclude_the_models_own_cell():
    ddm = paper_config()["ddmnist"]
    own = model_settings(ddm, "ours")["latent"]
    variants = study_variants(ddm)
    cells = {(p, q) for p in ("conv", "bn", "bn_elu") for q in ("mse", "normalised")}
    assert set(variants) == {f"ours_{p}_{q}" for p, q in cells - {(own["placement"], own["penalty"])}}
    for name, variant in variants.items():
        settings_ = model_settings(ddm, name)
        assert settings_["latent"] == {"placement": variant["placement"], "penalty": variant["penalty"]}
        assert settings_["weights"] == ddm["models"]["ours"]["weights"]
        assert settings_["lr"] == ddm["models"]["ours"]["lr"]
    study = study_cells(ddm)
    per_group_seed = len(ddm["latent_study"]["groups"]) * len(ddm["latent_study"]["seeds"])
    assert sum(c["role"] == "baseline" for c in study) == per_group_seed
    assert len(study) == per_group_seed * (1 + len(cells))
    assert {c["run"] for c in study if c["role"] == "model"} == set(variants) | {"ours"}
    with pytest.raises(KeyError, match="ours_logits_mse"):
        model_settings(ddm, "ours_logits_mse")


def test_listed_cells_replace_the_grid():
    """config.latent_study_cpu.yaml: the CNN, the default (ours' own run) and the paper's literal
    latent (one variant), the baseline measured only at the placements the cells use."""
    ddm = paper_config("config.latent_study_cpu.yaml")["ddmnist"]
    assert study_variants(ddm) == {"ours_conv_mse": {"model": "ours", "placement": "conv", "penalty": "mse"}}
    assert [c["run"] for c in study_cells(ddm)] == ["cnn", "ours_conv_mse", "ours"]
    assert study_placements(ddm["latent_study"]) == ["conv", "bn_elu"]
    full = paper_config()["ddmnist"]
    assert set(study_variants(ddm)) < set(study_variants(full))


def test_a_models_own_latent_overrides_the_default():
    ddm = paper_config()["ddmnist"]
    ddm["latent"] = {"placement": "bn_elu", "penalty": "normalised"}
    ddm["models"]["ours"]["latent"] = {"placement": "conv", "penalty": "mse"}
    assert model_settings(ddm, "cnn")["latent"] == {"placement": "bn_elu", "penalty": "normalised"}
    assert model_settings(ddm, "ours")["latent"] == {"placement": "conv", "penalty": "mse"}
    assert "ours_conv_mse" not in study_variants(ddm) and "ours_bn_elu_normalised" in study_variants(ddm)


@pytest.mark.parametrize("change, message", [
    (lambda s: s.update(baseline="cnn_aug"), "latent_study.baseline"),
    (lambda s: s.update(model="nope"), "latent_study.model"),
    (lambda s: s.update(groups=["C2"]), "latent_study.groups"),
])
def test_bad_study_settings_name_the_key(change, message):
    config = paper_config()
    change(config["ddmnist"]["latent_study"])
    with pytest.raises(ConfigError, match=message):
        check_config(config)


def test_study_model_without_lambda_is_refused():
    config = paper_config()
    config["ddmnist"]["latent_study"]["model"] = "cnn"
    with pytest.raises(ConfigError, match="weights.equivariance.D4 = 0"):
        check_config(config)


def test_study_table_reads_each_variant_at_its_own_placement():
    study = {"model": "ours", "baseline": "cnn", "placements": ["conv", "bn", "bn_elu"],
             "penalties": ["mse", "normalised"]}
    rows = []
    for model, placement, penalty, acc in (("cnn", "conv", "mse", 0.7), ("ours", "conv", "mse", 0.6),
                                           ("ours_bn_elu_normalised", "bn_elu", "normalised", 0.8)):
        for seed in (0, 1):
            row = {"group": "D4", "model": model, "seed": seed, "placement": placement, "penalty": penalty,
                   "test_accuracy": acc + 0.01 * seed, "test_clean_accuracy": acc - 0.1,
                   "best_epoch": 5, "epochs_run": 9, "synthetic": False}
            for i, where in enumerate(study["placements"]):
                row[f"latent_equivariance_relative_at_{where}"] = 1.0 + i + (0.5 if model == "ours" else 0)
                row[f"latent_norm_mean_at_{where}"] = 2.0 + i
                row[f"latent_equivariance_mse_at_{where}"] = 0.1 * (i + 1)
            rows.append(row)
    paper = pd.read_csv(ROOT / "workflow/paper/table4.csv")
    table = study_table(pd.DataFrame(rows), study, paper, {"cnn": "CNN", "ours": "Ours"})
    assert len(table) == 3 + 2  # the CNN at each placement, then each variant
    baseline = table[table["penalty"] == "–"]
    assert baseline["rel. error"].tolist() == [1.0, 2.0, 3.0]
    assert (baseline["paper acc"] == 0.800).all()
    ours = table[table["run"] == "ours"].iloc[0]
    assert ours["rel. error"] == 1.5 and ours["paper acc"] == 0.868
    assert ours["acc (transformed)"] == pytest.approx(0.605)
    assert ours["acc (transformed) std"] == pytest.approx(np.std([0.6, 0.61], ddof=1))
    variant = table[table["run"] == "ours_bn_elu_normalised"].iloc[0]
    assert variant["rel. error"] == 3.0 and variant["latent norm"] == 4.0
    # every cell of the model carries the model's name; what the cell is, is said in its own column
    assert set(table.loc[table["penalty"] != "–", "model"]) == {"Ours"}
    assert ours["setting"] == "default = paper's literal" and variant["setting"] == ""
    shown = shown_table(table)
    assert shown.loc[shown["Penalty"] == "–", "Setting"].unique().tolist() == ["λ\u00a0=\u00a00"]
    assert shown["Setting"].tolist().count("–") == 1
    assert variant["rel. error at head input"] == 3.0
    assert table["placement"].tolist() == ["conv", "conv", "bn", "bn_elu", "bn_elu"]
    # listed cells: the baseline measured only where a listed cell takes its latent
    cells = {**study, "cells": [{"placement": "conv", "penalty": "mse"},
                                {"placement": "bn_elu", "penalty": "normalised"}]}
    listed = study_table(pd.DataFrame(rows), cells, paper, {"cnn": "CNN", "ours": "Ours"})
    assert listed["placement"].tolist() == ["conv", "conv", "bn_elu", "bn_elu"]
    assert listed.loc[listed["penalty"] == "–", "rel. error"].tolist() == [1.0, 3.0]


def test_study_curves_label_every_run_by_placement_and_penalty(tmp_path, monkeypatch):
    """The figure's legend says where each run's latent is and how it is penalised (the own cell
    marked default, the baseline with the placement it was measured at), one entry per run."""
    import json

    from approxeq.report import figures
    from approxeq.report.latent_study import curve_label, study_curves

    study = {"model": "ours", "baseline": "cnn", "seeds": [0]}
    runs = pd.DataFrame([
        {"group": "D4", "model": "cnn", "seed": 0, "placement": "bn_elu", "penalty": "normalised", "synthetic": False},
        {"group": "D4", "model": "ours", "seed": 0, "placement": "bn_elu", "penalty": "normalised", "synthetic": False},
        {"group": "D4", "model": "ours_conv_mse", "seed": 0, "placement": "conv", "penalty": "mse", "synthetic": False},
    ])
    labels = {"cnn": "CNN", "ours": "Ours", "ours_conv_mse": "Ours (conv, mse)"}
    expected = ["CNN (λ = 0; measured at bn_elu)", "Ours (bn_elu, normalised; default)", "Ours (conv, mse)"]
    assert [curve_label(r, study, labels) for _, r in runs.iterrows()] == expected

    histories = {}
    for run in runs.itertuples():
        path = tmp_path / f"{run.model}.jsonl"
        path.write_text("".join(json.dumps({"epoch": e, "val_metric": 0.1 * e, "val_latent_equivariance_relative": 1.4 / e,
                                            "val_latent_norm_mean": 1.0 + e}) + "\n" for e in (1, 2, 3)))
        histories[(run.group, run.model, run.seed)] = str(path)
    legends = []
    monkeypatch.setattr(figures, "save", lambda fig, path: legends.append(
        [t.get_text() for t in fig.legends[0].get_texts()]))
    study_curves(histories, runs, study, labels, str(tmp_path / "study.png"), quick=True)
    assert legends == [expected]
