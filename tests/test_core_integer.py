"""Euclidean distances of uint8 rows by integer products (_core/_integer.py):
the same labels as float64 and as the float32 path, near-ties included."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from sk_template import NearestMeanImageClassifier
from sk_template._core import Centroids, _distances, _integer

CPU = torch.device("cpu")
# Squared distances within this relative gap of each other may be tied in
# float32 (2**-24 per rounding, and the square root's): predict may take
# either, the first of tied classes as argmax picks it.
TIE = 2.0**-21


def scaling_data(n_train, n_features, n_classes, n_test, seed=0):
    """Random uint8 rows as benchmarks/bench_scaling.py makes them: every
    class mean near 127.5, and rows nearly as far from all of them."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_train + n_test, n_features), dtype=np.uint8)
    y = rng.permutation(np.arange(n_train) % n_classes)
    return X[:n_train], y, X[n_train:]


def squared_float64(X, centroids):
    """Squared distances by direct differences in float64."""
    out = np.empty((len(X), len(centroids)))
    for start in range(0, len(X), 256):
        diff = X[start : start + 256, None, :].astype(np.float64) - centroids[None]
        out[start : start + 256] = np.einsum("ijk,ijk->ij", diff, diff)
    return out


def assert_nearest_in_float64(labels, d2, classes):
    """Each label is the float64 nearest class, but where another is within
    float32's rounding of it (then either may be taken)."""
    index = np.searchsorted(classes, labels)
    best = d2.min(axis=1)
    chosen = d2[np.arange(len(d2)), index]
    assert (chosen <= best * (1 + TIE) + 1e-9).all()
    ordered = np.sort(d2, axis=1)
    clear = ordered[:, 1] > ordered[:, 0] * (1 + TIE) + 1e-9
    assert_array_equal(index[clear], d2[clear].argmin(axis=1))
    return ~clear


def with_near_ties(X, y, X_test, seed=1):
    """The model of ``X, y`` with near-ties added: two classes with the same
    centroid, one a float32 rounding away from another, and test rows equal
    to (the rounding of) centroids."""
    model = NearestMeanImageClassifier().fit(X, y)
    centroids = model.centroids_.copy()
    centroids[1] = centroids[0]
    centroids[3] = centroids[2]
    centroids[3, ::7] += 2.0**-10  # closer than float32 can tell at |x|^2
    object.__setattr__(model, "centroids_", centroids)
    X_test = X_test.copy()
    X_test[:4] = np.rint(centroids[:4]).astype(np.uint8)
    return model, X_test


# ------------------------------------------------------------------ digits
def test_digits_rebuild_the_centroids_to_two_to_the_minus_16():
    rng = np.random.default_rng(0)
    centroids = np.concatenate(
        [
            rng.uniform(0, 255, (20, 64)),
            np.full((1, 64), 0.0),
            np.full((1, 64), 255.0),
            np.full((1, 64), 127.5),
            np.full((1, 64), 128 - 2.0**-18),
            np.full((1, 64), 255 - 2.0**-18),
        ]
    )
    digits = _integer.IntegerCentroids(centroids)
    high, mid = digits.Q2[:, :25].T.long(), digits.Q2[:, 25:].T.long()
    low = digits.Q3.T.long()
    rebuilt = (65536 * high + 256 * mid + low).double().numpy() / 65536 + 128
    assert np.abs(rebuilt - centroids).max() <= 2.0**-17
    assert digits.Q2.dtype == digits.Q3.dtype == torch.int8


def test_centroids_outside_0_255_take_the_float_path():
    # A model fitted on other data than images (here values up to 510) has
    # centroids no int8 digits hold: uint8 rows then go the float32 way,
    # with the same labels as float64.
    X, y, X_test = scaling_data(600, 30, 6, 300)
    model = NearestMeanImageClassifier().fit(X.astype(np.float64) * 2, y)
    prepared = Centroids(model.centroids_, "euclidean", CPU, torch.float32)
    assert prepared.integer() is None
    d2 = squared_float64(X_test, model.centroids_)
    assert_nearest_in_float64(model.predict(X_test), d2, model.classes_)


def test_int_mm_self_check_agrees_with_int64():
    a = torch.randint(-128, 128, (7, 70_000), dtype=torch.int8)
    b = torch.randint(-128, 128, (70_000, 3), dtype=torch.int8)
    exact = (a.long() @ b.long()).numpy()
    if not _integer.int_mm_is_exact():
        pytest.skip("no exact torch._int_mm on this CPU: the float path runs")
    assert_array_equal(torch._int_mm(a, b).numpy(), exact)


def test_integer_chunks_are_bounded():
    for n_features, n_classes in [(784, 10), (784, 1_000), (12_288, 200), (5, 10**6)]:
        rows = _integer.integer_rows("auto", n_features, n_classes)
        assert rows >= 1
        assert rows * n_features <= _integer.AUTO_CHUNK_BYTES or rows == 1
        assert rows * n_classes <= _integer.AUTO_PRODUCTS or rows == 1
    assert _integer.integer_rows(7, 784, 10) == 7


# ------------------------------------------------------------------ labels
@pytest.mark.parametrize(
    "shape",
    [(6_000, 784, 10, 3_000), (3_000, 784, 300, 1_000), (2_000, 12_288, 40, 300)],
    ids=["mnist-shaped", "300-classes", "64x64x3"],
)
def test_labels_are_the_float64_nearest_near_ties_included(shape):
    X, y, X_test = scaling_data(*shape)
    model, X_test = with_near_ties(X, y, X_test)
    prepared = model._prepared_centroids(X_test)
    assert _integer.integer_centroids(X_test, prepared) is not None
    labels = model.predict(X_test)
    d2 = squared_float64(X_test, model.centroids_)
    tied = assert_nearest_in_float64(labels, d2, model.classes_)
    assert tied.sum() >= 4  # the near-ties are there, and were decided
    # Of the twins, the first; predict is the argmax of the probabilities.
    assert not (labels == model.classes_[1]).any()
    proba = model.predict_proba(X_test)
    assert_array_equal(model.classes_[proba.argmax(axis=1)], labels)


def test_rows_the_first_two_digits_misrank_get_the_third():
    # Class B is class A moved by 127/65536 on every feature: the first two
    # digits of both are the same, and only the third tells them apart.
    # Rows above A on average are nearer B, by more than float32 rounding;
    # the first two digits alone would rank A first (its |c'|^2 is smaller),
    # so every such row must go on to the third digit (and some rows are
    # exactly as far from both, or nearer A).
    d = 784
    centroids = np.stack(
        [
            np.full(d, 200.0),
            np.full(d, 200.0 + 127 / 65536),
            np.full(d, 60.0),
            np.full(d, 120.0),
        ]
    )
    rng = np.random.default_rng(0)
    X = (200 + rng.integers(-30, 56, (3_000, d))).astype(np.uint8)
    X[:100] = 200
    prepared = Centroids(centroids, "euclidean", CPU, torch.float32)
    digits = prepared.integer()
    assert torch.equal(digits.Q2[:, 0], digits.Q2[:, 1])  # the same two digits
    assert torch.equal(digits.Q2[:, 4], digits.Q2[:, 5])
    from sk_template._core import Posterior, predict_labels

    posterior = Posterior("euclidean", 40.0, np.full(4, 0.25), CPU, None)
    labels = predict_labels(X, prepared, posterior, batch_size="auto")
    d2 = squared_float64(X, centroids)
    assert_nearest_in_float64(labels, d2, np.arange(4))
    nearer_b = d2[:, 1] < d2[:, 0] * (1 - TIE)
    assert nearer_b.sum() > 1_000 and (labels[nearer_b] == 1).all()
    assert (labels[:100] == 0).all()  # exactly as far: the first


@pytest.mark.parametrize("batch_size", [1, 7, 500, "auto"])
def test_integer_and_float32_paths_give_the_same_labels(batch_size):
    # The old path (float32 expansion, refined in float64) on the same
    # values as float32 input: the same labels, row for row.
    X, y, X_test = scaling_data(4_000, 784, 20, 2_000)
    model, X_test = with_near_ties(X, y, X_test)
    model.set_params(batch_size=batch_size)
    labels = model.predict(X_test)
    assert_array_equal(labels, model.predict(X_test.astype(np.float32)))
    assert_array_equal(labels, model.predict(torch.from_numpy(X_test)))


def test_transform_of_uint8_rows_is_float64_rounded():
    X, y, X_test = scaling_data(3_000, 784, 30, 500)
    model = NearestMeanImageClassifier().fit(X, y)
    expected = np.sqrt(squared_float64(X_test, model.centroids_))
    assert_allclose(model.transform(X_test), expected, rtol=2e-7)
    # ... and every method reads the same distances.
    scores = model.decision_function(X_test)
    assert_array_equal(model.classes_[scores.argmax(axis=1)], model.predict(X_test))


def test_without_an_exact_int_mm_uint8_rows_take_the_float_path(monkeypatch):
    X, y, X_test = scaling_data(3_000, 100, 10, 1_000)
    expected = NearestMeanImageClassifier().fit(X, y).predict(X_test)
    monkeypatch.setattr(_distances, "int_mm_is_exact", lambda: False)
    model = NearestMeanImageClassifier().fit(X, y)
    assert model._prepared_centroids(X_test).integer() is None
    assert_array_equal(model.predict(X_test), expected)


def test_mnist_labels_equal_float64_and_the_float32_path(mnist):
    (X_train, y_train), (X_test, y_test) = mnist
    model = NearestMeanImageClassifier().fit(X_train, y_train)
    X = np.concatenate([X_test, X_train])
    labels = model.predict(X)
    tied = assert_nearest_in_float64(
        labels, squared_float64(X, model.centroids_), model.classes_
    )
    assert not tied.any()  # no near-tie on MNIST: every label is exact
    assert_array_equal(labels, model.predict(X.astype(np.float32)))
    assert (labels[: len(X_test)] == y_test).mean() == pytest.approx(0.8203)
