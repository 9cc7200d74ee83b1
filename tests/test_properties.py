"""Properties that hold for any data, searched by hypothesis.

Shapes, dtypes (uint8, uint16, float32, float64), class counts, weights and
partitions are drawn at random; float pixels are multiples of 1/4 in
[-512, 512], so every class sum is exact in float64 whatever the order of
the rows, and two ways of fitting the same rows must give the very same
centroids.  Default runs are small and reproducible (the ``ci`` profile of
``conftest.py``); ``pytest --hypothesis-profile=long tests/test_properties.py``
searches far more.  Every counterexample found is kept below as an explicit
``@example``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import pickle

import numpy as np
import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st
from numpy.testing import assert_array_equal
from sklearn.neighbors import NearestCentroid

from sk_template import (
    NearestMeanImageClassifier,
    fit_blocks,
    load_model,
    save_model,
)

DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
METRICS = ("euclidean", "manhattan", "cosine")


@st.composite
def datasets(draw, dtypes=DTYPES, min_classes=2, max_classes=5):
    """``(X, y)``: at least two classes (as scikit-learn requires), each present at least
    once, labels in any order."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    n_classes = draw(st.integers(min_classes, max_classes))
    n_features = draw(st.integers(1, 12))
    counts = draw(st.lists(st.integers(1, 6), min_size=n_classes, max_size=n_classes))
    n = sum(counts)
    if dtype.kind == "u":
        top = np.iinfo(dtype).max
        values = st.one_of(st.integers(0, top), st.sampled_from([0, 1, top]))
        X = np.array(
            draw(st.lists(values, min_size=n * n_features, max_size=n * n_features)),
            dtype=dtype,
        )
    else:
        quarters = st.integers(-2048, 2048)
        X = (
            np.array(
                draw(
                    st.lists(quarters, min_size=n * n_features, max_size=n * n_features)
                ),
                dtype=np.float64,
            )
            / 4
        ).astype(dtype)
    labels = draw(
        st.lists(
            st.integers(-5, 20), min_size=n_classes, max_size=n_classes, unique=True
        )
    )
    y = np.repeat(labels, counts)
    order = draw(st.permutations(range(n)))
    return X.reshape(n, n_features), y[list(order)]


def _outputs(model, X):
    """Everything a fitted model says about ``X``."""
    return (
        model.predict(X),
        model.predict_proba(X),
        model.decision_function(X),
        model.transform(X),
    )


def _assert_same_outputs(a, b, X):
    for got, want in zip(_outputs(a, X), _outputs(b, X), strict=True):
        assert_array_equal(got, want)


def _assert_same_model(a, b):
    assert_array_equal(a.classes_, b.classes_)
    assert_array_equal(a.centroids_, b.centroids_)
    assert_array_equal(a.class_count_, b.class_count_)


# ------------------------------------------------------------- fitting paths
@given(data=datasets(), metric=st.sampled_from(METRICS), split=st.data())
def test_partial_fit_over_any_split_is_fit(data, metric, split):
    X, y = data
    cuts = sorted(split.draw(st.lists(st.integers(0, len(y)), max_size=4)))
    bounds = [0, *cuts, len(y)]
    full = NearestMeanImageClassifier(metric).fit(X, y)
    inc = NearestMeanImageClassifier(metric)
    classes = np.unique(y)
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            inc.partial_fit(X[a:b], y[a:b], classes=classes)
    _assert_same_model(full, inc)
    _assert_same_outputs(full, inc, X)


@given(data=datasets(), metric=st.sampled_from(METRICS), w=st.data())
def test_integer_weights_are_repeated_rows(data, metric, w):
    X, y = data
    weights = np.array(
        w.draw(st.lists(st.integers(0, 4), min_size=len(y), max_size=len(y)))
    )
    keep = np.repeat(np.arange(len(y)), weights)
    assume(set(y[keep]) == set(y))  # no class weighed to nothing
    weighted = NearestMeanImageClassifier(metric).fit(X, y, sample_weight=weights)
    repeated = NearestMeanImageClassifier(metric).fit(X[keep], y[keep])
    _assert_same_model(weighted, repeated)
    _assert_same_outputs(weighted, repeated, X)


@given(data=datasets(), metric=st.sampled_from(METRICS), perm=st.data())
def test_permuting_rows_changes_nothing(data, metric, perm):
    X, y = data
    order = np.array(perm.draw(st.permutations(range(len(y)))))
    a = NearestMeanImageClassifier(metric).fit(X, y)
    b = NearestMeanImageClassifier(metric).fit(X[order], y[order])
    _assert_same_model(a, b)
    _assert_same_outputs(a, b, X)
    # and predicting permuted rows permutes the answers
    for got, want in zip(_outputs(a, X[order]), _outputs(a, X), strict=True):
        assert_array_equal(got, want[order])


@given(data=datasets(), metric=st.sampled_from(METRICS), parts=st.data())
def test_fit_blocks_over_any_partition_is_fit(data, metric, parts):
    X, y = data
    block_of = np.array(
        parts.draw(st.lists(st.integers(0, 3), min_size=len(y), max_size=len(y)))
    )
    blocks = [(X[block_of == b], y[block_of == b]) for b in np.unique(block_of)]
    clf = NearestMeanImageClassifier(metric)
    blocked = fit_blocks(clf, blocks, classes=np.unique(y))
    full = NearestMeanImageClassifier(metric).fit(X, y)
    _assert_same_model(full, blocked)
    _assert_same_outputs(full, blocked, X)


# --------------------------------------------------------- what predict says
@given(
    data=datasets(),
    metric=st.sampled_from(METRICS),
    priors=st.sampled_from(["uniform", "empirical"]),
)
def test_predict_is_the_argmax_of_predict_proba(data, metric, priors):
    X, y = data
    clf = NearestMeanImageClassifier(metric, priors=priors).fit(X, y)
    proba = clf.predict_proba(X)
    assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-6)


def _exact_nearest(X, centroids, metric):
    """Distances in float64 by direct differences (exact enough to rank)."""
    diff = X.astype(np.float64)[:, None, :] - centroids[None, :, :]
    if metric == "euclidean":
        return (diff**2).sum(axis=2)
    return np.abs(diff).sum(axis=2)


def _near_tie(d, rtol):
    """Rows whose two smallest distances are within ``rtol`` of each other."""
    if d.shape[1] < 2:
        return np.zeros(len(d), dtype=bool)
    two = np.sort(d, axis=1)[:, :2]
    return two[:, 1] - two[:, 0] <= rtol * np.maximum(two[:, 1], 1e-300)


@st.composite
def with_ties(draw, metric):
    """A dataset, and rows to predict: its own rows, and points halfway
    between two of its class means (exact ties), nudged a little or not."""
    X, y = draw(datasets(dtypes=(np.float64,)))
    means = np.stack([X[y == c].mean(axis=0) for c in np.unique(y)])
    i, j = draw(st.permutations(range(len(means))))[:2]
    half = (means[i] + means[j]) / 2
    nudge = draw(st.sampled_from([0.0, 1e-12, -1e-12, 1e-6]))
    test = np.vstack([X, half, half + nudge * (means[j] - means[i])])
    return X, y, test


@pytest.mark.parametrize(
    "metric, centroid", [("euclidean", "mean"), ("manhattan", "median")]
)
@given(data=st.data())
def test_predict_is_scikit_learns_nearest_centroid(metric, centroid, data):
    X, y, test = data.draw(with_ties(metric))
    ours = NearestMeanImageClassifier(metric, centroid=centroid).fit(X, y)
    ref = NearestCentroid(metric=metric).fit(X, y)
    np.testing.assert_allclose(ours.centroids_, ref.centroids_, rtol=0, atol=0)
    got, want = ours.predict(test), ref.predict(test)
    exact = _exact_nearest(test, ref.centroids_, metric)
    tie = _near_tie(exact, 1e-12)
    assert_array_equal(got[~tie], want[~tie])
    # At a near-tie either of the nearest classes is the centroid nearest up
    # to rounding; both libraries must pick one of them.
    best = exact.min(axis=1, keepdims=True)
    close = exact <= best + 1e-12 * np.maximum(best, 1e-300)
    for answer in (got, want):
        k = np.searchsorted(ours.classes_, answer)
        assert close[np.arange(len(test)), k].all()


@given(data=datasets(dtypes=(np.float64,)), metric=st.sampled_from(METRICS))
def test_float32_and_float64_input_agree_but_at_near_ties(data, metric):
    X, y = data
    X32 = X.astype(np.float32)  # exact: quarters of small integers
    a = NearestMeanImageClassifier(metric).fit(X, y)
    b = NearestMeanImageClassifier(metric).fit(X32, y)
    _assert_same_model(a, b)
    if metric == "cosine":
        d = a.transform(X)
    else:
        d = _exact_nearest(X, a.centroids_, metric)
    tie = _near_tie(d, 1e-5)  # float32's documented rounding, with room
    assert_array_equal(a.predict(X)[~tie], b.predict(X32)[~tie])


# ------------------------------------------------------------- round trips
@given(data=datasets(), metric=st.sampled_from(METRICS))
def test_model_files_and_pickles_give_identical_outputs(data, metric, tmp_path_factory):
    X, y = data
    clf = NearestMeanImageClassifier(metric).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "m.npz"
    save_model(clf, path)
    for copy in (load_model(path), pickle.loads(pickle.dumps(clf))):
        _assert_same_model(clf, copy)
        _assert_same_outputs(clf, copy, X)


@given(data=datasets(), metric=st.sampled_from(METRICS), chunks=st.data())
def test_fit_dask_over_any_chunking_is_fit(data, metric, chunks):
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    from sk_template import fit_dask

    X, y = data
    cuts = sorted(set(chunks.draw(st.lists(st.integers(1, len(y)), max_size=3))))
    sizes = tuple(np.diff([0, *[c for c in cuts if c < len(y)], len(y)]))
    dX = da.from_array(X, chunks=(sizes, X.shape[1]))
    dy = da.from_array(y, chunks=(sizes,))
    clf = NearestMeanImageClassifier(metric)
    with dask.config.set(scheduler="synchronous"):
        fitted = fit_dask(clf, dX, dy)
    full = NearestMeanImageClassifier(metric).fit(X, y)
    _assert_same_model(full, fitted)
    _assert_same_outputs(full, fitted, X)
