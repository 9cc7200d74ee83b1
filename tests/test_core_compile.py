"""The compiled Manhattan kernel (_core/_manhattan.py) and when it is used
(_core/_compile.py): the same labels as the eager path and as float64."""

# SPDX-License-Identifier: BSD-3-Clause

import json
import os
import shutil
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from sk_template import NearestMeanImageClassifier
from sk_template._core import _compile, _manhattan

# Distances within this relative gap may be tied in float32: either label.
TIE = 2.0**-21

# The C++ compiler inductor looks for on Linux and macOS.
needs_compiler = pytest.mark.skipif(
    shutil.which(os.environ.get("CXX", "g++")) is None,
    reason="no C++ compiler: torch.compile cannot build the kernel",
)


def manhattan_float64(X, centroids):
    out = np.empty((len(X), len(centroids)))
    for start in range(0, len(X), 256):
        diff = X[start : start + 256, None, :].astype(np.float64) - centroids[None]
        out[start : start + 256] = np.abs(diff).sum(axis=-1)
    return out


def scaling_data(n_train, n_features, n_classes, n_test, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_train + n_test, n_features), dtype=np.uint8)
    y = rng.permutation(np.arange(n_train) % n_classes)
    return X[:n_train], y, X[n_train:]


def assert_nearest_in_float64(labels, distances, classes):
    index = np.searchsorted(classes, labels)
    best = distances.min(axis=1)
    assert (distances[np.arange(len(labels)), index] <= best * (1 + TIE)).all()
    ordered = np.sort(distances, axis=1)
    clear = ordered[:, 1] > ordered[:, 0] * (1 + TIE)
    assert_array_equal(index[clear], distances[clear].argmin(axis=1))


def bound(X, centroids):
    """The documented bound on float32 Manhattan distances: 3 g (|x - m|_1 +
    |c - m|_1), g = (n + 8) 2**-24 / (1 - (n + 8) 2**-24)."""
    n = X.shape[1]
    g = (n + 8) * 2.0**-24 / (1 - (n + 8) * 2.0**-24)
    m = centroids.mean(axis=0)
    rows = np.abs(X - m).sum(axis=1)[:, None]
    return 3 * g * (rows + np.abs(centroids - m).sum(axis=1)[None])


@pytest.fixture
def compiled(monkeypatch):
    monkeypatch.setenv(_compile.ENV, "1")


@pytest.fixture
def eager(monkeypatch):
    monkeypatch.setenv(_compile.ENV, "0")


def predict_both(monkeypatch, model, X):
    monkeypatch.setenv(_compile.ENV, "0")
    eager_labels, eager_distances = model.predict(X), model.transform(X)
    monkeypatch.setenv(_compile.ENV, "1")
    return eager_labels, eager_distances, model.predict(X), model.transform(X)


# ------------------------------------------------------------------ policy
def test_compile_mode_reads_the_environment(monkeypatch):
    for value, mode in [
        ("", "auto"),
        ("auto", "auto"),
        ("1", "always"),
        (" Always ", "always"),
        ("0", "never"),
        ("off", "never"),
    ]:
        monkeypatch.setenv(_compile.ENV, value)
        assert _compile.compile_mode() == mode
    monkeypatch.delenv(_compile.ENV)
    assert _compile.compile_mode() == "auto"
    monkeypatch.setenv(_compile.ENV, "fast")
    with pytest.raises(ValueError, match="SK_TEMPLATE_COMPILE='fast'.*'0'"):
        _compile.compile_mode()


@needs_compiler
def test_auto_compiles_once_the_eager_time_would_pay_for_it(monkeypatch):
    # A fresh kernel: eager while the eager time (so far, and this call's
    # estimate) stays under the threshold, compiled from then on.
    monkeypatch.setenv(_compile.ENV, "auto")
    kernel = _compile.CompiledKernel(_manhattan._tiled_abs_sums, "test")
    monkeypatch.setattr(_manhattan, "KERNEL", kernel)
    X, y, X_test = scaling_data(2_000, 64, 4, 1_000)
    model = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    expected = manhattan_float64(X_test, model.centroids_)
    model.predict(X_test)
    assert kernel.eager_seconds > 0 and kernel.eager_work == 1_000 * 4 * 64
    assert kernel._compiled is None
    # Work whose estimated eager time passes the threshold compiles at once.
    speed = kernel.eager_work / kernel.eager_seconds
    monkeypatch.setattr(_compile, "COMPILE_AFTER_SECONDS", 5_000 * 4 * 64 / speed)
    big = np.concatenate([X_test] * 5)
    assert_nearest_in_float64(
        model.predict(big), np.tile(expected, (5, 1)), [0, 1, 2, 3]
    )
    assert kernel._compiled is not None and not kernel.failed
    seconds = kernel.eager_seconds
    model.predict(X_test[:10])  # and small calls after it too
    assert kernel.eager_seconds == seconds


def _graph_break(x, c):
    # .tolist() leaves the graph: fullgraph=True cannot compile it.
    return torch.tensor(x.sum().tolist()) + c.sum()


def test_a_kernel_that_cannot_compile_warns_once_and_runs_eagerly(monkeypatch):
    monkeypatch.setenv(_compile.ENV, "1")
    monkeypatch.setattr(
        _manhattan, "KERNEL", _compile.CompiledKernel(_graph_break, "a test kernel")
    )
    X, y, X_test = scaling_data(1_000, 20, 3, 300)
    model = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    with pytest.warns(RuntimeWarning, match="could not build the kernel of a test"):
        labels = model.predict(X_test)
    assert _manhattan.KERNEL.failed
    assert_nearest_in_float64(
        labels, manhattan_float64(X_test, model.centroids_), model.classes_
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once: not again
        assert_array_equal(model.predict(X_test), labels)


SCRIPT = textwrap.dedent(
    """
    import json, sys, warnings
    import numpy as np
    from sk_template import NearestMeanImageClassifier

    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (500, 30), dtype=np.uint8)
    y = np.arange(500) % 3
    model = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = model.predict(X)
    print(json.dumps({
        "labels": labels.tolist(),
        "warnings": [str(w.message) for w in caught],
    }))
    """
)


def test_without_a_cpp_compiler_manhattan_runs_eagerly(tmp_path):
    # A fresh inductor cache (nothing compiled to reuse) and no compiler.
    env = dict(
        os.environ,
        CXX=str(tmp_path / "no-such-compiler"),
        TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"),
        SK_TEMPLATE_COMPILE="1",
    )
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=600,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (500, 30), dtype=np.uint8)
    y = np.arange(500) % 3
    expected = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    assert report["labels"] == expected.predict(X).tolist()
    assert len(report["warnings"]) == 1
    assert "install one (g++ or clang)" in report["warnings"][0]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_manhattan_on_a_gpu_runs_the_eager_path(compiled):
    X, y, X_test = scaling_data(2_000, 64, 5, 500)
    model = NearestMeanImageClassifier(metric="manhattan", device="cuda").fit(X, y)
    assert_nearest_in_float64(
        model.predict(X_test),
        manhattan_float64(X_test, model.centroids_),
        model.classes_,
    )
    assert _manhattan.KERNEL.get(torch.device("cuda"), 10**12) is None


# ------------------------------------------------------------------ kernel
@needs_compiler
@pytest.mark.parametrize(
    "shape",
    [
        (3_000, 784, 11, 1_003),  # odd classes, a ragged last tile of rows
        (1_000, 5_000, 7, 101),  # past 4,096 features: a second compile
        (600, 1, 3, 50),  # one feature
    ],
    ids=["mnist-shaped", "wide", "one-feature"],
)
def test_compiled_manhattan_equals_float64_and_eager(monkeypatch, shape):
    X, y, X_test = scaling_data(*shape)
    model = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    eager_labels, eager_distances, labels, distances = predict_both(
        monkeypatch, model, X_test
    )
    assert not _manhattan.KERNEL.failed
    expected = manhattan_float64(X_test, model.centroids_)
    assert (np.abs(distances - expected) <= bound(X_test, model.centroids_)).all()
    assert (np.abs(eager_distances - expected) <= bound(X_test, model.centroids_)).all()
    assert_nearest_in_float64(labels, expected, model.classes_)
    assert_nearest_in_float64(eager_labels, expected, model.classes_)
    proba = model.predict_proba(X_test)
    assert_array_equal(model.classes_[proba.argmax(axis=1)], labels)


@needs_compiler
def test_compiled_manhattan_on_near_ties_and_threads(monkeypatch, compiled):
    # Twin centroids (the first is taken), rows equal to a centroid, and the
    # same labels whatever the number of threads.
    X, y, X_test = scaling_data(4_000, 784, 20, 2_000)
    model = NearestMeanImageClassifier(metric="manhattan").fit(X, y)
    centroids = model.centroids_.copy()
    centroids[1] = centroids[0]
    object.__setattr__(model, "centroids_", centroids)
    X_test[:20] = np.rint(centroids).astype(np.uint8)
    labels = model.predict(X_test)
    assert not (labels == 1).any()
    assert_nearest_in_float64(
        labels, manhattan_float64(X_test, centroids), model.classes_
    )
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert_array_equal(model.predict(X_test), labels)
    finally:
        torch.set_num_threads(threads)


@needs_compiler
def test_mnist_manhattan_labels_equal_eager_and_float64(monkeypatch, mnist):
    (X_train, y_train), (X_test, _) = mnist
    model = NearestMeanImageClassifier(metric="manhattan").fit(X_train, y_train)
    X = np.concatenate([X_test, X_train])
    eager_labels, _, labels, _ = predict_both(monkeypatch, model, X)
    assert_array_equal(labels, eager_labels)
    expected = manhattan_float64(X, model.centroids_)
    assert_array_equal(labels, model.classes_[expected.argmin(axis=1)])
