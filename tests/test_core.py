"""Tests of the torch core: class sums, Manhattan tiles, device-side reductions."""

# SPDX-License-Identifier: BSD-3-Clause

import threading

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from sk_template import _core
from sk_template._core import (
    Centroids,
    _buffers,
    _chunks,
    _integer,
    _manhattan,
    _predict,
    batch_rows,
    class_stats,
    pairwise_distances,
)

CPU = torch.device("cpu")


def many_classes(n_rows=1_500, n_features=50, n_classes=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_rows, n_features), dtype=np.uint8)
    y = rng.permutation(np.arange(n_rows) % n_classes)
    return X, y


# ------------------------------------------------------------------ class sums
@pytest.mark.parametrize("batch_size", [7, 256, "auto"])
def test_uint8_class_sums_are_exact_with_many_classes(batch_size):
    X, y = many_classes()
    stats = class_stats(X, y, 300, device=CPU, batch_size=batch_size)
    expected = np.zeros((300, X.shape[1]), dtype=np.int64)
    np.add.at(expected, y, X.astype(np.int64))
    assert_array_equal(stats.sums, expected)
    assert_array_equal(stats.weights, np.bincount(y, minlength=300))
    assert_array_equal(stats.sq_sums, (X.astype(np.int64) ** 2).sum(axis=0))


def test_uint8_sums_stay_exact_past_65536_rows_of_one_class():
    # 69,990 rows of 255 in one class: a float32 sum over all of them (17.8
    # million) is past 2**24 and would round; carried partial sums go into
    # the float64 total before that.
    X = np.full((70_000, 3), 255, dtype=np.uint8)
    y = np.zeros(70_000, dtype=np.int64)
    y[:10] = 1
    stats = class_stats(X, y, 2, device=CPU, batch_size=1_000)
    assert_array_equal(stats.sums, [[69_990 * 255] * 3, [10 * 255] * 3])


def _chunked_float_sums(X, y, n_classes, rows):
    """Per-chunk float64 class sums (about the first row) added into float64
    totals."""
    total = np.zeros((n_classes, X.shape[1]))
    shift = X[0].astype(np.float64)
    for start in range(0, len(X), rows):
        chunk = X[start : start + rows] - shift
        labels = torch.as_tensor(y[start : start + rows])
        part = torch.zeros((n_classes, X.shape[1]), dtype=torch.float64)
        part.index_add_(0, labels, torch.tensor(chunk))
        total += part.numpy()
    return total


@pytest.mark.parametrize("batch_size", [11, 64, 1_000])
def test_float_class_sums_keep_their_rounding_with_many_classes(batch_size):
    # float32 input is summed in float64 (a float32 sum of its rows rounds,
    # and so do their squares), each chunk's class sums added into the
    # totals: only the classes a chunk holds are touched, with the same
    # result as adding the whole (n_classes, n_features) partial sum every
    # chunk.
    X, y = many_classes()
    X = X.astype(np.float32) / 7
    stats = class_stats(X, y, 300, device=CPU, batch_size=batch_size)
    assert_array_equal(stats.sums, _chunked_float_sums(X, y, 300, batch_size))
    means = np.stack([X[y == k].astype(np.float64).mean(axis=0) for k in range(300)])
    assert_allclose(stats.means(), means, rtol=1e-13)


def test_weighted_class_sums_with_many_classes():
    X, y = many_classes()
    w = np.random.default_rng(1).integers(0, 4, len(y)).astype(np.float64)
    stats = class_stats(X, y, 300, w, device=CPU, batch_size=64)
    expected = np.zeros((300, X.shape[1]))
    np.add.at(expected, y, X * w[:, None])
    assert_allclose(stats.sums, expected, rtol=1e-12)
    assert_allclose(stats.weights, np.bincount(y, weights=w, minlength=300))


# ------------------------------------------------------------------- distances
def _manhattan_one_class_at_a_time(chunk, C):
    low = torch.empty_like(chunk)
    out = torch.empty((C.shape[0], chunk.shape[0]))
    for k in range(C.shape[0]):
        torch.minimum(chunk, C[k], out=low)
        torch.sum(low, dim=1, out=out[k])
    return out.T


@pytest.mark.parametrize("tile", [1, 50, 60 * 50 + 17, 2**20])
def test_manhattan_tiles_equal_one_class_at_a_time(monkeypatch, tile):
    # Tiles of one value, of one row by one class, of ragged rows and
    # classes, and of the whole chunk: the same sums, bit for bit.
    monkeypatch.setitem(_manhattan.TILE_ELEMENTS, "cpu", tile)
    rng = np.random.default_rng(0)
    chunk = torch.tensor(rng.normal(0, 50, (61, 50)), dtype=torch.float32)
    C = torch.tensor(rng.normal(0, 50, (301, 50)), dtype=torch.float32)
    with _buffers.Workspace() as workspace:
        tiled = _manhattan.sum_of_minima(chunk, C, workspace)
    assert torch.equal(tiled, _manhattan_one_class_at_a_time(chunk, C))


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "cosine"])
def test_distances_with_many_classes_equal_float64_numpy(metric):
    X, y = many_classes()
    centroids = np.stack([X[y == k].mean(axis=0) for k in range(300)])
    prepared = Centroids(centroids, metric, CPU, torch.float32)
    got = pairwise_distances(X[:500], prepared, batch_size=64)
    A = X[:500].astype(np.float64)
    if metric == "euclidean":
        expected = np.sqrt(((A[:, None] - centroids[None]) ** 2).sum(-1))
    elif metric == "manhattan":
        expected = np.abs(A[:, None] - centroids[None]).sum(-1)
    else:
        unit = A / np.linalg.norm(A, axis=1, keepdims=True)
        c_unit = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
        expected = 1 - unit @ c_unit.T
    assert got.dtype == np.float64 and got.shape == (500, 300)
    assert_allclose(got, expected, rtol=1e-5, atol=1e-4)


def test_reduce_runs_on_each_chunk_and_only_its_result_is_kept():
    X, y = many_classes()
    centroids = np.stack([X[y == k].mean(axis=0) for k in range(300)])
    prepared = Centroids(centroids, "euclidean", CPU, torch.float32)
    seen = []

    def nearest(distances):
        assert isinstance(distances, torch.Tensor)
        assert distances.shape[1] == 300
        seen.append(len(distances))
        return distances.argmin(dim=1)

    labels = pairwise_distances(X, prepared, batch_size=700, reduce=nearest)
    assert seen == [700, 700, 100]
    assert labels.dtype == np.int64 and labels.shape == (1_500,)
    full = pairwise_distances(X, prepared, batch_size=700)
    assert_array_equal(labels, full.argmin(axis=1))


def test_auto_chunks_bound_the_distances_of_many_classes():
    assert batch_rows("auto", 784, 10) == 1280  # the feature budget decides
    for n_classes in (1_000, 10_000, 100_000):
        rows = batch_rows("auto", 784, n_classes)
        assert rows * n_classes <= _chunks.AUTO_DISTANCE_ELEMENTS
    assert batch_rows(100, 784, 100_000) == 100  # an explicit size is kept


def test_predict_is_argmax_of_proba_when_scores_differ_by_an_ulp():
    # Log posteriors one ulp apart can become equal probabilities (the
    # softmax rounds), whose argmax is then the first of the two, not the
    # larger score: predict must pick what proba's argmax picks.
    rng = np.random.default_rng(0)
    n_rows, n_classes = 2_000, 6
    log_prior = np.log(rng.uniform(0.5, 1.0, n_classes))
    scores = log_prior + rng.uniform(-3, 0, (n_rows, n_classes))
    scores[:, 1] = np.nextafter(scores[:, 0], 1)  # one ulp above class 0
    prior = np.exp(log_prior)
    posterior = _core.Posterior("manhattan", np.sqrt(2), prior, CPU, None)
    # manhattan with s = sqrt(2): log posterior = -d + log(prior).
    distances = torch.as_tensor(log_prior - scores)
    computed = posterior.log_posterior(distances.clone())
    proba = posterior.proba(distances.clone())
    # The case this test is about: a larger score, an equal probability.
    assert ((computed[:, 1] > computed[:, 0]) & (proba[:, 0] == proba[:, 1])).any()
    assert_array_equal(
        posterior.predict(distances.clone()), proba.argmax(dim=1).numpy()
    )


# ------------------------------------------------------------------ predict
def _posterior(centroids, metric="euclidean"):
    prior = np.full(len(centroids), 1 / len(centroids))
    return _core.Posterior(metric, 30.0, prior, CPU, None)


def _random_rows(n_rows, n_features, n_classes, seed=0):
    """Random uint8 rows: every class mean is near 127.5, and rows are
    nearly as far from all of them, so many rows need the exact path."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 256, size=(n_rows, n_features), dtype=np.uint8)
    y = np.arange(n_rows) % n_classes
    centroids = np.stack([X[y == k].mean(axis=0) for k in range(n_classes)])
    return X, centroids


def _spy_doubts(monkeypatch):
    rows = []
    add = _predict._Doubts.add

    def spy(self, where, values, margin):
        rows.append(len(where))
        return add(self, where, values, margin)

    monkeypatch.setattr(_predict._Doubts, "add", spy)
    return rows


# The two ways euclidean predict reads rows: uint8 rows on a CPU by integer
# products (_integer), the same values as float32 by the float32 expansion.
PATHS = {"integer": lambda X: X, "float": lambda X: X.astype(np.float32)}


@pytest.mark.parametrize("path", sorted(PATHS))
@pytest.mark.parametrize("n_classes", [1, 2, 10, 300])
@pytest.mark.parametrize("batch_size", [7, 333, "auto"])
def test_predict_labels_equal_the_reduction_of_every_distance(
    monkeypatch, n_classes, batch_size, path
):
    # predict_labels decides most rows from their smallest squared distance
    # and sends the others through the full reduction: the labels must be
    # those of the full reduction, row for row, in both layouts of the
    # product (few classes: transposed; 64 and more: by rows).
    doubts = _spy_doubts(monkeypatch)
    X, centroids = _random_rows(2_000, 100, n_classes)
    # Rows equal to a centroid's rounding, and ties: duplicated centroids.
    X[:n_classes] = np.rint(centroids).astype(np.uint8)
    if n_classes >= 2:
        centroids[1] = centroids[0]
    X = PATHS[path](X)
    prepared = Centroids(centroids, "euclidean", CPU, torch.float32)
    assert (_integer.integer_centroids(X, prepared) is not None) == (path == "integer")
    posterior = _posterior(centroids)
    full = pairwise_distances(
        X, prepared, batch_size=batch_size, reduce=posterior.predict
    )
    labels = _core.predict_labels(X, prepared, posterior, batch_size=batch_size)
    assert labels.dtype == np.int64
    assert_array_equal(labels, full)
    if n_classes >= 2:
        assert sum(doubts) > 0  # the exact path was taken
        assert not (labels == 1).any()  # the first of the tied twins


@pytest.mark.parametrize("path", sorted(PATHS))
def test_predict_labels_resolve_in_bounded_batches(monkeypatch, path):
    # The rows set aside are resolved whenever their distances reach a
    # chunk's budget, and at the end: the same labels either way.
    X, centroids = _random_rows(3_000, 784, 20)
    centroids[1] = centroids[0]  # rows in doubt in both paths
    X = PATHS[path](X)
    prepared = Centroids(centroids, "euclidean", CPU, torch.float32)
    posterior = _posterior(centroids)
    expected = _core.predict_labels(X, prepared, posterior, batch_size=100)
    flushes = []
    flush = _predict._Doubts._flush

    def spy(self):
        flushes.append(self.size)
        return flush(self)

    monkeypatch.setattr(_predict._Doubts, "_flush", spy)
    monkeypatch.setattr(_predict, "AUTO_DISTANCE_ELEMENTS", 40)  # two rows
    labels = _core.predict_labels(X, prepared, posterior, batch_size=100)
    assert_array_equal(labels, expected)
    # A flush as soon as the budget is reached: at most one chunk's rows
    # (their distances and their pixels) above it.
    assert len(flushes) > 3 and max(flushes) < 40 + 100 * (20 + 784)


@pytest.mark.parametrize("case", ["float64", "tensor", "priors", "missing"])
def test_predict_labels_elsewhere_equal_the_reduction(case):
    # Outside the float32 euclidean, uniform, all-classes-seen case, and
    # for tensors: the same labels as the full reduction.
    X, centroids = _random_rows(1_000, 50, 10)
    dtype = torch.float64 if case == "float64" else torch.float32
    if case == "missing":
        centroids[3] = np.nan
    prepared = Centroids(centroids, "euclidean", CPU, dtype)
    prior = np.full(10, 0.1)
    if case == "priors":
        prior = np.linspace(1, 2, 10) / np.linspace(1, 2, 10).sum()
    posterior = _core.Posterior("euclidean", 30.0, prior, CPU, None)
    data = torch.from_numpy(X) if case == "tensor" else X
    full = pairwise_distances(data, prepared, batch_size=64, reduce=posterior.predict)
    labels = _core.predict_labels(data, prepared, posterior, batch_size=64)
    assert_array_equal(labels, full)
    if case == "missing":
        assert not (labels == 3).any()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_squared_tie_margin_covers_the_tie_distance(dtype):
    # Any squared distance whose square root (in the distances' dtype) is
    # within _tie_distance of the nearest's must be at most a * nearest + b,
    # as that dtype computes it: else predict_labels would miss a tie.  (In
    # float64, which is not refined, this margin alone decides.)
    rng = np.random.default_rng(0)
    tiny = torch.finfo(dtype).tiny
    for std in (1e-3, 1.0, 30.0, 1e9):
        posterior = _core.Posterior("euclidean", std, np.full(4, 0.25), CPU, None)
        a, b = posterior.squared_tie_margin(dtype)
        nearest = np.concatenate(
            [
                [0.0, tiny / 2**20, tiny / 16, tiny],
                10.0 ** rng.uniform(-30, 30, 2_000),
                rng.integers(0, 10**7, 2_000),
            ]
        )
        nearest = torch.tensor(nearest, dtype=dtype)
        limit = posterior._tie_distance(nearest.sqrt())
        # The largest value whose square root is within the limit.
        v = limit.square()
        for _ in range(3):
            up = torch.nextafter(v, torch.full_like(v, np.inf))
            v = torch.where(up.sqrt() <= limit, up, v)
        assert (v.sqrt() <= limit).all()
        margin = nearest.mul(a).add_(b)
        assert (v <= margin).all(), std


# ------------------------------------------------------------------ buffers
def _workspace(pool):
    return _buffers.Workspace(pool)


def test_workspaces_reuse_a_buffer_between_calls():
    pool = _buffers.BufferPool(keep_bytes=2**20)
    with _workspace(pool) as first:
        buffer = first.get("chunk", (10, 100), torch.float32, CPU)
        pointer = buffer.data_ptr()
        assert buffer.shape == (10, 100)
        # The same name again: the same memory, whatever the shape.
        assert first.get("chunk", 500, torch.float32, CPU).data_ptr() == pointer
        assert first.get("other", 5_000, torch.float32, CPU).data_ptr() != pointer
    with _workspace(pool) as second:
        # The next call gets the memory back, not faulted in again (the
        # smallest kept buffer large enough).
        assert second.get("mask", 500, torch.float32, CPU).data_ptr() == pointer
        with _workspace(pool) as inner:
            # A workspace at a time: a call inside another gets its own.
            assert inner.get("mask", 500, torch.float32, CPU).data_ptr() != pointer
    with _workspace(pool) as other:
        # One dtype's buffers only.
        assert other.get("chunk", 500, torch.float64, CPU).data_ptr() != pointer


def test_a_workspace_grows_a_buffer_and_gives_the_smaller_back():
    pool = _buffers.BufferPool(keep_bytes=2**20)
    with _workspace(pool) as workspace:
        small = workspace.get("mask", 100, torch.bool, CPU).data_ptr()
        large = workspace.get("mask", (30, 100), torch.bool, CPU)
        assert large.shape == (30, 100) and large.data_ptr() != small
        assert [b.data_ptr() for b in pool._free[torch.bool]] == [small]
    assert len(pool._free[torch.bool]) == 2


def test_buffer_pool_keeps_little():
    pool = _buffers.BufferPool(keep_bytes=4_000, keep_count=2)
    with _workspace(pool) as workspace:
        workspace.get("big", 2_000, torch.float32, CPU)  # 8,000 bytes
    assert pool._free.get(torch.float32, []) == []
    with _workspace(pool) as workspace:
        for size in (10, 20, 30):
            workspace.get(f"b{size}", size, torch.float32, CPU)
    assert sorted(b.numel() for b in pool._free[torch.float32]) == [20, 30]


def test_buffer_pool_gives_threads_their_own_buffers():
    pool = _buffers.BufferPool(keep_bytes=2**20)
    barrier = threading.Barrier(4)
    pointers = []

    def work():
        with _workspace(pool) as workspace:
            buffer = workspace.get("chunk", 1_000, torch.float32, CPU)
            barrier.wait()  # all four hold one at once
            pointers.append(buffer.data_ptr())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(pointers)) == 4


@pytest.mark.parametrize("path", sorted(PATHS))
def test_predict_labels_read_a_bounded_share_of_x_again(monkeypatch, path):
    # Two classes with the same centroid put every row in doubt: the rows
    # read again from X for the exact path must come a budget at a time,
    # not all at once.
    taken = []
    take = _predict.take_rows

    def spy(X, where):
        taken.append(len(where))
        return take(X, where)

    monkeypatch.setattr(_predict, "take_rows", spy)
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, size=(20_000, 784), dtype=np.uint8)
    centroids = np.repeat(X[:2].mean(axis=0, keepdims=True), 2, axis=0)
    X = PATHS[path](X)
    prepared = Centroids(centroids, "euclidean", CPU, torch.float32)
    labels = _core.predict_labels(X, prepared, _posterior(centroids), batch_size=1_000)
    assert (labels == 0).all()  # the first of the tied twins
    assert sum(taken) == len(X)
    budget = _chunks.AUTO_DISTANCE_ELEMENTS
    assert max(taken) * 784 <= budget + 1_000 * (784 + 2)


def test_buffer_given_back_never_waits(monkeypatch):
    # A generator holding a pooled chunk buffer may be closed by the garbage
    # collector while this very thread holds the pool's lock (inside
    # take): giving its buffer back must not wait for the lock.
    pool = _buffers.BufferPool(keep_bytes=2**30)
    monkeypatch.setattr(_buffers, "POOL", pool)
    chunks = _core.iter_chunks(
        np.zeros((10, 4), np.uint8), device=CPU, dtype=torch.float32, batch_size=5
    )
    next(chunks)  # holds a buffer
    done = threading.Event()

    def close_while_locked():
        with pool._lock:
            chunks.close()  # runs the generator's finally: gives the buffer back
        done.set()

    thread = threading.Thread(target=close_while_locked, daemon=True)
    thread.start()
    assert done.wait(timeout=10), "giving a buffer back waited for the lock"
