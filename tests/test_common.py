"""scikit-learn's estimator checks over every public estimator."""

# SPDX-License-Identifier: BSD-3-Clause

from sklearn.utils.estimator_checks import parametrize_with_checks

from sk_template import NearestMeanImageClassifier

ESTIMATORS = [
    NearestMeanImageClassifier(metric="euclidean"),
    NearestMeanImageClassifier(metric="manhattan"),
    NearestMeanImageClassifier(metric="cosine"),
    NearestMeanImageClassifier(metric="manhattan", centroid="median"),
    NearestMeanImageClassifier(shrink_threshold=0.5),
    NearestMeanImageClassifier(priors="empirical"),
]


def _expected_failed_checks(estimator):
    # Every check passes; a check that cannot pass goes here with its reason.
    return {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
