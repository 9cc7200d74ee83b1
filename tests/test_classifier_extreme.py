"""Finite input at the edges of float64 and float32, and inputs with no
values at all: the estimator answers correctly or raises a ValueError that
names the overflow -- never NaN probabilities behind a RuntimeWarning."""

import contextlib
import warnings

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from sk_template import NearestMeanImageClassifier

METRICS = ["euclidean", "manhattan", "cosine"]
METHODS = [
    "predict",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "transform",
]


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X, y


@contextlib.contextmanager
def _no_runtime_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        yield


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_predict_on_overflowing_rows_raises(digits, metric, method):
    X, y = digits
    clf = NearestMeanImageClassifier(metric=metric).fit(X.astype(np.uint8), y)
    with pytest.raises(ValueError, match="overflow float64"):
        getattr(clf, method)(X[:5] * 1e300)


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_float32_rows_overflow_named_with_the_fix(digits, metric):
    X, y = digits
    clf = NearestMeanImageClassifier(metric=metric).fit(X, y)
    big = (X[:5] * 1e20).astype(np.float32)
    with pytest.raises(ValueError, match="overflow float32.*float64"):
        clf.predict_proba(big)
    # The advice works: the same values in float64 are computed.
    if metric == "cosine":  # scale-free: the labels of the unscaled rows
        np.testing.assert_array_equal(
            clf.predict(big.astype(np.float64)), clf.predict(X[:5])
        )


def test_overflowing_rows_with_priors_raise(digits):
    X, y = digits
    clf = NearestMeanImageClassifier(priors=[0.1] * 10).fit(X, y)
    with pytest.raises(ValueError, match="overflow"):
        clf.predict(X[:5] * 1e300)


def test_log_posterior_overflow_raises(digits):
    # Finite distances, a tiny spread: d**2 / s**2 overflows.
    X, y = digits
    clf = NearestMeanImageClassifier().fit(X * 1e-160, y)
    with pytest.raises(ValueError, match="log posteriors overflow"):
        clf.predict_proba(X[:5])


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("scale", [1e200, 1e-300])
def test_fit_out_of_float64_range_raises(digits, metric, scale):
    X, y = digits
    word = "overflow" if scale > 1 else "underflow"
    with pytest.raises(ValueError, match=f"{word} float64"):
        NearestMeanImageClassifier(metric=metric).fit(X * scale, y)


@pytest.mark.parametrize("scale", [1e150, 1e-150])
def test_fit_at_the_edge_of_the_range_is_exact(digits, scale):
    # Squares still in range: the model is the unscaled one, scaled.
    X, y = digits
    ref = NearestMeanImageClassifier().fit(X, y)
    with _no_runtime_warnings():
        clf = NearestMeanImageClassifier().fit(X * scale, y)
        np.testing.assert_allclose(clf.centroids_, ref.centroids_ * scale, rtol=1e-9)
        np.testing.assert_allclose(
            clf.within_class_std_, ref.within_class_std_ * scale, rtol=1e-9
        )
        np.testing.assert_array_equal(clf.predict(X * scale), ref.predict(X))
        np.testing.assert_allclose(
            clf.predict_proba(X * scale), ref.predict_proba(X), atol=1e-9
        )


def test_partial_fit_overflow_leaves_model_unchanged(digits):
    X, y = digits
    clf = NearestMeanImageClassifier().partial_fit(X, y, classes=np.arange(10))
    before = clf.centroids_.copy()
    with pytest.raises(ValueError, match="overflow float64"):
        clf.partial_fit(X * 1e200, y)
    np.testing.assert_array_equal(clf.centroids_, before)


def test_sample_weight_whose_sum_overflows_is_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match="sample_weight sums to more than"):
        NearestMeanImageClassifier().fit(X, y, sample_weight=np.full(len(y), 1e308))


def test_huge_weights_give_the_unweighted_model(digits):
    # Weights are relative: 1e300 for every row is the unweighted fit, and
    # the within-class spread does not overflow through sum**2.
    X, y = digits
    ref = NearestMeanImageClassifier().fit(X, y)
    with _no_runtime_warnings():
        clf = NearestMeanImageClassifier().fit(
            X, y, sample_weight=np.full(len(y), 1e300)
        )
    np.testing.assert_allclose(clf.within_class_std_, ref.within_class_std_, rtol=1e-9)
    np.testing.assert_allclose(clf.centroids_, ref.centroids_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_priors_are_refused(digits, bad):
    X, y = digits
    with pytest.raises(ValueError, match="priors must be finite"):
        NearestMeanImageClassifier(priors=[bad] + [0.1] * 9).fit(X, y)
    with pytest.raises(ValueError, match="priors must be finite"):
        NearestMeanImageClassifier(priors=[bad] + [0.1] * 9).partial_fit(
            X, y, classes=np.arange(10)
        )


def test_all_zero_priors_are_refused(digits):
    X, y = digits
    with pytest.raises(ValueError, match="priors are all zero"):
        NearestMeanImageClassifier(priors=[0.0] * 10).fit(X, y)


def test_class_with_zero_weight_warns(digits):
    X, y = digits
    w = np.where(y == 3, 0.0, 1.0)
    with pytest.warns(UserWarning, match=r"Classes \[3\] are in y but every one"):
        clf = NearestMeanImageClassifier().fit(X, y, sample_weight=w)
    assert np.isnan(clf.centroids_[3]).all()
    assert 3 not in clf.predict(X)
    proba = clf.predict_proba(X)
    assert np.isfinite(proba).all() and (proba[:, 3] == 0).all()


def test_unweighted_fit_does_not_warn(digits):
    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        NearestMeanImageClassifier().fit(X, y, sample_weight=np.ones(len(y)))


@pytest.mark.parametrize("what", ["X", "y", "sample_weight"])
def test_meta_tensors_are_refused_by_name(digits, what):
    X, y = digits
    args = {"X": X[:40], "y": y[:40], "sample_weight": None}
    shape = {"X": (40, 64), "y": (40,), "sample_weight": (40,)}[what]
    args[what] = torch.empty(shape, device="meta")
    with pytest.raises(ValueError, match=f"{what} is a tensor on the 'meta' device"):
        NearestMeanImageClassifier().fit(
            args["X"], args["y"], sample_weight=args["sample_weight"]
        )


@pytest.mark.parametrize("method", METHODS)
def test_meta_tensor_at_predict_is_refused(digits, method):
    X, y = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    with pytest.raises(ValueError, match="X is a tensor on the 'meta' device"):
        getattr(clf, method)(torch.empty(3, 64, device="meta"))
