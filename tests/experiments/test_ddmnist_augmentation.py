"""DDMNIST per-epoch augmentation: every epoch a fresh element per digit (and fresh artefact angles),
drawn from a generator of (seed, epoch); the method's second view exact or as the authors form it."""
import numpy as np
import pytest
import torch
from checkpoints import (
    assert_interrupted_run_resumes_bit_identically,  # tests/ is on sys.path
)

from approxeq.data.ddmnist import (
    Canvas,
    PairAugmentation,
    build_ddmnist,
    draw_artefact_angles,
    pair_action,
    product_group,
    save_ddmnist,
)
from approxeq.experiments import setup_experiment
from approxeq.method.train import TrainConfig, augment_generator
from approxeq.nn.baselines import escnn_available

CANVAS = Canvas()
# Relative L2 distance between the artefact transform and the exact action of the same element on
# smooth digits: two bilinear resamplings blur, they never move a digit elsewhere. Measured on the
# blobs below: 0.031 (C4 and D4, integer and real angles); a wrong element or a lost digit gives
# about 1.4 (unrelated images of equal norm).
ARTEFACT_TOLERANCE = 0.1


def blobs(n, seed):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    cy, cx = rng.uniform(9, 19, (2, n, 1, 1))
    return (255 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2 / 4) / 18)).astype(np.uint8), np.arange(n) % 10


def clean_canvases(n, seed=0):
    digits = torch.from_numpy(blobs(2 * n, seed)[0])
    canvas = torch.zeros(n, 1, 56, 56, dtype=torch.uint8)
    for side, (ys, xs) in enumerate(CANVAS.patches):
        canvas[:, 0, ys, xs] = digits[side::2]
    return canvas


@pytest.mark.parametrize("group", ["C4", "D1", "D4"])
def test_without_artefacts_the_augmentation_is_the_exact_pair_action_and_a_homomorphism(group):
    x = clean_canvases(64)
    product = product_group(group)
    augment = PairAugmentation(group, CANVAS, artefacts=False)
    a, b = (torch.randint(product.order, (64,), generator=torch.Generator().manual_seed(s)) for s in (1, 2))
    assert torch.equal(augment(x, a), pair_action(group, CANVAS)(x, a))
    table = torch.tensor(np.array(product.table))
    assert torch.equal(augment(augment(x, b), a), augment(x, table[a, b]))  # a·(b·x) = (ab)·x


@pytest.mark.parametrize("group", ["C4", "D4"])
@pytest.mark.parametrize("kind", ["integer", "real"])
def test_with_artefacts_the_augmentation_stays_within_tolerance_of_the_exact_action(group, kind):
    x = clean_canvases(64)
    elements = torch.randint(product_group(group).order, (64,), generator=torch.Generator().manual_seed(3))
    angles = draw_artefact_angles((64, 2), torch.Generator().manual_seed(4), kind)
    if kind == "integer":
        assert torch.equal(angles, angles.round()) and angles.abs().max() <= 180
    else:
        assert not torch.equal(angles, angles.round())
    blurred = PairAugmentation(group, CANVAS, artefacts=True)(x, elements, angles).float()
    exact = pair_action(group, CANVAS)(x, elements).float()
    relative = ((blurred - exact).norm() / exact.norm()).item()
    assert 0 < relative < ARTEFACT_TOLERANCE


@pytest.fixture(scope="module")
def ddmnist_files(tmp_path_factory):
    """Tiny DDMNIST files on blob digits: D4 with artefacts, D1 without."""
    train_x, train_y = blobs(200, 0)
    test_x, test_y = blobs(200, 1)
    mnist = {"train_images": train_x, "train_labels": train_y, "test_images": test_x,
             "test_labels": test_y, "synthetic": True}
    folder = tmp_path_factory.mktemp("ddmnist")
    paths = {}
    for group, artefacts in (("D4", True), ("D1", False)):
        splits = build_ddmnist(mnist, group, artefacts, seed=0, per_class={"train": 1, "val": 1, "test": 1})
        paths[group] = folder / f"{group}.npz"
        save_ddmnist(paths[group], splits, {"group": group, "artefacts": artefacts, "synthetic": True,
                                            "canvas": {"size": 56, "top": 14}})
    return paths


def run_settings(path, group, second_view="exact", per_epoch=True, equivariance=1.0):
    return {"experiment": "ddmnist", "group": group, "model": "ours", "seed": 0, "data": str(path),
            "network": {"name": "ddmnist_cnn", "c": 2, "latent_dim": 66, "n_classes": 100},
            "weights": {"task": 1.0, "shift": 0.0, "equivariance": equivariance},
            "latent": {"placement": "bn_elu", "penalty": "normalised"},
            "augmentation": {"per_epoch": per_epoch, "second_view": second_view, "angle": "integer"}}


def views(setup, seed, epoch):
    elements = torch.randint(setup.data.group_order, (len(setup.data.x_train),),
                             generator=torch.Generator().manual_seed(99))
    return setup.data.epoch_views(augment_generator(seed, epoch), elements), elements


@pytest.mark.parametrize("group", ["D4", "D1"])
def test_the_draw_is_fresh_every_epoch_and_the_same_for_the_same_seed_and_epoch(ddmnist_files, group):
    setup = setup_experiment(run_settings(ddmnist_files[group], group), torch.device("cpu"))
    (first, second, targets), _ = views(setup, 0, 1)
    again, next_epoch, other_seed = (views(setup, s, e)[0].x for s, e in ((0, 1), (0, 2), (1, 1)))
    assert second is None  # exact second view: the objective forms g·x itself
    assert targets is None  # labels: the data set's, invariant
    assert torch.equal(first, again)
    assert not torch.equal(first, next_epoch) and not torch.equal(first, other_seed)
    assert first.shape == setup.data.x_train.shape and first.dtype == torch.uint8
    outside = torch.ones(56, 56, dtype=torch.bool)
    outside[14:42, :] = False
    assert not first[:, :, outside].any()  # the padding stays empty


def test_without_artefacts_each_training_pair_is_its_elements_exact_action_on_the_clean_pair(ddmnist_files):
    setup = setup_experiment(run_settings(ddmnist_files["D1"], "D1"), torch.device("cpu"))
    first = views(setup, 0, 3)[0].x
    generator = augment_generator(0, 3)  # the same draw, replayed: the element of each pair
    drawn = torch.randint(setup.data.group_order, (len(first),), generator=generator)
    from approxeq.data.ddmnist import load_ddmnist
    clean = torch.from_numpy(load_ddmnist(ddmnist_files["D1"])[0]["train"]["clean"]).unsqueeze(1)
    assert torch.equal(first, pair_action("D1", CANVAS)(clean, drawn))


@pytest.mark.parametrize("group", ["D1", "D4"])
def test_the_authors_second_view_is_the_latent_terms_element_applied_to_the_first(ddmnist_files, group):
    setup = setup_experiment(run_settings(ddmnist_files[group], group, "authors"), torch.device("cpu"))
    (first, second, _), elements = views(setup, 0, 1)
    exact = pair_action(group, CANVAS)(first, elements)
    if group == "D1":  # no artefacts: exactly g·x1
        assert torch.equal(second, exact)
    else:  # artefacts of its own on top: the same element up to interpolation blur
        relative = ((second.float() - exact.float()).norm() / exact.float().norm()).item()
        assert 0 < relative < ARTEFACT_TOLERANCE


def test_the_authors_second_view_needs_the_per_epoch_draw(ddmnist_files):
    with pytest.raises(ValueError, match="second_view 'authors' needs per_epoch: true"):
        setup_experiment(run_settings(ddmnist_files["D4"], "D4", "authors", per_epoch=False), torch.device("cpu"))


@pytest.mark.parametrize("second_view", ["exact", "authors"])
def test_an_interrupted_run_resumes_bit_identically(ddmnist_files, tmp_path, second_view):
    assert_interrupted_run_resumes_bit_identically(
        run_settings(ddmnist_files["D4"], "D4", second_view),
        TrainConfig(lr=1e-3, batch_size=50, epochs=3, patience=5, seed=0), tmp_path)


def test_normalisation_maps_every_split_through_the_same_affine_map(ddmnist_files):
    """(x/255 − mean)/std as the authors normalise; mean 0, std 1 is x/255. It is uniform over
    pixels, so it commutes with the exact pair action (a permutation of pixels)."""
    plain = setup_experiment(run_settings(ddmnist_files["D1"], "D1"), torch.device("cpu"))
    settings = {**run_settings(ddmnist_files["D1"], "D1"), "normalisation": {"mean": 0.06535, "std": 0.555}}
    normalised = setup_experiment(settings, torch.device("cpu"))
    x = plain.data.x_val[:16]
    assert torch.equal(plain.data.prepare(x), x.float() / 255)
    assert torch.allclose(normalised.data.prepare(x), (x.float() / 255 - 0.06535) / 0.555)
    g = torch.arange(16) % plain.data.group_order
    action = pair_action("D1", CANVAS)
    assert torch.equal(normalised.data.prepare(action(x, g)), action(normalised.data.prepare(x), g))


@pytest.mark.skipif(not escnn_available(), reason="escnn not installed")
def test_a_steerable_baseline_is_built_from_the_group_the_run_read_once(ddmnist_files, monkeypatch):
    """The run's group name is read once (setup); the escnn baseline receives that Symmetry and
    takes its gspace and trivial subgroup from it, not from the name again."""
    from approxeq.algebra.symmetry import Symmetry
    from approxeq.nn import registry

    received = []
    build = registry.MODEL_BUILDERS["ddmnist_restriction"]

    def recording(group, **kwargs):
        received.append(group)
        return build(group, **kwargs)

    monkeypatch.setitem(registry.MODEL_BUILDERS, "ddmnist_restriction", recording)
    run = {**run_settings(ddmnist_files["D1"], "D1", equivariance=0.0), "model": "restriction",
           "network": {"name": "ddmnist_restriction", "c": 1, "latent_dim": 4, "n_classes": 100}}
    setup = setup_experiment(run, torch.device("cpu"))
    (group,) = received
    assert isinstance(group, Symmetry) and group.name == "D1" and group.order == 2
    by_name = build("D1", c=1, latent_dim=4, n_classes=100, latent="bn_elu")
    assert sum(p.numel() for p in setup.model.parameters()) == sum(p.numel() for p in by_name.parameters())
