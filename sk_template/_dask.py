"""The estimator's methods on dask arrays: one task per block, on the workers.

Given a :class:`dask.array.Array`, ``predict``, ``predict_proba``,
``predict_log_proba``, ``decision_function`` and ``transform`` return a dask
array at once, computing nothing: each block of rows becomes one task that
runs the method on that block where the block is (a worker of a
``dask.distributed`` cluster, or a thread of the local scheduler). The fitted
model enters the graph once, as one key that every task depends on, so it
travels to each worker once rather than once per block. ``score`` computes
the accuracy block by block and returns a float.

dask itself is imported only when a method is given a dask array, and this
module is the only place that dispatches on one: numpy in, numpy out stays
as it is.
"""

# SPDX-License-Identifier: BSD-3-Clause

import copy
import functools
import sys

import numpy as np
from sklearn.utils.validation import check_is_fitted


def is_dask_array(X):
    """Whether ``X`` is a dask array (without importing dask)."""
    da = sys.modules.get("dask.array")
    return da is not None and isinstance(X, da.Array)


def dask_dispatch(method):
    """Decorate an estimator method ``method(self, X)``: given a dask array,
    it returns :func:`map_method`'s lazy dask array instead."""

    @functools.wraps(method)
    def dispatch(self, X, *args, **kwargs):
        if is_dask_array(X):
            return map_method(self, method.__name__, X)
        return method(self, X, *args, **kwargs)

    return dispatch


def _apply_method(block, model, method):
    """``model.<method>(block)``: one block, where the task runs."""
    return getattr(model, method)(block)


def _check(estimator, X):
    """``X`` as rows in blocks, checked against the fitted estimator."""
    check_is_fitted(estimator)
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D dask array of shape (n_samples, n_features); got "
            f"shape {X.shape}. Reshape it, e.g. X.reshape(len(X), -1)."
        )
    n_features = estimator.n_features_in_
    if not np.isnan(X.shape[1]) and X.shape[1] != n_features:
        raise ValueError(
            f"X has {X.shape[1]} features, but {type(estimator).__name__} is "
            f"expecting {n_features} features as input."
        )
    if X.dtype.kind not in "biuf":
        raise ValueError(
            f"X must hold numbers; got a dask array of dtype {X.dtype}. Convert "
            "it with X.astype(...)."
        )
    if len(X.chunks[1]) != 1:  # a task needs whole rows
        X = X.rechunk({1: -1})
    return X


def map_method(estimator, method, X):
    """``estimator.<method>(X)`` for a dask array ``X``, as a lazy dask array.

    The output's dtype and trailing shape are those of the method on one row
    of zeros (computed here, at once); its blocks follow the rows of ``X``.
    """
    import dask

    X = _check(estimator, X)
    probe = getattr(estimator, method)(np.zeros((1, X.shape[1]), dtype=X.dtype))
    # A copy, so that refitting the estimator before the graph is computed
    # changes nothing; one key, so that it travels to each worker once.
    model = dask.delayed(copy.deepcopy(estimator), pure=True)
    if probe.ndim == 1:
        extra = {"drop_axis": 1, "chunks": (X.chunks[0],)}
    else:
        extra = {"chunks": (X.chunks[0], (probe.shape[1],))}
    return X.map_blocks(
        _apply_method,
        model,
        method,
        dtype=probe.dtype,
        meta=np.empty((0,) * probe.ndim, dtype=probe.dtype),
        **extra,
    )


def align_rows(v, X, name):
    """``v`` (array-like or dask) as a dask array with the row blocks of ``X``."""
    import dask.array as da

    if is_dask_array(v):
        if v.chunks[0] == X.chunks[0]:
            return v
        if any(np.isnan(c) for c in X.chunks[0] + v.chunks[0]):
            if v.numblocks[0] != X.numblocks[0]:
                raise ValueError(
                    f"X and {name} are dask arrays of unknown chunk sizes with "
                    f"{X.numblocks[0]} and {v.numblocks[0]} blocks of rows; pass "
                    "arrays made together (as image_folder_to_dask makes them), or "
                    "call compute_chunk_sizes() on both."
                )
            return v  # paired block by block; each pair is checked
        return v.rechunk((X.chunks[0],))
    v = np.asarray(v)
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            f"X has unknown chunk sizes, so a numpy {name} cannot be matched to "
            f"its rows: pass {name} as the dask array made with X, or call "
            "X.compute_chunk_sizes() first."
        )
    if len(v) != X.shape[0]:
        raise ValueError(
            f"Found input variables with inconsistent numbers of samples: "
            f"[{X.shape[0]}, {len(v)}]"
        )
    return da.from_array(v, chunks=(X.chunks[0],))


def _block_hits(y_pred, y, sample_weight=None):
    """Weight of the right predictions of a block, and the block's weight."""
    y = np.asarray(y)
    if len(y) != len(y_pred):
        raise ValueError(
            f"A block has {len(y_pred)} rows in X but {len(y)} labels in y."
        )
    hit = y_pred == y
    if sample_weight is None:
        return np.array([hit.sum(), hit.size], dtype=np.float64)
    w = np.asarray(sample_weight, dtype=np.float64)
    return np.array([w[hit].sum(), w.sum()])


def score(estimator, X, y, sample_weight=None):
    """Mean accuracy of ``estimator`` on the dask array ``X``, computed block
    by block (``y`` and ``sample_weight`` may be dask or numpy arrays)."""
    import dask

    y_pred = map_method(estimator, "predict", X)
    columns = [y_pred, align_rows(y, y_pred, "y")]
    if sample_weight is not None:
        columns.append(align_rows(sample_weight, y_pred, "sample_weight"))
    hits = dask.delayed(_block_hits, pure=True)
    blocks = zip(*(c.to_delayed().ravel() for c in columns), strict=True)
    parts = [hits(*block) for block in blocks]
    (total,) = dask.compute(dask.delayed(sum)(parts))
    if total[1] == 0:
        raise ValueError("The sample weights sum to zero: the accuracy is undefined.")
    return float(total[0] / total[1])
