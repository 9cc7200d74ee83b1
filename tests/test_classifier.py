"""Tests of NearestMeanImageClassifier against known answers and scikit-learn."""

# SPDX-License-Identifier: BSD-3-Clause

import io
import pickle
import pickletools
import warnings

import joblib
import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.metrics.pairwise import pairwise_distances
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from sk_template import NearestMeanImageClassifier

METRICS = ["euclidean", "manhattan", "cosine"]
needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="CUDA is not available on this machine"
)

# Toy data with known answers: two classes of two points each.
X_TOY = np.array([[0, 0], [0, 10], [250, 250], [240, 255]], dtype=np.uint8)
Y_TOY = np.array([3, 3, 7, 7])
CENTROIDS_TOY = np.array([[0.0, 5.0], [245.0, 252.5]])
T_TOY = np.array([[10, 20], [200, 230], [130, 125]], dtype=np.uint8)
# Manhattan distances of T_TOY to the centroids: 25 | 467.5, 425 | 67.5,
# 250 | 242.5.
TRUE_TOY = np.array([3, 7, 7])


@pytest.fixture(scope="module")
def digits():
    """sklearn's 8x8 digits as uint8 images, split once."""
    X, y = load_digits(return_X_y=True)
    X = (X * 16).clip(0, 255).astype(np.uint8)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


# --------------------------------------------------------------------------- basics
@pytest.mark.parametrize("metric", METRICS)
def test_toy_known_answers(metric):
    clf = NearestMeanImageClassifier(metric=metric).fit(X_TOY, Y_TOY)
    assert_array_equal(clf.classes_, [3, 7])
    assert_allclose(clf.centroids_, CENTROIDS_TOY)
    assert clf.centroids_.dtype == np.float64
    assert_array_equal(clf.class_count_, [2.0, 2.0])
    assert clf.n_features_in_ == 2
    if metric != "cosine":
        assert_array_equal(clf.predict(T_TOY), TRUE_TOY)


def test_toy_distances_match_definition():
    clf = NearestMeanImageClassifier(metric="manhattan").fit(X_TOY, Y_TOY)
    assert_allclose(
        clf.transform(T_TOY), [[25, 467.5], [425, 67.5], [250, 242.5]], rtol=1e-6
    )
    clf.set_params(metric="euclidean")
    expected = np.sqrt(((T_TOY[:, None, :] - CENTROIDS_TOY[None]) ** 2).sum(-1))
    # uint8 input is computed in float32; float64 input in float64.
    assert_allclose(clf.transform(T_TOY), expected, rtol=1e-5)
    assert_allclose(clf.transform(T_TOY.astype(np.float64)), expected, rtol=1e-12)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_transform_equals_sklearn_pairwise_distances(digits, metric, dtype):
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier(metric=metric).fit(X_train.astype(dtype), y_train)
    expected = pairwise_distances(
        X_test.astype(np.float64), clf.centroids_, metric=metric
    )
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    assert_allclose(clf.transform(X_test.astype(dtype)), expected, rtol=rtol, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_predictions_equal_nearest_centroid(digits, dtype):
    X_train, X_test, y_train, _ = digits
    ours = NearestMeanImageClassifier().fit(X_train.astype(dtype), y_train)
    ref = NearestCentroid(metric="euclidean").fit(X_train, y_train)
    assert_allclose(ours.centroids_, ref.centroids_)
    assert_array_equal(ours.predict(X_test.astype(dtype)), ref.predict(X_test))


def test_manhattan_ranks_as_mean_absolute_difference(digits):
    """The source document's score: mean |image - mean image|, smallest wins."""
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier(metric="manhattan").fit(X_train, y_train)
    means = np.stack([X_train[y_train == c].mean(0) / 255 for c in clf.classes_])
    mad = np.abs(X_test[:, None, :] / 255 - means[None]).mean(-1)
    assert_array_equal(clf.predict(X_test), clf.classes_[mad.argmin(1)])


@pytest.mark.parametrize("batch_size", [1, 7, 64, "auto"])
@pytest.mark.parametrize("metric", METRICS)
def test_batch_size_does_not_change_results(digits, metric, batch_size):
    X_train, X_test, y_train, _ = digits
    ref = NearestMeanImageClassifier(metric=metric, batch_size=10_000)
    ref.fit(X_train, y_train)
    clf = NearestMeanImageClassifier(metric=metric, batch_size=batch_size)
    clf.fit(X_train, y_train)
    assert_allclose(clf.centroids_, ref.centroids_, rtol=1e-12)
    assert_allclose(clf.transform(X_test), ref.transform(X_test), rtol=1e-5)
    assert_array_equal(clf.predict(X_test), ref.predict(X_test))


def test_accuracy_on_digits(digits):
    X_train, X_test, y_train, y_test = digits
    for metric in METRICS:
        score = NearestMeanImageClassifier(metric=metric).fit(X_train, y_train)
        # Nearest mean on 8x8 digits is a ~90% baseline, far above chance (10%).
        assert score.score(X_test, y_test) > 0.85


# ---------------------------------------------------------------- probabilities
@pytest.mark.parametrize("metric", METRICS)
def test_proba_sums_to_one_and_argmax_is_predict(digits, metric):
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier(metric=metric).fit(X_train, y_train)
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    assert_allclose(proba.sum(axis=1), 1.0)
    assert (proba >= 0).all()
    pred = clf.predict(X_test)
    assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    # ... and the nearest centroid is the most probable class.
    assert_array_equal(clf.classes_[clf.transform(X_test).argmin(axis=1)], pred)
    assert_allclose(np.exp(clf.predict_log_proba(X_test)), proba, atol=1e-12)
    scores = clf.decision_function(X_test)
    assert_array_equal(clf.classes_[scores.argmax(axis=1)], pred)


@pytest.mark.parametrize("metric", METRICS)
def test_proba_is_soft_and_follows_the_documented_model(metric):
    rng = np.random.RandomState(0)
    centers = np.array([[0.0, 0.0], [3.0, 0.0]])
    X = np.concatenate([c + rng.randn(500, 2) for c in centers]) + [0, 10]
    y = np.repeat([0, 1], 500)
    clf = NearestMeanImageClassifier(metric=metric).fit(X, y)
    # Pooled within-class std of unit Gaussians is about 1.
    assert clf.within_class_std_ == pytest.approx(1.0, rel=0.1)
    proba = clf.predict_proba(X)
    assert 0.05 < proba[:, 1].mean() < 0.95
    if metric == "euclidean":
        # Gaussian with shared isotropic variance: the log-odds of the
        # two classes is -(d1**2 - d0**2) / (2 s**2).
        d = clf.transform(X)
        log_odds = -(d[:, 1] ** 2 - d[:, 0] ** 2) / (2 * clf.within_class_std_**2)
        assert_allclose(clf.decision_function(X), log_odds, rtol=1e-8, atol=1e-8)


# Two classes of two points each, one unit from their centroids (0, 1) and
# (4, 1): the pooled within-class variance is 4 / (4 rows * 2 features) = 0.5.
X_UNIT = np.array([[0, 0], [0, 2], [4, 0], [4, 2]], dtype=np.float64)
Y_UNIT = np.array([0, 0, 1, 1])


def _log_likelihoods(metric, X, centroids, s2, mean_sq_norm):
    """The Notes' models, written out from the docstring in numpy."""
    if metric == "euclidean":  # Gaussian: -d**2 / (2 s**2)
        d = np.sqrt(((X[:, None] - centroids[None]) ** 2).sum(-1))
        return -(d**2) / (2 * s2)
    if metric == "manhattan":  # Laplace of the same variance: -sqrt(2) d / s
        d = np.abs(X[:, None] - centroids[None]).sum(-1)
        return -np.sqrt(2) * d / np.sqrt(s2)
    # Gaussian around the ray through the centroid: -m d / s**2
    unit_x = X / np.linalg.norm(X, axis=1, keepdims=True)
    unit_c = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    return -mean_sq_norm * (1 - unit_x @ unit_c.T) / s2


@pytest.mark.parametrize(
    "metric, expected",
    [
        # log-odds of class 0 at (1, 1), at distances 1 and 3:
        ("euclidean", -(1**2) / (2 * 0.5) + 3**2 / (2 * 0.5)),  # 8
        ("manhattan", -np.sqrt(2) * 1 / np.sqrt(0.5) + np.sqrt(2) * 3 / np.sqrt(0.5)),
        # m = (0 + 4 + 16 + 20) / 4 = 10, cosine distances 1 - 1/sqrt(2) and
        # 1 - 5/sqrt(34)
        ("cosine", -10 * (1 - 1 / np.sqrt(2)) / 0.5 + 10 * (1 - 5 / np.sqrt(34)) / 0.5),
    ],
)
def test_probability_models_known_answers(metric, expected):
    clf = NearestMeanImageClassifier(metric=metric).fit(X_UNIT, Y_UNIT)
    assert clf.within_class_std_ == pytest.approx(np.sqrt(0.5), rel=1e-12)
    proba = clf.predict_proba([[1.0, 1.0]])
    assert_allclose(proba[0, 0], 1 / (1 + np.exp(-expected)), rtol=1e-9)
    assert_allclose(clf.decision_function([[1.0, 1.0]]), [-expected], rtol=1e-9)


@pytest.mark.parametrize("metric", METRICS)
def test_probability_models_follow_their_formulas(metric):
    """predict_proba, predict_log_proba and decision_function against the
    documented model, computed independently, with non-uniform priors."""
    rng = np.random.RandomState(0)
    centers = rng.uniform(1, 5, size=(3, 4))
    y = rng.randint(0, 3, size=300)
    X = centers[y] + 0.8 * rng.randn(300, 4)
    priors = np.array([0.5, 0.3, 0.2])
    clf = NearestMeanImageClassifier(metric=metric, priors=priors).fit(X, y)
    centroids = np.stack([X[y == k].mean(axis=0) for k in range(3)])
    s2 = ((X - centroids[y]) ** 2).sum() / X.size  # pooled, per feature
    mean_sq_norm = (X**2).sum(axis=1).mean()
    T = centers[[0, 1, 2, 0]] + rng.randn(4, 4)
    log_post = _log_likelihoods(metric, T, centroids, s2, mean_sq_norm)
    log_post += np.log(priors)
    log_proba = log_post - np.logaddexp.reduce(log_post, axis=1, keepdims=True)
    assert_allclose(clf.predict_log_proba(T), log_proba, rtol=1e-9, atol=1e-9)
    assert_allclose(clf.predict_proba(T), np.exp(log_proba), rtol=1e-9, atol=1e-12)
    scores = clf.decision_function(T)  # the log posterior, up to a constant
    assert_allclose(
        scores - scores.mean(axis=1, keepdims=True),
        log_post - log_post.mean(axis=1, keepdims=True),
        rtol=1e-9,
        atol=1e-9,
    )


def test_decision_function_scale_against_nearest_centroid():
    """Documented difference: scikit-learn's NearestCentroid.decision_function
    is ESL's discriminant with per-feature variances over n - n_classes rows;
    ours is our log posterior. With equal per-feature variances, ours is
    n / (2 (n - n_classes)) times theirs: 0.75 on scikit-learn's toy data."""
    X = np.array([[-2, -1], [-1, -1], [-1, -2], [1, 1], [1, 2], [2, 1]], float)
    y = np.array([-1, -1, -1, 1, 1, 1])
    T = np.array([[-1, -1], [2, 2], [3, 2]], float)
    ref = NearestCentroid().fit(X, y)
    assert_allclose(ref.within_class_std_dev_, ref.within_class_std_dev_[0])
    ours = NearestMeanImageClassifier().fit(X, y)
    n, n_classes = len(X), 2
    assert_allclose(
        ours.decision_function(T),
        n / (2 * (n - n_classes)) * ref.decision_function(T),
        rtol=1e-12,
    )
    assert_array_equal(ours.predict(T), ref.predict(T))


def test_binary_decision_function_is_one_dimensional():
    clf = NearestMeanImageClassifier().fit(X_TOY, Y_TOY)
    scores = clf.decision_function(T_TOY)
    assert scores.shape == (3,)
    assert_array_equal(clf.classes_[(scores > 0).astype(int)], clf.predict(T_TOY))


def test_identical_rows_keep_probabilities_defined():
    X = np.array([[0, 0], [0, 0], [9, 9], [9, 9]])
    clf = NearestMeanImageClassifier().fit(X, [0, 0, 1, 1])
    proba = clf.predict_proba([[1, 1], [8, 8]])
    assert np.isfinite(proba).all()
    assert_array_equal(proba.argmax(axis=1), [0, 1])


# ------------------------------------------------- many classes, ties, reductions
def _twin_classes(n_pairs=150, n_features=30):
    """Classes in twins: 2j and 2j + 1 have the same rows, so each twin's
    distances, log posteriors and probabilities are tied."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=(4 * n_pairs, n_features), dtype=np.uint8)
    labels = np.repeat(np.arange(n_pairs), 4)
    X = np.concatenate([base, base])
    y = np.concatenate([2 * labels, 2 * labels + 1])
    T = rng.integers(0, 256, size=(200, n_features), dtype=np.uint8)
    return X, y, T


def _twin_priors(n_pairs=150):
    prior = np.repeat(np.random.default_rng(1).uniform(1, 2, n_pairs), 2)
    return prior / prior.sum()


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("priors", ["uniform", "twins"])
def test_predict_is_argmax_of_proba_ties_included(metric, priors):
    X, y, T = _twin_classes()
    priors = _twin_priors() if priors == "twins" else priors
    clf = NearestMeanImageClassifier(metric=metric, priors=priors).fit(X, y)
    pred = clf.predict(T)
    assert_array_equal(pred, clf.classes_[clf.predict_proba(T).argmax(axis=1)])
    assert_array_equal(pred, clf.classes_[clf.decision_function(T).argmax(axis=1)])
    assert (pred % 2 == 0).all()  # the first of the tied twins, as np.argmax


@pytest.mark.parametrize("priors", ["uniform", [0.4, 0.6]])
def test_predict_is_argmax_of_proba_at_near_ties(priors):
    # Far apart rows make within_class_std_ about 1e9: the distances 0.9 and
    # 0.1 give log posteriors that round to the same value, and proba to
    # [0.5, 0.5], whose argmax is the first class, not the nearer one.
    s = 1e9
    X = np.array([[-s], [s], [1 - s], [1 + s]])
    clf = NearestMeanImageClassifier(priors=priors).fit(X, [0, 0, 1, 1])
    T = np.array([[0.9], [0.1], [0.5], [0.6], [0.4], [2.0], [-1.0]])
    assert_array_equal(clf.predict(T), clf.predict_proba(T).argmax(axis=1))


def _far_and_near_classes(n_rows=200, n_test=2_000):
    """Two dark classes a little apart and a bright one: centred on the
    centroids' mean, dark rows are far from the origin, and float32's
    expansion of their distances cannot tell the dark classes apart."""
    rng = np.random.default_rng(0)
    A = rng.integers(0, 5, (n_rows, 784))
    B = rng.integers(0, 5, (n_rows, 784))
    B[:, :10] += 1
    bright = rng.integers(250, 256, (n_rows, 784))
    X = np.concatenate([A, B, bright]).astype(np.uint8)
    T = rng.integers(0, 5, (n_test, 784)).astype(np.uint8)
    T[: n_test // 2, :10] += 1
    return X, np.repeat([0, 1, 2], n_rows), T


@pytest.mark.parametrize("metric", ["euclidean", "manhattan"])
@pytest.mark.parametrize("batch_size", ["auto", 333])
def test_float32_labels_equal_float64_for_classes_far_from_the_origin(
    metric, batch_size
):
    """README: euclidean predict is float64's nearest centroid; manhattan is
    not refined (its labels may differ from float64's where the classes are
    within float32's rounding), but every method still agrees with predict."""
    X, y, T = _far_and_near_classes()
    clf = NearestMeanImageClassifier(metric=metric, batch_size=batch_size).fit(X, y)
    exact = pairwise_distances(T.astype(np.float64), clf.centroids_, metric=metric)
    pred = clf.predict(T)
    if metric == "euclidean":
        assert_array_equal(pred, exact.argmin(axis=1))
    assert_array_equal(pred, clf.predict_proba(T).argmax(axis=1))
    assert_array_equal(pred, clf.decision_function(T).argmax(axis=1))
    assert_array_equal(pred, clf.transform(T).argmin(axis=1))


def _separated_classes(n_classes=300, n_features=40, n_rows=3_000):
    rng = np.random.default_rng(0)
    prototypes = rng.integers(20, 236, size=(n_classes, n_features))
    y = rng.permutation(np.arange(n_rows) % n_classes)
    noise = rng.integers(-20, 21, size=(n_rows, n_features))
    X = (prototypes[y] + noise).astype(np.uint8)
    return X[:2_400], y[:2_400], X[2_400:]


def _numpy_distances(T, centroids, metric):
    A = T.astype(np.float64)
    if metric == "euclidean":
        return np.sqrt(((A[:, None] - centroids[None]) ** 2).sum(-1))
    if metric == "manhattan":
        return np.abs(A[:, None] - centroids[None]).sum(-1)
    unit = A / np.linalg.norm(A, axis=1, keepdims=True)
    return 1 - unit @ (centroids / np.linalg.norm(centroids, axis=1)[:, None]).T


@pytest.mark.parametrize("metric", METRICS)
def test_predict_is_the_nearest_centroid_with_many_classes(metric):
    X, y, T = _separated_classes()
    clf = NearestMeanImageClassifier(metric=metric).fit(X, y)
    nearest = _numpy_distances(T, clf.centroids_, metric).argmin(axis=1)
    assert_array_equal(clf.predict(T), clf.classes_[nearest])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("priors", ["uniform", "empirical", "random"])
def test_device_reductions_equal_a_float64_numpy_reference(metric, priors):
    # From the estimator's own distances, the documented model in numpy.
    X, y, T = _separated_classes()
    if priors == "random":
        priors = np.random.default_rng(2).dirichlet(np.ones(300))
    clf = NearestMeanImageClassifier(metric=metric, priors=priors).fit(X, y)
    d, s = clf.transform(T), clf.within_class_std_
    if metric == "euclidean":
        log_lik = -(d**2) / (2 * s**2)
    elif metric == "manhattan":
        log_lik = -np.sqrt(2) * d / s
    else:
        mean_sq_norm = (X.astype(np.float64) ** 2).sum(axis=1).mean()
        log_lik = -mean_sq_norm * d / s**2
    scores = log_lik + np.log(clf.class_prior_)
    log_proba = scores - scores.max(axis=1, keepdims=True)
    log_proba -= np.log(np.exp(log_proba).sum(axis=1, keepdims=True))
    assert_allclose(clf.decision_function(T), scores, rtol=1e-12)
    assert_allclose(clf.predict_log_proba(T), log_proba, rtol=1e-9, atol=1e-12)
    assert_allclose(clf.predict_proba(T), np.exp(log_proba), rtol=1e-9, atol=1e-15)
    assert_array_equal(clf.predict(T), clf.classes_[scores.argmax(axis=1)])


@pytest.mark.parametrize("priors", ["uniform", "empirical"])
def test_predict_computes_no_probability(monkeypatch, priors):
    X, y, T = _separated_classes()
    clf = NearestMeanImageClassifier(priors=priors).fit(X, y)
    expected = clf.classes_[clf.predict_proba(T).argmax(axis=1)]

    def forbidden(*args, **kwargs):
        raise AssertionError("predict computed probabilities")

    for name in ("softmax", "log_softmax", "exp", "logsumexp"):
        monkeypatch.setattr(torch, name, forbidden)
    monkeypatch.setattr(torch.Tensor, "exp", forbidden)
    monkeypatch.setattr(torch.Tensor, "exp_", forbidden)
    monkeypatch.setattr(np, "exp", forbidden)
    assert_array_equal(clf.predict(T), expected)


# ------------------------------------------------------------ partial_fit, weights
@pytest.mark.parametrize("metric", METRICS)
def test_partial_fit_over_any_split_equals_fit(digits, metric):
    X_train, X_test, y_train, _ = digits
    full = NearestMeanImageClassifier(metric=metric).fit(X_train, y_train)
    rng = np.random.RandomState(42)
    order = rng.permutation(len(X_train))
    cuts = np.sort(rng.choice(len(X_train), size=5, replace=False))
    inc = NearestMeanImageClassifier(metric=metric)
    for part in np.split(order, cuts):
        if len(part):
            inc.partial_fit(X_train[part], y_train[part], classes=np.arange(10))
    assert_allclose(inc.centroids_, full.centroids_, rtol=1e-12)
    assert_allclose(inc.class_count_, full.class_count_)
    # Squares are summed per chunk in float32 for uint8 input.
    assert inc.within_class_std_ == pytest.approx(full.within_class_std_, rel=1e-6)
    assert_allclose(inc.predict_proba(X_test), full.predict_proba(X_test), atol=1e-8)


def test_partial_fit_classes_not_seen_yet_are_never_predicted():
    clf = NearestMeanImageClassifier()
    clf.partial_fit(X_TOY[:2], Y_TOY[:2], classes=[3, 7, 9])
    assert np.isnan(clf.centroids_[1:]).all()
    assert_array_equal(clf.class_count_, [2, 0, 0])
    assert_array_equal(clf.predict(T_TOY), [3, 3, 3])
    proba = clf.predict_proba(T_TOY)
    assert_allclose(proba, [[1, 0, 0]] * 3)
    clf.partial_fit(X_TOY[2:], Y_TOY[2:])
    assert_array_equal(clf.predict(T_TOY), [3, 7, 7])


def test_partial_fit_errors():
    clf = NearestMeanImageClassifier()
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X_TOY, Y_TOY)
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.partial_fit(X_TOY, [3, 3, 3, 3], classes=[3])
    clf = NearestMeanImageClassifier().partial_fit(X_TOY, Y_TOY, classes=[3, 7])
    with pytest.raises(ValueError, match=r"labels \[5\] that are not in classes"):
        clf.partial_fit(X_TOY, [3, 5, 7, 7])
    with pytest.raises(ValueError, match="is not the same as the classes"):
        clf.partial_fit(X_TOY, Y_TOY, classes=[3, 7, 8])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(np.zeros((2, 3)), [3, 7])


def test_integer_weights_equal_repeated_rows(digits):
    X_train, X_test, y_train, _ = digits
    weights = np.random.RandomState(0).randint(0, 4, size=len(X_train))
    weighted = NearestMeanImageClassifier().fit(X_train, y_train, weights)
    repeated = NearestMeanImageClassifier().fit(
        np.repeat(X_train, weights, axis=0), np.repeat(y_train, weights)
    )
    assert_allclose(weighted.centroids_, repeated.centroids_, rtol=1e-12)
    assert_allclose(weighted.class_count_, repeated.class_count_)
    assert weighted.within_class_std_ == pytest.approx(repeated.within_class_std_)
    assert_allclose(
        weighted.predict_proba(X_test), repeated.predict_proba(X_test), atol=1e-10
    )


def test_zero_weights_drop_rows():
    X = np.vstack([X_TOY, [[255, 0], [0, 255]]])
    y = np.concatenate([Y_TOY, [3, 7]])
    clf = NearestMeanImageClassifier().fit(X, y, sample_weight=[1, 1, 1, 1, 0, 0])
    assert_allclose(clf.centroids_, CENTROIDS_TOY)


def test_bad_sample_weight():
    clf = NearestMeanImageClassifier()
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        clf.fit(X_TOY, Y_TOY, sample_weight=[1, -1, 1, 1])
    with pytest.raises(ValueError, match="non-zero|zero for every sample"):
        clf.fit(X_TOY, Y_TOY, sample_weight=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="sample_weight.shape"):
        clf.fit(X_TOY, Y_TOY, sample_weight=[1, 1])


# ------------------------------------------------------------------------ inputs
def test_input_types_give_the_same_model(digits):
    pd = pytest.importorskip("pandas")
    X_train, X_test, y_train, _ = digits
    ref = NearestMeanImageClassifier().fit(X_train, y_train)
    expected = ref.predict(X_test)
    names = [f"px{i}" for i in range(X_train.shape[1])]
    inputs = [
        (X_train.astype(np.float32), X_test.astype(np.float32)),
        (X_train.tolist(), X_test.tolist()),
        (torch.from_numpy(X_train), torch.from_numpy(X_test)),
        (pd.DataFrame(X_train, columns=names), pd.DataFrame(X_test, columns=names)),
    ]
    for X_fit, X_pred in inputs:
        clf = NearestMeanImageClassifier().fit(X_fit, y_train)
        assert_allclose(clf.centroids_, ref.centroids_)
        pred = clf.predict(X_pred)
        assert isinstance(pred, np.ndarray)
        assert_array_equal(pred, expected)
    assert_array_equal(clf.feature_names_in_, names)
    assert_array_equal(
        clf.get_feature_names_out(),
        [f"nearestmeanimageclassifier{i}" for i in range(10)],
    )


def test_string_labels():
    labels = np.array(["three", "three", "seven", "seven"])
    clf = NearestMeanImageClassifier().fit(X_TOY, labels)
    assert_array_equal(clf.classes_, ["seven", "three"])
    assert_array_equal(clf.predict(T_TOY), ["three", "seven", "seven"])


def test_torch_tensor_labels_and_grad_tensors():
    X = torch.tensor(X_TOY, dtype=torch.float32, requires_grad=True)
    clf = NearestMeanImageClassifier().fit(X, torch.tensor(Y_TOY))
    assert_array_equal(clf.classes_, [3, 7])
    assert_array_equal(clf.predict(torch.from_numpy(T_TOY)), TRUE_TOY)


def test_read_only_and_memory_mapped_input(tmp_path, digits):
    X_train, X_test, y_train, _ = digits
    path = tmp_path / "X.npy"
    np.save(path, X_train)
    mapped = np.load(path, mmap_mode="r")
    ref = NearestMeanImageClassifier().fit(X_train, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = NearestMeanImageClassifier(batch_size=100).fit(mapped, y_train)
        assert_allclose(clf.centroids_, ref.centroids_)
        assert_array_equal(clf.predict(X_test), ref.predict(X_test))


@pytest.fixture
def torch_warns_every_time():
    """torch warns of a non-writable array once per process; make it warn
    every time, so that a test cannot pass because another test warned first."""
    before = torch.is_warn_always_enabled()
    torch.set_warn_always(True)
    yield
    torch.set_warn_always(before)


def test_read_only_float_input_fits_without_warnings(
    tmp_path, digits, torch_warns_every_time
):
    """Memory maps and pandas 3 DataFrames give read-only float64 arrays; their
    first row (the shift of the sums) and read-only weights reached torch."""
    X_train, X_test, y_train, _ = digits
    X = X_train.astype(np.float64)
    np.save(tmp_path / "X.npy", X)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    weights = np.ones(len(X))
    weights.flags.writeable = False
    inputs = [mapped, mapped.astype(np.float32)]
    inputs[1].flags.writeable = False
    pd = None
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is optional
        pass
    if pd is not None:
        inputs.append(pd.DataFrame(X))
    ref = NearestMeanImageClassifier().fit(X, y_train)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for data in inputs:
            for metric in METRICS:
                clf = NearestMeanImageClassifier(metric=metric)
                clf.fit(data, y_train, sample_weight=weights)
                clf.partial_fit(data, y_train)
                clf.predict_proba(data)
            clf = NearestMeanImageClassifier(centroid="median", shrink_threshold=0.1)
            clf.fit(data, y_train, sample_weight=weights).predict(X_test)
    clf = NearestMeanImageClassifier().fit(mapped, y_train)
    assert_allclose(clf.centroids_, ref.centroids_, rtol=1e-12)
    assert clf._stats["shift"].flags.writeable  # a copy, not a view of the map


# ---------------------------------------------------------------- sklearn tools
def test_pipeline_gridsearch_cross_val_score(digits):
    X_train, X_test, y_train, y_test = digits
    pipe = make_pipeline(
        FunctionTransformer(lambda X: X / 255), NearestMeanImageClassifier()
    )
    pipe.fit(X_train, y_train)
    direct = NearestMeanImageClassifier().fit(X_train, y_train)
    assert_array_equal(pipe.predict(X_test), direct.predict(X_test))

    scaled = make_pipeline(StandardScaler(), NearestMeanImageClassifier())
    assert scaled.fit(X_train, y_train).score(X_test, y_test) > 0.85

    search = GridSearchCV(
        NearestMeanImageClassifier(), {"metric": METRICS}, cv=3, n_jobs=2
    ).fit(X_train, y_train)
    assert search.best_params_["metric"] in METRICS
    assert search.cv_results_["mean_test_score"].min() > 0.8
    assert search.score(X_test, y_test) > 0.85

    scores = cross_val_score(pipe, X_train, y_train, cv=5)
    assert scores.shape == (5,)
    assert scores.min() > 0.8


def test_joblib_round_trip_predicts_identically(tmp_path, digits):
    X_train, X_test, y_train, _ = digits
    for metric in METRICS:
        clf = NearestMeanImageClassifier(metric=metric).fit(X_train, y_train)
        before = clf.predict_proba(X_test)  # builds the device cache first
        path = tmp_path / f"{metric}.joblib"
        joblib.dump(clf, path)
        loaded = joblib.load(path)
        assert not loaded.centroids_.flags.writeable
        assert not pickle.loads(pickle.dumps(clf)).centroids_.flags.writeable
        assert_array_equal(loaded.predict_proba(X_test), before)
        assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def _pickled_modules(obj):
    """Modules named by GLOBAL/STACK_GLOBAL opcodes of a pickle of ``obj``."""
    data = pickle.dumps(obj)
    out = io.StringIO()
    pickletools.dis(data, out=out)
    return out.getvalue()


def test_pickle_holds_no_torch_tensor(digits):
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier().fit(X_train, y_train)
    clf.predict(X_test)
    listing = _pickled_modules(clf)
    assert "torch" not in listing
    assert "sk_template._classifier" in listing


def test_pickle_of_a_model_with_class_stats_loads_and_keeps_learning():
    # Earlier versions pickled the fitted sums as a ClassStats object; such a
    # pickle loads into the plain arrays this version keeps.
    from sk_template._core import ClassStats

    old = NearestMeanImageClassifier().partial_fit(X_TOY[:3], Y_TOY[:3], [3, 7])
    old._stats = ClassStats(**old._stats)
    loaded = pickle.loads(pickle.dumps(old))
    assert type(loaded._stats) is dict
    loaded.partial_fit(X_TOY[3:], Y_TOY[3:])
    assert_array_equal(loaded.centroids_, CENTROIDS_TOY)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_fitted_for_cuda_loads_on_cpu_with_a_warning(digits):
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier().fit(X_train, y_train)
    expected = clf.predict(X_test)
    # What a model fitted with device="cuda" looks like once pickled: numpy
    # state and the parameter.
    clf.device = "cuda"
    data = pickle.dumps(clf)
    with pytest.warns(UserWarning, match="device='cuda', which is not available"):
        loaded = pickle.loads(data)
    assert loaded.device == "cpu"
    assert_array_equal(loaded.predict(X_test), expected)


# -------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "X, y, match",
    [
        ([[0.0, np.nan], [1, 1]], [0, 1], "Input X contains NaN"),
        ([[0.0, np.inf], [1, 1]], [0, 1], "Input X contains infinity"),
        ([0, 1, 2, 3], [0, 0, 1, 1], "Expected 2D array, got 1D array"),
        (np.zeros((0, 4)), [], "0 sample"),
        (X_TOY, [3, 3, 3, 3], "at least 2 classes"),
        (X_TOY, [0.5, 1.5, 2.5, 3.5], "Unknown label type"),
        (X_TOY, [3, 7], "inconsistent numbers of samples"),
        ([["a", "b"], ["c", "d"]], [0, 1], "dtype='numeric' is not compatible"),
    ],
)
def test_bad_fit_input(X, y, match):
    with pytest.raises(ValueError, match=match):
        NearestMeanImageClassifier().fit(X, y)


def test_wrong_feature_count_at_predict():
    clf = NearestMeanImageClassifier().fit(X_TOY, Y_TOY)
    with pytest.raises(ValueError, match="X has 3 features, but .* expecting 2"):
        clf.predict(np.zeros((1, 3)))


def test_predict_before_fit():
    with pytest.raises(NotFittedError):
        NearestMeanImageClassifier().predict(X_TOY)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"metric": "chebyshev"}, "'metric' parameter .* must be a str among"),
        ({"batch_size": -1}, "'batch_size' parameter .* must be an int in the range"),
        ({"batch_size": 0}, "'batch_size' parameter"),
        ({"batch_size": 2.5}, "'batch_size' parameter"),
        ({"device": "tpu"}, "device='tpu' is not a device torch knows"),
        ({"device": 3}, "'device' parameter"),
    ],
)
def test_bad_parameters(params, match):
    with pytest.raises(ValueError, match=match):
        NearestMeanImageClassifier(**params).fit(X_TOY, Y_TOY)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1", torch.device("cuda")])
def test_absent_device_is_a_clear_error(device):
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        NearestMeanImageClassifier(device=device).fit(X_TOY, Y_TOY)


def test_auto_device_resolves_to_something_present(digits):
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier(device="auto").fit(X_train, y_train)
    ref = NearestMeanImageClassifier().fit(X_train, y_train)
    assert_array_equal(clf.predict(X_test), ref.predict(X_test))


# ------------------------------------------------------------------------- CUDA
@needs_cuda
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("batch_size", ["auto", 97])  # 97: many chunks in flight
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_cuda_matches_cpu(digits, metric, batch_size, dtype):
    X_train, X_test, y_train, _ = digits
    X_train, X_test = X_train.astype(dtype), X_test.astype(dtype)
    cpu = NearestMeanImageClassifier(metric=metric).fit(X_train, y_train)
    gpu = NearestMeanImageClassifier(
        metric=metric, device="cuda", batch_size=batch_size
    )
    gpu.fit(X_train, y_train)
    assert_allclose(gpu.centroids_, cpu.centroids_, rtol=1e-10)
    assert_allclose(gpu.transform(X_test), cpu.transform(X_test), rtol=1e-5)
    assert_array_equal(gpu.predict(X_test), cpu.predict(X_test))
    # CUDA tensors in, numpy out.
    X_gpu = torch.from_numpy(X_test).cuda()
    pred = gpu.predict(X_gpu)
    assert isinstance(pred, np.ndarray)
    assert_array_equal(pred, cpu.predict(X_test))
    fitted_on_gpu = NearestMeanImageClassifier(metric=metric).fit(
        torch.from_numpy(X_train).cuda(), torch.from_numpy(y_train).cuda()
    )
    assert_allclose(fitted_on_gpu.centroids_, cpu.centroids_, rtol=1e-10)


@needs_cuda
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("priors", ["uniform", "empirical"])
def test_cuda_reductions_match_cpu_with_many_classes(metric, priors):
    X, y, T = _separated_classes()
    cpu = NearestMeanImageClassifier(metric=metric, priors=priors).fit(X, y)
    gpu = NearestMeanImageClassifier(
        metric=metric, priors=priors, device="cuda", batch_size=97
    ).fit(X, y)
    assert_array_equal(gpu.predict(T), cpu.predict(T))
    assert_allclose(gpu.decision_function(T), cpu.decision_function(T), rtol=1e-5)
    assert_allclose(gpu.predict_proba(T), cpu.predict_proba(T), atol=1e-6)
    assert_allclose(gpu.transform(T), cpu.transform(T), rtol=1e-5)


@needs_cuda
def test_cuda_model_pickles_without_tensors(digits):
    X_train, X_test, y_train, _ = digits
    clf = NearestMeanImageClassifier(device="cuda").fit(X_train, y_train)
    clf.predict(X_test)
    assert "torch" not in _pickled_modules(clf)


@needs_cuda
def test_cuda_tensor_with_nan_is_rejected():
    X = torch.tensor([[0.0, float("nan")], [1.0, 1.0]], device="cuda")
    with pytest.raises(ValueError, match="Input X contains NaN"):
        NearestMeanImageClassifier(device="cuda").fit(X, [0, 1])


# ----------------------------------------------------------------- real MNIST


def test_mnist_equals_nearest_centroid(mnist):
    (X_train, y_train), (X_test, y_test) = mnist
    ours = NearestMeanImageClassifier().fit(X_train, y_train)
    ref = NearestCentroid(metric="euclidean").fit(X_train, y_train)
    assert_allclose(ours.centroids_, ref.centroids_, rtol=1e-12)
    for X in (X_train, X_test):
        assert_array_equal(ours.predict(X), ref.predict(X))
    # The well-known accuracy of nearest mean on MNIST.
    assert ours.score(X_test, y_test) == pytest.approx(0.8203, abs=1e-4)


# ------------------------------------------------- precision and fitted state
def test_float32_data_far_from_zero_keeps_its_spread():
    # float32 values near 1000 with a spread of 0.01: sums of squares about
    # zero would cancel; about a reference row they keep their precision.
    rng = np.random.RandomState(0)
    X = (1000 + 0.01 * rng.randn(400, 3)).astype(np.float32)
    y = np.repeat([0, 1], 200)
    X[y == 1] += np.float32(0.02)
    ours = NearestMeanImageClassifier().fit(X, y)
    ref = NearestCentroid().fit(X, y)
    assert_allclose(ours.within_class_std_dev_, ref.within_class_std_dev_, rtol=1e-3)
    assert ours.within_class_std_ == pytest.approx(0.01, rel=0.1)
    assert_array_equal(ours.predict(X), ref.predict(X))
    proba = ours.predict_proba(X)
    assert proba.max(axis=1).mean() > 0.6  # not 0.5 everywhere


def test_large_integers_are_computed_in_float64():
    X = np.array([[10**9], [10**9 + 2], [10**9 + 20], [10**9 + 22]], dtype=np.int64)
    y = [0, 0, 1, 1]
    ours = NearestMeanImageClassifier().fit(X, y)
    assert_allclose(ours.centroids_.ravel(), [10**9 + 1, 10**9 + 21])
    assert_array_equal(ours.predict(X), NearestCentroid().fit(X, y).predict(X))


def _distance_errors(metric, X, clf):
    """|ours - pairwise_distances in float64|, over the README's scale."""
    from sk_template._core._refine import expansion_error as _expansion_error

    ours = clf.transform(X)
    ref = pairwise_distances(X.astype(np.float64), clf.centroids_, metric=metric)
    if metric == "cosine":  # absolute: its distances lie in [0, 2]
        return np.abs(ours - ref)
    # Against the norms of the rows and centroids less the centroids' mean.
    m = clf.centroids_.mean(axis=0)
    Xs, Cs = X.astype(np.float64) - m, clf.centroids_ - m
    tolerance = _expansion_error(X.shape[1], torch.float32)
    if metric == "euclidean":  # on the squared distance
        scale = (np.linalg.norm(Xs, axis=1)[:, None] + np.linalg.norm(Cs, axis=1)) ** 2
        return np.abs(ours**2 - ref**2) / (tolerance * scale)
    scale = np.abs(Xs).sum(1)[:, None] + np.abs(Cs).sum(1)[None]
    return np.abs(ours - ref) / (3 * tolerance * scale)


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize(
    "data", ["digits", "random 28x28", "far from the origin", "MNIST"]
)
def test_float32_distances_are_within_the_documented_bounds(
    request, digits, metric, data
):
    """README: in float32 (uint8 images), against pairwise_distances in float64,
    with m the centroids' mean and g = (n + 8) 2**-24 / (1 - (n + 8) 2**-24):
    euclidean |d^2 error| <= g (|x - m| + |c - m|)^2, manhattan |error| <=
    3 g (|x - m|_1 + |c - m|_1); cosine |error| <= 1e-6 (measured); rows
    equal to a rounded centroid included, where relative errors are
    largest."""
    rng = np.random.RandomState(0)
    if data == "digits":
        X, _, y, _ = digits
    elif data == "random 28x28":
        X = rng.randint(0, 256, size=(3000, 784)).astype(np.uint8)
        X[: len(X) // 2] //= 2
        y = np.repeat([0, 1, 2], 1000)
    elif data == "far from the origin":
        X, y, X_test = _far_and_near_classes()
    else:  # skipped when the real MNIST is absent
        (X, y), (X_test, _) = request.getfixturevalue("mnist")
    clf = NearestMeanImageClassifier(metric=metric).fit(X, y)
    near = np.round(clf.centroids_).astype(np.uint8)
    T = np.concatenate(
        [X_test if data in ("MNIST", "far from the origin") else X, near]
    )
    assert clf.transform(T[:1]).dtype == np.float64
    assert _distance_errors(metric, T, clf).max() <= (1e-6 if metric == "cosine" else 1)


def test_integer_images_fit_exactly_however_split(digits):
    """README: partial_fit, integer weights, batch_size and fit_blocks give
    exactly the model fit gives for integer images: the sums are exact."""
    from sk_template import fit_blocks

    X, _, y, _ = digits
    full = NearestMeanImageClassifier().fit(X, y)
    rng = np.random.RandomState(0)
    models = []
    inc = NearestMeanImageClassifier()
    for part in np.array_split(rng.permutation(len(X)), 5):
        inc.partial_fit(X[part], y[part], classes=np.arange(10))
    models.append(inc)
    models += [NearestMeanImageClassifier(batch_size=b).fit(X, y) for b in (1, 7, 100)]
    blocks = [(X[i::4], y[i::4]) for i in range(4)]
    models.append(fit_blocks(NearestMeanImageClassifier(), blocks, classes=range(10)))
    for model in models:
        assert_array_equal(model.centroids_, full.centroids_)
        assert model.within_class_std_ == full.within_class_std_
    # Integer weights: exact sums of weighted pixels while a chunk's sums stay
    # below 2**24 (here 1,257 rows * 255 * 3); weighted squares are rounded.
    w = rng.randint(0, 4, size=len(X))
    weighted = NearestMeanImageClassifier().fit(X, y, sample_weight=w)
    repeated = NearestMeanImageClassifier().fit(np.repeat(X, w, 0), np.repeat(y, w))
    assert_array_equal(weighted.centroids_, repeated.centroids_)
    assert weighted.within_class_std_ == pytest.approx(repeated.within_class_std_)


@pytest.mark.parametrize("batch_size", ["auto", 100, 65536])
def test_float32_centroids_are_within_the_documented_bound(batch_size):
    """README: float32 input's chunk sums are rounded in float32, so each way
    of fitting is within (rows per chunk) * 2**-24 * (the data's range) of the
    exact mean, and they agree with each other to that, not exactly."""
    from sk_template import fit_blocks
    from sk_template._core import batch_rows

    rng = np.random.RandomState(0)
    X = rng.rand(20_000, 16).astype(np.float32)
    y = rng.randint(0, 3, size=len(X))
    w = rng.randint(0, 4, size=len(X))
    rows = min(batch_rows(batch_size, X.shape[1], fit=True), 65536, len(X))
    bound = rows * 2.0**-24 * np.abs(X - X[0]).max()
    Xd = X.astype(np.float64)
    exact = np.stack([Xd[y == k].mean(axis=0) for k in range(3)])
    exact_w = np.stack([np.average(Xd[y == k], 0, w[y == k]) for k in range(3)])
    make = lambda: NearestMeanImageClassifier(batch_size=batch_size)  # noqa: E731
    inc = make()
    for part in np.array_split(rng.permutation(len(X)), 3):
        inc.partial_fit(X[part], y[part], classes=range(3))
    blocks = [(X[i::3], y[i::3]) for i in range(3)]
    for model in (make().fit(X, y), inc, fit_blocks(make(), blocks, classes=range(3))):
        assert np.abs(model.centroids_ - exact).max() <= bound
    weighted = make().fit(X, y, sample_weight=w)
    assert np.abs(weighted.centroids_ - exact_w).max() <= bound


# README: bool, 8-bit integers and floats of up to 32 bits are computed in
# float32, the rest (16-bit integers included) in float64.
IN_FLOAT32 = [np.uint8, np.int8, np.bool_, np.float16, np.float32]
IN_FLOAT64 = [np.uint16, np.int16, np.int32, np.int64, np.uint32, np.uint64, np.float64]


@pytest.mark.parametrize("dtype", IN_FLOAT32 + IN_FLOAT64)
def test_compute_dtype_is_the_documented_one(dtype):
    from sk_template._core import compute_dtype

    expected = torch.float32 if dtype in IN_FLOAT32 else torch.float64
    assert compute_dtype(np.zeros((2, 3), dtype), torch.device("cpu")) == expected


@pytest.mark.parametrize("dtype", [np.uint16, np.int16])
def test_16_bit_images_fit_exactly_however_split(dtype):
    # Their squares (up to 65535**2) do not sum exactly in float32: the
    # centroids and spread would depend on batch_size and on the split.
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    X = rng.integers(info.max - 5000, info.max, size=(3000, 4), dtype=dtype)
    y = rng.integers(0, 2, len(X))
    exact = np.stack([X[y == k].astype(np.float64).mean(axis=0) for k in (0, 1)])
    full = NearestMeanImageClassifier().fit(X, y)
    assert_array_equal(full.centroids_, exact)
    inc = NearestMeanImageClassifier()
    inc.partial_fit(X[:1500], y[:1500], classes=[0, 1])
    inc.partial_fit(X[1500:], y[1500:])
    for model in (NearestMeanImageClassifier(batch_size=1).fit(X, y), inc):
        assert_array_equal(model.centroids_, full.centroids_)
        assert model.within_class_std_ == pytest.approx(
            full.within_class_std_, rel=1e-12
        )


@pytest.mark.parametrize(
    "view",
    [lambda a: a[::-1], lambda a: a[:, ::-1], lambda a: a[::-2, ::-1]],
    ids=["rows reversed", "columns reversed", "both, stepped"],
)
@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
def test_negative_strides(view, dtype):
    X = np.concatenate([X_TOY, X_TOY + 1]).astype(dtype)
    y = np.concatenate([Y_TOY, Y_TOY])
    Xv, yv = view(X), view(y[:, None])[:, 0]
    ours = NearestMeanImageClassifier().fit(Xv, yv)
    ref = NearestMeanImageClassifier().fit(np.ascontiguousarray(Xv), yv)
    assert_array_equal(ours.centroids_, ref.centroids_)
    assert_array_equal(ours.predict(Xv), ref.predict(np.ascontiguousarray(Xv)))
    assert_array_equal(ours.transform(Xv), ref.transform(np.ascontiguousarray(Xv)))


def test_big_user_chunks_sum_exactly():
    # 200,000 rows of 255 in one chunk: float32 sums over more than 2**24/255
    # rows would drift; fitting caps its chunks so they stay exact.
    X = np.full((200_000, 2), 255, dtype=np.uint8)
    y = np.arange(200_000) % 2
    clf = NearestMeanImageClassifier(batch_size=200_000).fit(X, y)
    assert_array_equal(clf.centroids_, np.full((2, 2), 255.0))


def test_auto_chunks_shrink_for_wide_images():
    from sk_template._core import batch_rows

    assert batch_rows("auto", 784) == 1280  # MNIST: a multiple of 256 rows
    assert batch_rows("auto", 224 * 224 * 3) == 6  # about 4 MiB of float32
    assert batch_rows("auto", 10**8) == 1
    # Twice as many on a GPU, where a chunk must keep the device busy.
    assert batch_rows("auto", 784, device="cuda") == 2560
    assert batch_rows("auto", 224 * 224 * 3, device="cuda") == 13
    # fit on a CPU: about 1 MiB of float32, which stays in cache, but at
    # least 64 rows; on a GPU as predict.
    assert batch_rows("auto", 784, fit=True) == 256
    assert batch_rows("auto", 224 * 224 * 3, fit=True) == 64
    assert batch_rows("auto", 784, device="cuda", fit=True) == 2560


def test_failed_fit_leaves_the_previous_model_usable():
    clf = NearestMeanImageClassifier().fit(X_TOY, Y_TOY)
    expected = clf.predict(T_TOY)
    with pytest.raises(ValueError):
        clf.fit(X_TOY, [1, 2, 1, 2], sample_weight=[0, 0, 0, 0])
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X_TOY, [5, 5, 5, 5])
    # A failure after the input is validated: the number of features seen
    # must not change either.
    with pytest.raises(ValueError, match="at least 2 classes"):
        clf.fit(X_TOY[:, :1], [5, 5, 5, 5])
    assert clf.n_features_in_ == 2
    assert_array_equal(clf.classes_, [3, 7])
    assert_array_equal(clf.predict(T_TOY), expected)


def test_failed_refit_with_other_classes_keeps_every_fitted_attribute():
    # The priors fit the old classes, not the new ones: nothing of the refit
    # may be left behind (classes_ of 3 labels with centroids_ of 2 rows).
    clf = NearestMeanImageClassifier(priors=[0.5, 0.5]).fit(X_TOY, Y_TOY)
    before = {k: v for k, v in vars(clf).items() if k.endswith("_")}
    with pytest.raises(ValueError, match="priors has 2 entries but there are 3"):
        clf.fit(X_TOY[:3], [5, 6, 7])
    after = {k: v for k, v in vars(clf).items() if k.endswith("_")}
    assert after.keys() == before.keys()
    for name, value in before.items():
        assert after[name] is value, name
    assert_array_equal(clf.predict(T_TOY), TRUE_TOY)


def test_failed_first_partial_fit_can_be_retried():
    clf = NearestMeanImageClassifier()
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(X_TOY, [3, 3, 7, 9], classes=[3, 7])
    assert not hasattr(clf, "classes_")
    assert not hasattr(clf, "n_features_in_")
    with pytest.raises(NotFittedError):
        clf.predict(X_TOY)
    clf.partial_fit(X_TOY, Y_TOY, classes=[3, 7])
    assert_allclose(clf.centroids_, CENTROIDS_TOY)


def test_centroids_cannot_be_edited_behind_the_device_cache():
    clf = NearestMeanImageClassifier().fit(X_TOY, Y_TOY)
    clf.predict(T_TOY)
    with pytest.raises(ValueError, match="read-only"):
        clf.centroids_[0] = 0
    # Replacing the array is seen.
    clf.centroids_ = CENTROIDS_TOY[::-1].copy()
    assert_array_equal(clf.predict(T_TOY), [7, 3, 3])


def test_set_params_after_fit_does_not_change_the_fitted_priors():
    clf = NearestMeanImageClassifier(priors=[0.9, 0.1]).fit(X_TOY, Y_TOY)
    before = clf.predict_proba(T_TOY)
    clf.set_params(priors="uniform")
    assert_allclose(clf.predict_proba(T_TOY), before)
    clf.fit(X_TOY, Y_TOY)
    assert_allclose(clf.class_prior_, [0.5, 0.5])


def test_bfloat16_tensor_input():
    X = torch.tensor(X_TOY, dtype=torch.bfloat16)
    clf = NearestMeanImageClassifier().fit(X, Y_TOY)
    assert_array_equal(clf.predict(X), Y_TOY)
