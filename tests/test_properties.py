"""Properties that hold for any data, searched by hypothesis.

Shapes, dtypes (uint8, uint16, float32, float64), class counts, integer
weights and partitions are drawn at random; float pixels are multiples of
1/4 in [-512, 512], so every sum :func:`~sk_template._core.class_stats` takes
is exact in float64 whatever the order of the rows, and two ways of fitting
the same rows must give the very same centroids, counts and statistics.

What may differ between two such fits, and only for float input, is the
rounding of the pooled within-class spread: it is computed from sums taken
about a reference row (the first row seen; integers are summed about zero),
and another first row rounds ``sq_sums - sum_k sums_k**2 / weights_k``
differently.  :func:`_assert_equivalent` checks that difference against its
rounding bound, and that nothing else differs: the second model, given the
first one's spread, answers every method bit for bit as the first does.

Default runs are small and reproducible (the ``ci`` profile of
``conftest.py``, derandomized); ``pytest --hypothesis-profile=long
tests/test_properties.py`` searches far more, from fresh seeds.  Every
counterexample found is kept below as an explicit ``@example``, or, where it
was a bug in sk_template, as a test of its own at the end of the module.
"""

# SPDX-License-Identifier: BSD-3-Clause

import copy
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
from sk_template._core import ClassStats

DTYPES = (np.uint8, np.uint16, np.float32, np.float64)
METRICS = ("euclidean", "manhattan", "cosine")
EPS = np.finfo(np.float64).eps


# ------------------------------------------------------------------ strategies
@st.composite
def datasets(draw, dtypes=DTYPES, min_classes=2, max_classes=5, max_rows=6):
    """``(X, y)``: at least two classes (as scikit-learn requires), each present
    at least once, labels in any order."""
    dtype = np.dtype(draw(st.sampled_from(dtypes)))
    n_classes = draw(st.integers(min_classes, max_classes))
    n_features = draw(st.integers(1, 12))
    counts = draw(
        st.lists(st.integers(1, max_rows), min_size=n_classes, max_size=n_classes)
    )
    n = sum(counts)
    size = n * n_features
    if dtype.kind == "u":
        top = int(np.iinfo(dtype).max)
        values = st.one_of(st.integers(0, top), st.sampled_from([0, 1, top]))
        X = np.array(draw(st.lists(values, min_size=size, max_size=size)), dtype)
    else:
        quarters = st.integers(-2048, 2048)
        X = np.array(draw(st.lists(quarters, min_size=size, max_size=size))) / 4
        X = X.astype(dtype)
    labels = draw(
        st.lists(
            st.integers(-5, 20), min_size=n_classes, max_size=n_classes, unique=True
        )
    )
    y = np.repeat(labels, counts)
    order = np.array(draw(st.permutations(range(n))))
    return X.reshape(n, n_features), y[order]


def _row_draws(elements):
    """A strategy for one value per row of a dataset: ``(X, y, values)``."""

    @st.composite
    def draw_rows(draw, dtypes=DTYPES):
        X, y = draw(datasets(dtypes=dtypes))
        values = draw(st.lists(elements, min_size=len(y), max_size=len(y)))
        return X, y, np.array(values)

    return draw_rows


# Integer weights, 0 to 4; a partition of the rows into up to 4 blocks.
weighted_datasets = _row_draws(st.integers(0, 4))
partitioned_datasets = _row_draws(st.integers(0, 3))


@st.composite
def permuted_datasets(draw, dtypes=DTYPES):
    X, y = draw(datasets(dtypes=dtypes))
    return X, y, np.array(draw(st.permutations(range(len(y)))))


# ---------------------------------------------------------------------- checks
def _outputs(model, X):
    """Everything a fitted model says about ``X``."""
    return (
        model.predict(X),
        model.predict_proba(X),
        model.predict_log_proba(X),
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
    assert_array_equal(a.class_prior_, b.class_prior_)


def _scatter_and_bound(model):
    """The within-class scatter a model's statistics give, and a bound on its
    rounding: ``sq_sums - sum_k sums_k**2 / weights_k`` in float64, each of
    its K + 2 operations per feature rounding by at most EPS / 2 of the
    largest partial result."""
    stats = ClassStats(**model._stats)
    seen = stats.weights > 0
    between = (stats.sums[seen] ** 2 / stats.weights[seen, None]).sum(axis=0)
    bound = (seen.sum() + 4) * EPS * (stats.sq_sums + between)
    return stats.within_class_scatter(), bound


def _assert_equivalent(a, b, X):
    """``a`` and ``b`` are the same model but for the rounding of the spread.

    Integer input is summed exactly about zero: every output is bit for bit
    the same.  Float input is summed about its first row: the statistics are
    exact for the data drawn here, the scatter computed from them rounds
    within :func:`_scatter_and_bound`, and with ``a``'s spread ``b`` says
    exactly what ``a`` says."""
    _assert_same_model(a, b)
    if X.dtype.kind in "ui":
        _assert_same_outputs(a, b, X)
        return
    (scatter_a, bound_a), (scatter_b, bound_b) = map(_scatter_and_bound, (a, b))
    assert (np.abs(scatter_a - scatter_b) <= bound_a + bound_b).all()
    b = copy.deepcopy(b)
    b.within_class_std_ = a.within_class_std_
    _assert_same_outputs(a, b, X)


# ------------------------------------------------------------- fitting paths
@given(data=datasets(), metric=st.sampled_from(METRICS), cuts=st.data())
def test_partial_fit_over_any_split_is_fit(data, metric, cuts):
    X, y = data
    bounds = sorted(cuts.draw(st.lists(st.integers(0, len(y)), max_size=4)))
    bounds = [0, *bounds, len(y)]
    full = NearestMeanImageClassifier(metric).fit(X, y)
    inc = NearestMeanImageClassifier(metric)
    classes = np.unique(y)
    for a, b in zip(bounds, bounds[1:], strict=False):
        if b > a:
            inc.partial_fit(X[a:b], y[a:b], classes=classes)
    _assert_equivalent(full, inc, X)


@example(
    # float32 squares times a weight, rounded in float32: within_class_std_
    # 0.039 for classes whose rows are all equal (see the tests at the end).
    data=(
        np.array([[82.25, 408.5, -206.25]] * 3 + [[457.25, -419.25, 126.25]] * 2, "f4"),
        np.array([1, 1, 1, 0, 0]),
        np.array([4, 3, 4, 0, 3]),
    ),
    metric="euclidean",
)
@given(data=weighted_datasets(), metric=st.sampled_from(METRICS))
def test_integer_weights_are_repeated_rows(data, metric):
    X, y, weights = data
    keep = np.repeat(np.arange(len(y)), weights)
    assume(set(y[keep]) == set(y))  # no class weighed to nothing
    weighted = NearestMeanImageClassifier(metric).fit(X, y, sample_weight=weights)
    repeated = NearestMeanImageClassifier(metric).fit(X[keep], y[keep])
    _assert_equivalent(weighted, repeated, X)


@example(
    # Another first row: the probabilities differed in their last bit.
    data=(
        np.array([[0, -0.25], [0, 0], [0, 0], [0, 0], [0, 0], [0, 0.25]], "f4"),
        np.array([0, 1, 1, 1, 1, 1]),
        np.array([1, 0, 2, 3, 4, 5]),
    ),
    metric="euclidean",
)
@given(data=permuted_datasets(), metric=st.sampled_from(METRICS))
def test_permuting_rows_changes_nothing(data, metric):
    X, y, order = data
    a = NearestMeanImageClassifier(metric).fit(X, y)
    b = NearestMeanImageClassifier(metric).fit(X[order], y[order])
    _assert_equivalent(a, b, X)
    # and predicting permuted rows permutes the answers
    for got, want in zip(_outputs(a, X[order]), _outputs(a, X), strict=True):
        assert_array_equal(got, want[order])


@given(
    data=partitioned_datasets(),
    metric=st.sampled_from(METRICS),
    weights=st.booleans(),
)
def test_fit_blocks_over_any_partition_is_fit(data, metric, weights):
    X, y, block_of = data
    # Integer weights that give every class some weight, or none at all.
    w = (block_of + np.arange(len(y))) % 3 + 1 if weights else None
    blocks = [
        (X[block_of == b], y[block_of == b])
        + (() if w is None else (w[block_of == b],))
        for b in np.unique(block_of)
    ]
    blocked = fit_blocks(
        NearestMeanImageClassifier(metric), blocks, classes=np.unique(y)
    )
    full = NearestMeanImageClassifier(metric).fit(X, y, sample_weight=w)
    _assert_equivalent(full, blocked, X)


@given(data=datasets(), metric=st.sampled_from(METRICS), chunks=st.data())
def test_fit_dask_over_any_chunking_is_fit(data, metric, chunks):
    dask = pytest.importorskip("dask")
    da = pytest.importorskip("dask.array")
    from sk_template import fit_dask

    X, y = data
    cuts = sorted(set(chunks.draw(st.lists(st.integers(1, len(y)), max_size=3))))
    sizes = tuple(np.diff([0, *[c for c in cuts if c < len(y)], len(y)]))
    w = np.arange(len(y)) % 3 + 1 if chunks.draw(st.booleans()) else None
    dX = da.from_array(X, chunks=(sizes, X.shape[1]))
    dy = da.from_array(y, chunks=(sizes,))
    dw = None if w is None else da.from_array(w, chunks=(sizes,))
    with dask.config.set(scheduler="synchronous"):
        fitted = fit_dask(NearestMeanImageClassifier(metric), dX, dy, sample_weight=dw)
    full = NearestMeanImageClassifier(metric).fit(X, y, sample_weight=w)
    _assert_equivalent(full, fitted, X)


# --------------------------------------------------------- what predict says
@st.composite
def priors_for(draw, n_classes):
    kind = draw(st.sampled_from(["uniform", "empirical", "array"]))
    if kind != "array":
        return kind
    weights = np.array(
        draw(st.lists(st.integers(1, 9), min_size=n_classes, max_size=n_classes))
    )
    return weights / weights.sum()


@given(
    data=weighted_datasets(),
    metric=st.sampled_from(METRICS),
    centroid=st.sampled_from(["mean", "median"]),
    choice=st.data(),
)
def test_predict_is_the_argmax_of_predict_proba(data, metric, centroid, choice):
    X, y, weights = data
    assume(all(weights[y == c].sum() > 0 for c in np.unique(y)))
    priors = choice.draw(priors_for(np.unique(y).size))
    clf = NearestMeanImageClassifier(metric, centroid=centroid, priors=priors)
    clf.fit(X, y, sample_weight=weights)
    proba = clf.predict_proba(X)
    assert_array_equal(clf.predict(X), clf.classes_[np.argmax(proba, axis=1)])
    assert np.isfinite(proba).all() and (proba >= 0).all()
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-12)
    np.testing.assert_allclose(
        np.exp(clf.predict_log_proba(X)), proba, rtol=1e-9, atol=1e-300
    )


def _exact_distances(X, centroids, metric):
    """Distances in float64 by direct differences (exact enough to rank)."""
    X = X.astype(np.float64)
    if metric == "cosine":
        norms = np.linalg.norm(X, axis=1)[:, None] * np.linalg.norm(centroids, axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            d = 1 - (X @ centroids.T) / norms
        return np.where(norms > 0, d, 1.0)  # a zero vector: 1, as ours says
    diff = X[:, None, :] - centroids[None, :, :]
    if metric == "euclidean":
        return np.sqrt((diff**2).sum(axis=2))
    return np.abs(diff).sum(axis=2)


def _within(d, tol):
    """Per row, the classes whose distance is within ``tol`` (per row) of
    the row's smallest."""
    best = d.min(axis=1, keepdims=True)
    return d <= best + np.reshape(tol, (-1, 1))


def _assert_picks_among(labels, classes, close):
    """Each label is one of the classes ``close`` marks for its row."""
    k = np.searchsorted(classes, labels)
    assert close[np.arange(len(labels)), k].all()


@st.composite
def with_ties(draw):
    """A float64 dataset, and rows to predict: its own rows, and points
    halfway between two of its class means (exact ties), nudged a little or
    not."""
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
@example(
    # Constant X: scikit-learn refuses it ("All features have zero
    # variance"); ours has every class at one point, a tie everywhere.
    data=(np.zeros((2, 1)), np.array([0, 1]), np.zeros((4, 1))),
)
@given(data=with_ties())
def test_predict_is_scikit_learns_nearest_centroid(metric, centroid, data):
    X, y, test = data
    ours = NearestMeanImageClassifier(metric, centroid=centroid).fit(X, y)
    exact = _exact_distances(test, ours.centroids_, metric)
    # At a near-tie either of the nearest classes is the centroid nearest up
    # to rounding (1e-12 relative); both libraries must pick one of them.
    tie = _within(exact, 1e-12 * exact.min(axis=1)).sum(axis=1) > 1
    _assert_picks_among(
        ours.predict(test), ours.classes_, _within(exact, 0) | tie[:, None]
    )
    try:
        with np.errstate(all="ignore"):
            ref = NearestCentroid(metric=metric).fit(X, y)
    except ValueError as exc:
        # What scikit-learn refuses we cannot compare against.
        assert "zero variance" in str(exc)
        assert np.ptp(X, axis=0).max() == 0
        return
    assert_array_equal(ours.centroids_, ref.centroids_)
    got, want = ours.predict(test), ref.predict(test)
    assert_array_equal(got[~tie], want[~tie])
    close = _within(exact, 1e-12 * exact.min(axis=1))
    _assert_picks_among(want, ours.classes_, close)


def _float32_tolerance(X, model, metric):
    """Per row and class, how far float32 rounding may move a distance, as
    the README documents it (Precision): with ``g = (n + 8) 2**-24 / (1 -
    (n + 8) 2**-24)`` and ``m`` the centroids' mean, euclidean squared
    distances within ``g (|x - m| + |c - m|)**2``, manhattan distances
    within ``3 g (|x - m|_1 + |c - m|_1)``, cosine distances within ``2 g``."""
    n = X.shape[1]
    u = (n + 8) * 2.0**-24
    g = u / (1 - u)
    m = model.centroids_.mean(axis=0)
    x_m = X.astype(np.float64) - m
    c_m = model.centroids_ - m
    if metric == "euclidean":
        r = np.linalg.norm(x_m, axis=1)[:, None] + np.linalg.norm(c_m, axis=1)
        return np.sqrt(g) * r  # |d - d'| <= sqrt(|d**2 - d'**2|)
    if metric == "manhattan":
        r = np.abs(x_m).sum(axis=1)[:, None] + np.abs(c_m).sum(axis=1)
        return 3 * g * r
    return np.full((len(X), len(c_m)), 2 * g)


@given(data=datasets(dtypes=(np.float64,)), metric=st.sampled_from(METRICS))
def test_float32_and_float64_input_agree_but_at_near_ties(data, metric):
    X, y = data
    X32 = X.astype(np.float32)  # exact: quarters of small integers
    a = NearestMeanImageClassifier(metric).fit(X, y)
    b = NearestMeanImageClassifier(metric).fit(X32, y)
    # Both are fitted in float64 from the same values: the same model.
    _assert_same_model(a, b)
    assert a.within_class_std_ == b.within_class_std_
    exact = _exact_distances(X, a.centroids_, metric)
    tol = _float32_tolerance(X, a, metric)
    assert (np.abs(b.transform(X32) - exact) <= tol).all()
    # float64 predicts the nearest centroid (to its own rounding)...
    nearest = _within(exact, 1e-10 * exact.min(axis=1) + 1e-12)
    _assert_picks_among(a.predict(X), a.classes_, nearest)
    # ... and float32 a centroid within its rounding of the nearest:
    # euclidean rows that float32 cannot decide are recomputed in float64, so
    # its labels are float64's up to float32's rounding of the distance
    # itself; the other metrics, within the bounds above.
    if metric == "euclidean":
        close = _within(exact, 2.0**-22 * exact.min(axis=1) + 1e-30)
    else:
        close = exact - tol <= (exact + tol).min(axis=1, keepdims=True)
    _assert_picks_among(b.predict(X32), b.classes_, close)


# ------------------------------------------------------------- round trips
@given(data=datasets(), metric=st.sampled_from(METRICS))
def test_model_files_and_pickles_give_identical_outputs(data, metric, tmp_path_factory):
    X, y = data
    clf = NearestMeanImageClassifier(metric).fit(X, y)
    path = tmp_path_factory.mktemp("model") / "m.npz"
    save_model(clf, path)
    for copy_ in (load_model(path), pickle.loads(pickle.dumps(clf))):
        _assert_same_model(clf, copy_)
        assert copy_.within_class_std_ == clf.within_class_std_
        _assert_same_outputs(clf, copy_, X)
