"""Character tables (Burnside–Dixon), decompositions of representations, eigenvalue snapping."""
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from approxeq.algebra.characters import (
    CharacterTable,
    character_table,
    conjugacy_classes,
)
from approxeq.algebra.decomposition import (
    decompose,
    decompose_character,
    element_matrices,
    homomorphism_error,
    snap_eigenvalues,
)
from approxeq.algebra.groups import (
    cyclic,
    dihedral,
    direct_product,
    group_from_name,
    octahedral,
    octahedral_matrices,
)
from approxeq.algebra.representations import (
    kron_representation,
    latent_representation,
    regular_representation,
)

NAMED = ["C1", "C2", "C4", "D1", "D3", "S3", "D4", "O", "C4xC4", "D1xD1", "D4xD4", "D3xC2"]
small_groups = st.one_of(st.integers(1, 9).map(cyclic), st.integers(1, 7).map(dihedral))


def assert_valid_table(table: CharacterTable, order: int) -> None:
    chars, sizes = table.characters, table.class_sizes
    r = len(table.classes)
    assert table.n_irreps == r == table.n_classes
    assert int(np.sum(table.dims ** 2)) == order
    assert int(sizes.sum()) == order
    assert np.allclose(chars[:, 0], table.dims)  # χ(e) = dim
    assert np.allclose(chars[0], 1.0)  # trivial first
    assert list(table.dims) == [1] + sorted(table.dims[1:])
    # first (row) orthogonality: (1/|G|) Σ_g χ_i(g) conj χ_j(g) = δ_ij
    assert np.allclose((chars * sizes) @ chars.conj().T / order, np.eye(r), atol=1e-10)
    # second (column) orthogonality: Σ_i χ_i(g_k) conj χ_i(g_l) = δ_kl |G| / |C_k|
    assert np.allclose(chars.T @ chars.conj(), np.diag(order / sizes), atol=1e-9)
    per_element = table.per_element()
    assert per_element.shape == (r, order)
    assert np.allclose(np.abs(per_element) ** 2 @ np.ones(order), order)


@pytest.mark.parametrize("name", NAMED)
def test_character_tables_are_valid(name):
    group = group_from_name(name)
    table = character_table(group)
    assert_valid_table(table, group.order)
    assert len(set(table.labels)) == table.n_irreps
    classes = conjugacy_classes(group)
    assert classes[0] == (group.identity,)
    assert sorted(g for c in classes for g in c) == list(range(group.order))
    assert all(table.class_of[g] == k for k, c in enumerate(classes) for g in c)


@settings(max_examples=25, deadline=None)
@given(small_groups)
def test_sum_of_squared_dims(group):
    assert_valid_table(character_table(group), group.order)


@settings(max_examples=10, deadline=None)
@given(st.integers(1, 4).map(cyclic) | st.integers(1, 3).map(dihedral),
       st.integers(1, 4).map(cyclic) | st.integers(1, 3).map(dihedral))
def test_product_tables_are_products(g, h):
    """Irreducible characters of G × H are the products χ ⊗ ψ."""
    product = direct_product(g, h)
    table = character_table(product)
    assert_valid_table(table, product.order)
    tg, th = character_table(g).per_element(), character_table(h).per_element()
    expected = np.array([np.kron(a, b) for a in tg for b in th])  # element (a, b) at a·|H| + b
    got = table.per_element()
    for row in expected:
        assert np.abs(got - row).max(axis=1).min() < 1e-9


def test_c2_and_c4():
    c2 = character_table(cyclic(2))
    assert np.allclose(c2.characters, [[1, 1], [1, -1]])
    assert c2.labels == ("χ_0", "χ_1")
    c4 = character_table(cyclic(4))
    i = 1j
    assert np.allclose(c4.characters, [[1, 1, 1, 1], [1, i, -1, -i], [1, -1, 1, -1], [1, -i, -1, i]])
    assert c4.labels == ("χ_0", "χ_1", "χ_2", "χ_3")
    assert list(c4.indicators) == [1, 0, 1, 0]
    assert list(c4.conjugates) == [0, 3, 2, 1]
    assert [(f.label, f.kind, f.dim, f.irreps) for f in c4.real_forms] == [
        ("χ_0", "real", 1, (0,)), ("χ_1⊕χ_3", "complex", 2, (1, 3)), ("χ_2", "real", 1, (2,))]


@pytest.mark.parametrize("name", ["D3", "S3"])
def test_s3(name):
    group = group_from_name(name)
    table = character_table(group)
    assert list(table.dims) == [1, 1, 2]
    assert table.labels == ("trivial", "sign", "standard")
    # classes of D3 (element f·3 + k = r^k s^f): {e}, {r, r²}, {s, rs, r²s}
    assert table.classes == ((0,), (1, 2), (3, 4, 5))
    assert np.allclose(table.characters, [[1, 1, 1], [1, 1, -1], [2, -1, 0]])


def test_d4_and_o():
    d4 = character_table(dihedral(4))
    assert list(d4.dims) == [1, 1, 1, 1, 2]
    assert list(d4.class_sizes) == [1, 2, 1, 2, 2]
    o = character_table(octahedral())
    assert list(o.dims) == [1, 1, 2, 3, 3]
    assert sorted(o.class_sizes) == [1, 3, 6, 6, 8]  # S4: e, double transpositions, transpositions, 4-cycles, 3-cycles
    assert o.labels[:2] == ("trivial", "sign")
    assert all(f.kind == "real" for f in o.real_forms)  # every S4 irreducible is real
    c4c4 = character_table(group_from_name("C4xC4"))
    assert list(c4c4.dims) == [1] * 16
    assert np.allclose(np.abs(c4c4.characters), 1.0)
    assert set(np.round(c4c4.characters.ravel(), 9)) == {1, 1j, -1, -1j}
    d4d4 = character_table(group_from_name("D4xD4"))
    assert sorted(d4d4.dims) == sorted(a * b for a in [1, 1, 1, 1, 2] for b in [1, 1, 1, 1, 2])


@pytest.mark.parametrize("name", ["C2", "C4", "D3", "D4", "O", "C4xC4"])
def test_regular_representation_decomposes_by_dimension(name):
    group = group_from_name(name)
    result = decompose(group, regular_representation(group))
    assert np.allclose(result.multiplicities, result.dims, atol=1e-9)
    assert np.array_equal(result.nearest_integers, result.dims)
    assert result.distance_to_integers < 1e-9 and result.max_imaginary < 1e-9
    assert result.homomorphism_error < 1e-12
    assert result.dimension == group.order
    # a real irreducible occurs dim χ times, a complex pair χ ⊕ conj χ dim χ times, twice a
    # quaternionic χ dim χ / 2 times
    table = character_table(group)
    expected_real = [table.dims[f.irreps[0]] / (2 if f.kind == "quaternionic" else 1)
                     for f in table.real_forms]
    assert np.allclose(result.real_multiplicities, expected_real, atol=1e-9)


@pytest.mark.parametrize("name, dim", [("C2", 42), ("D3", 30), ("C4", 64), ("D3", 33), ("O", 50)])
def test_latent_representation(name, dim):
    group = group_from_name(name)
    result = decompose(group, latent_representation(group, dim))
    m = dim // group.order
    expected = m * result.dims
    expected[0] += dim - m * group.order  # trivial extras
    assert np.array_equal(result.nearest_integers, expected)
    assert result.distance_to_integers < 1e-6  # float32 matrices


def random_change_of_basis(rep: np.ndarray, rng) -> np.ndarray:
    d = rep.shape[-1]
    p = rng.normal(size=(d, d)) + 3 * np.eye(d)
    return p @ rep @ np.linalg.inv(p)


def block_diagonal(blocks_per_element: list[list[np.ndarray]]) -> np.ndarray:
    out = []
    for blocks in blocks_per_element:
        d = sum(len(b) for b in blocks)
        m, i = np.zeros((d, d)), 0
        for b in blocks:
            m[i:i + len(b), i:i + len(b)] = b
            i += len(b)
        out.append(m)
    return np.stack(out)


def s3_irreps():
    group = dihedral(3)
    c, s = np.cos(2 * np.pi / 3), np.sin(2 * np.pi / 3)
    standard = element_matrices(group, [np.array([[c, -s], [s, c]]), np.diag([1.0, -1.0])])
    trivial = element_matrices(group, np.ones((2, 1, 1)))
    sign = element_matrices(group, np.array([[[1.0]], [[-1.0]]]))
    return group, {"trivial": trivial, "sign": sign, "standard": standard}


def test_element_matrices():
    group, irreps = s3_irreps()
    assert irreps["standard"].shape == (6, 2, 2)
    assert homomorphism_error(group, irreps["standard"]) < 1e-12
    assert np.allclose(irreps["standard"][group.identity], np.eye(2))
    # torch in, torch out, gradients flow
    w = torch.tensor(np.stack([np.array([[0.0, -1.0], [1.0, 0.0]])]), requires_grad=True)
    mats = element_matrices(cyclic(4), w)
    assert isinstance(mats, torch.Tensor) and mats.shape == (4, 2, 2)
    mats.sum().backward()
    assert w.grad is not None
    assert np.allclose(mats.detach().numpy(), element_matrices(cyclic(4), w.detach().numpy()))
    with pytest.raises(ValueError):
        element_matrices(group, np.ones((1, 2, 2)))


@pytest.mark.parametrize("counts", [(5, 5, 10), (0, 3, 1), (2, 0, 0), (1, 1, 1)])
def test_decompose_s3_direct_sum(counts):
    group, irreps = s3_irreps()
    rng = np.random.default_rng(sum(counts))
    order = [name for name, count in zip(("trivial", "sign", "standard"), counts) for _ in range(count)]
    rep = block_diagonal([[irreps[name][g] for name in order] for g in range(group.order)])
    rep = random_change_of_basis(rep, rng)
    result = decompose(group, rep)
    assert result.labels == ("trivial", "sign", "standard")
    assert np.allclose(result.multiplicities, counts, atol=1e-8)
    assert np.array_equal(result.nearest_integers, counts)
    assert result.homomorphism_error < 1e-8
    assert np.allclose(result.real_multiplicities, counts, atol=1e-8)


@pytest.mark.parametrize("ones, minus_ones, rotations", [(16, 16, 16), (1, 0, 3), (0, 2, 0)])
def test_decompose_c4_real_rotation_blocks(ones, minus_ones, rotations):
    """A real 2-dim quarter-turn block is the pair χ_1 ⊕ χ_3 of complex irreducibles."""
    group = cyclic(4)
    quarter = np.array([[0.0, -1.0], [1.0, 0.0]])
    generator = [np.eye(1)] * ones + [-np.eye(1)] * minus_ones + [quarter] * rotations
    rep = block_diagonal([[np.linalg.matrix_power(b, k) for b in generator] for k in range(4)])
    rep = random_change_of_basis(rep, np.random.default_rng(ones))
    result = decompose(group, torch.tensor(rep, dtype=torch.float64))
    assert np.allclose(result.multiplicities, [ones, rotations, minus_ones, rotations], atol=1e-8)
    assert result.real_labels == ("χ_0", "χ_1⊕χ_3", "χ_2")
    assert np.allclose(result.real_multiplicities, [ones, rotations, minus_ones], atol=1e-8)
    assert list(result.real_nearest_integers) == [ones, rotations, minus_ones]
    assert list(result.real_dims) == [1, 2, 1]
    summary = result.as_dict()
    assert summary["real_nearest_integers"] == {"χ_0": ones, "χ_1⊕χ_3": rotations, "χ_2": minus_ones}


def test_decompose_complex_one_dimensional_c4():
    """Complex 1-dim irreducibles, unpaired: the real-form multiplicity of the pair is fractional."""
    group = cyclic(4)
    rep = np.stack([np.diag([1, 1j ** k, 1j ** k]) for k in range(4)])
    result = decompose(group, rep)
    assert np.allclose(result.multiplicities_complex, [1, 2, 0, 0], atol=1e-12)
    assert np.allclose(result.real_multiplicities, [1, 1, 0])  # (m_1 + m_3)/2 = (2 + 0)/2


def test_decompose_octahedral_matrices_and_kron():
    o = octahedral()
    result = decompose(o, octahedral_matrices())
    assert result.homomorphism_error == 0.0
    assert list(result.nearest_integers) == [0, 0, 0, 0, 1]  # the rotation rep: one 3-dim irreducible
    # tensor square of the rotation rep: 3 ⊗ 3 = 1 + 2 + 3 + 3'
    mats = torch.tensor(octahedral_matrices(), dtype=torch.float64)
    square = torch.stack([torch.kron(m, m) for m in mats])
    assert list(decompose(o, square).nearest_integers) == [1, 0, 1, 1, 1]
    # product group: kron of regular reps of the factors is the regular rep of the product
    c2 = cyclic(2)
    c2c2 = direct_product(c2, c2)
    reg = regular_representation(c2, torch.float64)
    assert list(decompose(c2c2, kron_representation(reg, reg)).nearest_integers) == [1, 1, 1, 1]


def test_decompose_character_matches():
    group = dihedral(4)
    reg = regular_representation(group, torch.float64).numpy()
    m, real = decompose_character(group, np.trace(reg, axis1=1, axis2=2))
    assert np.allclose(m, [1, 1, 1, 1, 2])
    assert np.allclose(real, [1, 1, 1, 1, 2])


def test_homomorphism_error():
    group, irreps = s3_irreps()
    assert homomorphism_error(group, irreps["standard"]) < 1e-12
    assert homomorphism_error(group, regular_representation(group)) == 0.0
    rng = np.random.default_rng(0)
    noisy = irreps["standard"] + 0.01 * rng.normal(size=irreps["standard"].shape)
    error = homomorphism_error(group, noisy)
    assert 1e-4 < error < 0.1
    result = decompose(group, noisy)
    assert result.homomorphism_error == pytest.approx(error)
    assert 0 < result.distance_to_integers < 0.05
    assert list(result.nearest_integers) == [0, 0, 1]
    with pytest.raises(ValueError):
        homomorphism_error(group, np.zeros((5, 2, 2)))


def test_snap_eigenvalues():
    rng = np.random.default_rng(1)
    p = rng.normal(size=(5, 5)) + 3 * np.eye(5)
    exact = p @ np.diag([1, 1, -1, 1j, -1j]) @ np.linalg.inv(p)
    snapped = snap_eigenvalues(exact, 4)
    assert snapped["counts"] == [2, 1, 1, 1]
    assert snapped["counts_by_label"] == {"1": 2, "i": 1, "-1": 1, "-i": 1}
    assert snapped["max_distance"] < 1e-8
    assert len(snapped["eigenvalues"]) == 5
    noisy = exact + 0.02 * rng.normal(size=(5, 5))
    snapped = snap_eigenvalues(torch.tensor(noisy), 4)
    assert snapped["counts"] == [2, 1, 1, 1]
    assert 1e-4 < snapped["max_distance"] < 0.3
    assert np.allclose(snapped["distances"],
                       np.abs(snapped["eigenvalues"] - snapped["roots"][snapped["assignment"]]))
    # C2: a reflection-like matrix, 21/21 as in the paper's TMNIST
    q, _ = np.linalg.qr(rng.normal(size=(42, 42)))
    w = q @ np.diag([1.0] * 21 + [-1.0] * 21) @ q.T
    assert snap_eigenvalues(w, 2)["counts"] == [21, 21]
    # a matrix far from any root of unity shows it
    assert snap_eigenvalues(0.5 * np.eye(3), 4)["max_distance"] == pytest.approx(0.5)
