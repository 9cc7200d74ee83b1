"""Fitting across workers: joblib backends, dask arrays and a dask cluster."""

# SPDX-License-Identifier: BSD-3-Clause

import functools
import os

import numpy as np
import pytest
import torch
from joblib import Parallel, delayed, parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.datasets import load_digits
from sklearn.model_selection import cross_validate

from sk_template import NearestMeanImageClassifier, fit_blocks, fit_dask


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X * 16).clip(0, 255).astype(np.uint8), y


def _blocks(X, y, n_blocks, w=None):
    parts = np.array_split(np.arange(len(X)), n_blocks)
    if w is None:
        return [(X[p], y[p]) for p in parts]
    return [(X[p], y[p], w[p]) for p in parts]


def assert_same_model(model, reference):
    assert_array_equal(model.classes_, reference.classes_)
    assert model.n_features_in_ == reference.n_features_in_
    assert_allclose(model.centroids_, reference.centroids_, rtol=1e-12)
    assert_allclose(model.class_count_, reference.class_count_)
    assert model.within_class_std_ == pytest.approx(reference.within_class_std_)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_fit_blocks_equals_fit(digits, metric):
    X, y = digits
    template = NearestMeanImageClassifier(metric=metric, shrink_threshold=0.2)
    model = fit_blocks(template, _blocks(X, y, 5), classes=np.unique(y), n_jobs=2)
    assert not hasattr(template, "classes_")  # the template is left unfitted
    reference = NearestMeanImageClassifier(metric=metric, shrink_threshold=0.2)
    assert_same_model(model, reference.fit(X, y))
    assert_array_equal(model.predict(X), reference.predict(X))


def test_fit_blocks_with_weights_and_any_joblib_backend(digits):
    X, y = digits
    w = np.random.RandomState(0).randint(0, 3, size=len(X)).astype(float)
    reference = NearestMeanImageClassifier().fit(X, y, sample_weight=w)
    for backend in ("threading", "loky", "sequential"):
        with parallel_config(backend=backend, n_jobs=2):
            model = fit_blocks(
                NearestMeanImageClassifier(), _blocks(X, y, 4, w), classes=range(10)
            )
        assert_same_model(model, reference)


def _load_block(path, start, stop):
    data = np.load(path, mmap_mode="r")
    return data["X"][start:stop], data["y"][start:stop]


def test_fit_blocks_loads_each_block_in_its_worker(tmp_path, digits):
    X, y = digits
    path = tmp_path / "digits.npy"
    table = np.zeros(len(X), dtype=[("X", np.uint8, X.shape[1]), ("y", np.int64)])
    table["X"], table["y"] = X, y
    np.save(path, table)
    blocks = [
        functools.partial(_load_block, str(path), start, start + 500)
        for start in range(0, len(X), 500)
    ]
    model = fit_blocks(
        NearestMeanImageClassifier(), blocks, classes=range(10), n_jobs=2
    )
    assert_same_model(model, NearestMeanImageClassifier().fit(X, y))


def test_fit_blocks_errors(digits):
    X, y = digits
    with pytest.raises(ValueError, match="blocks is empty"):
        fit_blocks(NearestMeanImageClassifier(), [], classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[9\] that are not in classes"):
        fit_blocks(NearestMeanImageClassifier(), [(X, y)], classes=range(9))
    with pytest.raises(ValueError, match="a median is not a sum"):
        fit_blocks(
            NearestMeanImageClassifier(centroid="median"), [(X, y)], classes=range(10)
        )
    with pytest.raises(ValueError, match="'metric' parameter"):
        fit_blocks(NearestMeanImageClassifier(metric="nope"), [(X, y)], classes=[0])


# ------------------------------------------------------------------------- dask
def test_fit_dask_threaded_scheduler(digits):
    da = pytest.importorskip("dask.array")
    X, y = digits
    Xd = da.from_array(X, chunks=(300, 16))  # column chunks are merged
    yd = da.from_array(y, chunks=250)  # realigned with the rows of X
    wd = da.from_array(np.arange(len(X)) % 3, chunks=400)
    model = fit_dask(NearestMeanImageClassifier(), Xd, yd, sample_weight=wd)
    reference = NearestMeanImageClassifier().fit(
        X, y, sample_weight=np.arange(len(X)) % 3
    )
    assert_same_model(model, reference)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_dask_cluster_fits_blocks_on_its_workers(digits, dask_client):
    da = pytest.importorskip("dask.array")
    X, y = digits
    Xd = da.from_array(X, chunks=(200, X.shape[1]))
    yd = da.from_array(y, chunks=200)
    reference = NearestMeanImageClassifier().fit(X, y)
    from distributed import get_task_stream

    with get_task_stream(dask_client) as stream:
        model = fit_dask(NearestMeanImageClassifier(), Xd, yd)
    assert_same_model(model, reference)
    # The block sums ran as tasks on the cluster's worker processes.
    workers = set(dask_client.scheduler_info()["workers"])
    assert len(workers) == 2
    ran_on = {task["worker"] for task in stream.data}
    assert ran_on and ran_on <= workers
    # joblib's dask backend runs fit_blocks on the same cluster.
    with parallel_config(backend="dask"):
        model = fit_blocks(
            NearestMeanImageClassifier(), _blocks(X, y, 6), classes=range(10)
        )
    assert_same_model(model, reference)


def test_dask_ml_incremental(digits):
    pytest.importorskip("dask_ml")
    da = pytest.importorskip("dask.array")
    from dask_ml.wrappers import Incremental

    X, y = digits
    Xd = da.from_array(X, chunks=(300, X.shape[1]))
    yd = da.from_array(y, chunks=300)
    inc = Incremental(NearestMeanImageClassifier()).fit(Xd, yd, classes=np.arange(10))
    assert_same_model(inc.estimator_, NearestMeanImageClassifier().fit(X, y))
    assert inc.score(Xd, yd) > 0.85


# --------------------------------------------------------- threads per process
class ThreadRecorder(NearestMeanImageClassifier):
    """Records how many threads torch had while it was fitting."""

    def fit(self, X, y, sample_weight=None):
        super().fit(X, y, sample_weight=sample_weight)
        self.torch_threads_ = torch.get_num_threads()
        return self


def _torch_threads():
    return torch.get_num_threads()


def test_loky_workers_do_not_oversubscribe_the_cpu(digits):
    X, y = digits
    n_jobs = 2
    expected = max(1, (os.cpu_count() or 1) // n_jobs)
    # joblib gives each loky worker cpu_count // n_jobs threads and torch
    # takes that limit: processes x threads never exceeds the cores.
    assert (
        Parallel(n_jobs=n_jobs)(delayed(_torch_threads)() for _ in range(2))
        == [expected] * 2
    )
    result = cross_validate(
        ThreadRecorder(), X, y, cv=2, n_jobs=n_jobs, return_estimator=True
    )
    assert [est.torch_threads_ for est in result["estimator"]] == [expected] * 2
