"""
Choosing a metric and a shrink threshold
========================================

:class:`~sk_template.NearestMeanImageClassifier` is an ordinary scikit-learn
estimator, so :class:`~sklearn.model_selection.GridSearchCV` tunes it like any
other. Here it chooses the distance (``metric``) and the amount of centroid
shrinking (``shrink_threshold``, the "nearest shrunken centroids" of
scikit-learn's :class:`~sklearn.neighbors.NearestCentroid`) by 5-fold
cross-validation on scikit-learn's handwritten digits.
"""

# %%
# The data: 1,797 digits of 8x8 pixels, as uint8 images (0..255).
import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split

from sk_template import NearestMeanImageClassifier

X, y = load_digits(return_X_y=True)
X = np.rint(X * (255 / 16)).astype(np.uint8)
X_train, X_test, y_train, y_test = train_test_split(
    X, y, test_size=0.25, stratify=y, random_state=0
)

# %%
# The search: every metric with no shrinking and with thresholds from 0.25 to
# 6 (in units of each pixel's within-class standard deviation).
thresholds = [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
param_grid = {
    "metric": ["euclidean", "manhattan", "cosine"],
    "shrink_threshold": [None, *thresholds],
}
search = GridSearchCV(NearestMeanImageClassifier(), param_grid, cv=5)
search.fit(X_train, y_train)
print("best:", search.best_params_)
print(f"its cross-validated accuracy: {search.best_score_:.3f}")
print(f"held-out accuracy of the best model: {search.score(X_test, y_test):.3f}")

# %%
# The scores: one line per metric, the band one standard deviation across
# the five folds. "none" is the plain nearest-mean classifier.
results = search.cv_results_
x_values = np.arange(len(param_grid["shrink_threshold"]))
fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
for metric in param_grid["metric"]:
    rows = np.flatnonzero(results["param_metric"] == metric)
    mean = results["mean_test_score"][rows]
    std = results["std_test_score"][rows]
    ax.plot(x_values, mean, marker="o", label=metric)
    ax.fill_between(x_values, mean - std, mean + std, alpha=0.2)
ax.set_xticks(x_values, ["none", *map(str, thresholds)])
ax.set_xlabel("shrink_threshold")
ax.set_ylabel("accuracy (5-fold cross-validation)")
ax.set_title("Nearest-mean classifier on the digits")
ax.legend(title="metric")

# %%
# Shrinking pulls each class mean towards the overall mean, pixel by pixel,
# and drops the pixels where a class does not stand out: a mild threshold
# helps these noisy 8x8 digits a little, a large one throws away too much.
# The same search runs in parallel with ``n_jobs=``, and inside a
# :class:`~sklearn.pipeline.Pipeline` with a scaler in front.
