"""skops files: a fitted estimator round-trips, and names no type but itself.

skops (https://skops.readthedocs.io) is how scikit-learn models are shared
through model hubs: ``skops.io.load`` refuses any type the user has not
trusted, so the estimator's fitted state must hold numpy arrays and plain
values only.
"""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from sklearn.datasets import load_digits

from sk_template import NearestMeanImageClassifier

sio = pytest.importorskip("skops.io")

ESTIMATOR = "sk_template._classifier.NearestMeanImageClassifier"


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X.astype(np.uint8), y


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"metric": "manhattan", "priors": "empirical"},
        {"metric": "cosine", "shrink_threshold": 0.5},
        {"centroid": "median"},
    ],
    ids=["euclidean", "manhattan-empirical", "cosine-shrunk", "median"],
)
def test_round_trip_predicts_the_same(tmp_path, digits, params):
    X, y = digits
    model = NearestMeanImageClassifier(**params).fit(X[:1200], y[:1200])
    path = tmp_path / "model.skops"
    sio.dump(model, path)

    assert sio.get_untrusted_types(file=path) == [ESTIMATOR]
    loaded = sio.load(path, trusted=[ESTIMATOR])
    assert type(loaded) is NearestMeanImageClassifier
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(X[1200:]), model.predict(X[1200:]))
    np.testing.assert_array_equal(
        loaded.predict_proba(X[1200:]), model.predict_proba(X[1200:])
    )
    # Read-only as fitted: an edit in place would go unseen by the device copy.
    assert not loaded.centroids_.flags.writeable


def test_untrusted_file_is_refused(tmp_path, digits):
    X, y = digits
    path = tmp_path / "model.skops"
    sio.dump(NearestMeanImageClassifier().fit(X, y), path)
    with pytest.raises(sio.exceptions.UntrustedTypesFoundException, match=ESTIMATOR):
        sio.load(path)


def test_partial_fit_goes_on_after_loading(tmp_path, digits):
    # The class sums travel too, so a loaded model keeps learning exactly as
    # the one that was saved.
    X, y = digits
    classes = np.unique(y)
    saved = NearestMeanImageClassifier().partial_fit(X[:900], y[:900], classes)
    path = tmp_path / "model.skops"
    sio.dump(saved, path)
    loaded = sio.load(path, trusted=[ESTIMATOR])
    loaded.partial_fit(X[900:], y[900:])
    whole = NearestMeanImageClassifier().fit(X, y)
    np.testing.assert_array_equal(loaded.centroids_, whole.centroids_)
    np.testing.assert_array_equal(loaded.predict(X), whole.predict(X))
