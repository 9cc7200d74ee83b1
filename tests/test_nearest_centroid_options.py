"""scikit-learn NearestCentroid's options: shrink_threshold, priors, median."""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neighbors import NearestCentroid

from sk_template import NearestMeanImageClassifier

# Toy data: two classes, the second with an even number of rows so its
# median is the mean of two middle values.
X_TOY = np.array(
    [[0, 0], [1, 4], [2, 1], [9, 9], [10, 7], [12, 8], [30, 9]], dtype=np.float64
)
Y_TOY = np.array([0, 0, 0, 1, 1, 1, 1])


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def fit_nc(X, y, **params):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*zero standard deviation")
        return NearestCentroid(**params).fit(X, y)


# ---------------------------------------------------------------- median
def test_median_toy_known_answer():
    clf = NearestMeanImageClassifier(metric="manhattan", centroid="median")
    clf.fit(X_TOY, Y_TOY)
    assert_allclose(clf.centroids_, [[1, 1], [11, 8.5]])


def test_median_equals_sklearn_manhattan(digits):
    X_train, X_test, y_train, _ = digits
    ours = NearestMeanImageClassifier(metric="manhattan", centroid="median")
    ours.fit(X_train, y_train)
    ref = fit_nc(X_train, y_train, metric="manhattan")
    assert_allclose(ours.centroids_, ref.centroids_)
    assert_allclose(ours.within_class_std_dev_, ref.within_class_std_dev_)
    assert_array_equal(ours.predict(X_test), ref.predict(X_test))


def test_median_has_no_partial_fit():
    clf = NearestMeanImageClassifier(metric="manhattan", centroid="median")
    assert not hasattr(clf, "partial_fit")
    with pytest.raises(AttributeError, match="no attribute 'partial_fit'") as info:
        clf.partial_fit(X_TOY, Y_TOY, classes=[0, 1])
    # The traceback says why.
    assert "not available with centroid='median'" in str(info.value.__cause__)
    # The same estimator with centroid="mean" learns incrementally.
    clf.set_params(centroid="mean")
    assert hasattr(clf, "partial_fit")


def test_weighted_median_equals_repeated_rows(digits):
    X_train, X_test, y_train, _ = digits
    weights = np.random.RandomState(0).randint(0, 4, size=len(X_train))
    weighted = NearestMeanImageClassifier(metric="manhattan", centroid="median")
    weighted.fit(X_train, y_train, sample_weight=weights)
    repeated = NearestMeanImageClassifier(metric="manhattan", centroid="median")
    repeated.fit(np.repeat(X_train, weights, axis=0), np.repeat(y_train, weights))
    assert_allclose(weighted.centroids_, repeated.centroids_)
    assert_array_equal(weighted.predict(X_test), repeated.predict(X_test))


# ---------------------------------------------------------------- shrinking
@pytest.mark.parametrize("threshold", [0.1, 0.5, 2.0])
@pytest.mark.parametrize(
    "centroid, metric", [("mean", "euclidean"), ("median", "manhattan")]
)
def test_shrink_threshold_equals_sklearn(digits, threshold, centroid, metric):
    X_train, X_test, y_train, _ = digits
    ours = NearestMeanImageClassifier(
        metric=metric, centroid=centroid, shrink_threshold=threshold
    ).fit(X_train, y_train)
    ref = fit_nc(X_train, y_train, metric=metric, shrink_threshold=threshold)
    assert_allclose(ours.within_class_std_dev_, ref.within_class_std_dev_, atol=1e-9)
    assert_allclose(ours.deviations_, ref.deviations_, atol=1e-9)
    assert_allclose(ours.centroids_, ref.centroids_, atol=1e-9)
    assert_array_equal(ours.predict(X_test), ref.predict(X_test))


def test_shrinking_moves_centroids_toward_the_overall_mean(digits):
    X_train, _, y_train, _ = digits
    plain = NearestMeanImageClassifier().fit(X_train, y_train)
    shrunk = NearestMeanImageClassifier(shrink_threshold=1.0).fit(X_train, y_train)
    overall = X_train.mean(axis=0)
    assert (
        np.abs(shrunk.centroids_ - overall).sum()
        < np.abs(plain.centroids_ - overall).sum()
    )


def test_shrink_threshold_with_partial_fit_equals_fit(digits):
    X_train, _, y_train, _ = digits
    full = NearestMeanImageClassifier(shrink_threshold=0.5).fit(X_train, y_train)
    inc = NearestMeanImageClassifier(shrink_threshold=0.5)
    for part in np.array_split(np.arange(len(X_train)), 4):
        inc.partial_fit(X_train[part], y_train[part], classes=np.arange(10))
    assert_allclose(inc.centroids_, full.centroids_, atol=1e-9)


def test_shrinking_with_a_single_class_seen_so_far():
    # That class is the overall mean: it is kept, not turned into NaN.
    weights = (Y_TOY == 0).astype(float)
    clf = NearestMeanImageClassifier(shrink_threshold=0.5)
    with pytest.warns(UserWarning, match="never be predicted"):
        clf.fit(X_TOY, Y_TOY, sample_weight=weights)
    assert_allclose(clf.centroids_[0], X_TOY[Y_TOY == 0].mean(axis=0))
    assert np.isnan(clf.centroids_[1]).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        proba = clf.predict_proba(X_TOY)
    assert_allclose(proba, [[1, 0]] * len(X_TOY))
    inc = NearestMeanImageClassifier(shrink_threshold=0.5)
    inc.partial_fit(X_TOY[:3], Y_TOY[:3], classes=[0, 1])
    assert_array_equal(inc.predict(X_TOY), [0] * len(X_TOY))


@pytest.mark.parametrize("threshold", [1e-9, 0.5, 100.0])
def test_shrinking_keeps_offsets_it_cannot_standardize(threshold):
    """Features 0-2 have no within-class spread and neither has the median
    feature, so ``ms`` is 0 there: the limit of the shrunk offset as ``ms``
    goes to 0 is the offset itself, not the overall mean (and not NaN, as
    scikit-learn computes)."""
    X = np.array([[0, 0, 0, 0], [0, 0, 0, 2], [10, 0, 0, 0], [10, 0, 0, 2]])
    y = np.array([0, 0, 1, 1])
    clf = NearestMeanImageClassifier(shrink_threshold=threshold).fit(X, y)
    assert_array_equal(clf.centroids_, [[0, 0, 0, 1], [10, 0, 0, 1]])
    assert_array_equal(clf.deviations_[:, :3], 0)
    assert_array_equal(clf.predict(X), y)


@pytest.mark.parametrize("centroid", ["mean", "median"])
def test_shrinking_without_within_class_variance_raises_like_sklearn(centroid):
    """Every row equals its class's centroid: there is no spread to shrink by.
    scikit-learn raises "All features have zero variance"; so do we, instead
    of collapsing every centroid to the overall mean."""
    X = np.array([[0, 0], [0, 0], [9, 9], [9, 9]], dtype=np.uint8)
    y = [0, 0, 1, 1]
    clf = NearestMeanImageClassifier(centroid=centroid, shrink_threshold=0.5)
    with pytest.raises(ValueError, match="All features have zero variance"):
        clf.fit(X, y)
    assert not hasattr(clf, "classes_")  # nothing half-fitted
    with warnings.catch_warnings():  # its own warnings about zero deviations
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="All features have zero variance"):
            NearestCentroid(shrink_threshold=0.5).fit(np.ones((4, 2)), y)
    with pytest.raises(ValueError, match="All features have zero variance"):
        clf.fit(np.ones((4, 2)), y)
    if centroid == "mean":
        with pytest.raises(ValueError, match="shrink_threshold=None"):
            NearestMeanImageClassifier(shrink_threshold=0.5).partial_fit(
                X, y, classes=[0, 1]
            )
    # Without shrinking the model is defined, and separates the classes.
    plain = NearestMeanImageClassifier(centroid=centroid).fit(X, y)
    assert_array_equal(plain.predict(X), y)


def test_bad_shrink_threshold():
    with pytest.raises(ValueError, match="'shrink_threshold' parameter"):
        NearestMeanImageClassifier(shrink_threshold=-1).fit(X_TOY, Y_TOY)


# ---------------------------------------------------------------- priors
@pytest.mark.parametrize("priors", ["uniform", "empirical", [0.25, 0.75]])
def test_class_prior_equals_sklearn(priors):
    ours = NearestMeanImageClassifier(priors=priors).fit(X_TOY, Y_TOY)
    ref = fit_nc(X_TOY, Y_TOY, priors=priors)
    assert_allclose(ours.class_prior_, ref.class_prior_)


def test_non_normalised_priors_warn_like_sklearn():
    with pytest.warns(UserWarning, match="The priors do not sum to 1"):
        clf = NearestMeanImageClassifier(priors=[1, 3]).fit(X_TOY, Y_TOY)
    assert_allclose(clf.class_prior_, [0.25, 0.75])


@pytest.mark.parametrize(
    "priors, match",
    [([-0.5, 1.5], "priors must be non-negative"), ([0.2, 0.3, 0.5], "3 entries")],
)
def test_bad_priors(priors, match):
    with pytest.raises(ValueError, match=match):
        NearestMeanImageClassifier(priors=priors).fit(X_TOY, Y_TOY)


def test_priors_shift_the_posterior_by_their_log_ratio(digits):
    X_train, X_test, y_train, _ = digits
    uniform = NearestMeanImageClassifier().fit(X_train, y_train)
    prior = np.full(10, 0.05)
    prior[3] = 0.55
    skewed = NearestMeanImageClassifier(priors=prior).fit(X_train, y_train)
    log_u = uniform.predict_log_proba(X_test)
    log_s = skewed.predict_log_proba(X_test)
    # Bayes: log posterior = log likelihood + log prior, up to a constant per row.
    diff = (log_s - log_u) - np.log(prior * 10)
    finite = np.isfinite(diff).all(axis=1)
    assert finite.mean() > 0.9
    assert_allclose(diff[finite] - diff[finite][:, :1], 0, atol=1e-6)
    assert (skewed.predict(X_test) == 3).sum() >= (uniform.predict(X_test) == 3).sum()
    assert_array_equal(
        skewed.classes_[skewed.predict_proba(X_test).argmax(1)], skewed.predict(X_test)
    )


# ---------------------------------------------------------------- real MNIST


def test_mnist_median_and_shrinking_equal_sklearn(mnist):
    (X_train, y_train), (X_test, _) = mnist
    for params in (
        {"metric": "manhattan"},
        {"metric": "euclidean", "shrink_threshold": 0.5},
    ):
        centroid = "median" if params["metric"] == "manhattan" else "mean"
        ours = NearestMeanImageClassifier(centroid=centroid, **params)
        ours.fit(X_train, y_train)
        ref = fit_nc(X_train, y_train, **params)
        assert_allclose(ours.centroids_, ref.centroids_, atol=1e-6)
        assert_array_equal(ours.predict(X_test), ref.predict(X_test))
    ours = NearestMeanImageClassifier(priors="empirical").fit(X_train, y_train)
    ref = fit_nc(X_train, y_train, priors="empirical")
    assert_allclose(ours.class_prior_, ref.class_prior_)
