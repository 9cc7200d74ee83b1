"""Fitting a nearest-mean model on data split across workers.

A nearest-mean model is a sum and a weight per class: each worker sums its own
blocks, the sums are added, and the model equals the one fitted in memory.
The scheduling is an existing engine's: joblib (whose backends dask and ray
plug into) for :func:`fit_blocks`, dask for :func:`fit_dask`.
"""

# SPDX-License-Identifier: BSD-3-Clause

from functools import reduce
from operator import add

import numpy as np
from joblib import Parallel, delayed
from sklearn.base import clone
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, column_or_1d

from ._classifier import check_weights, label_indices
from ._core import class_stats, resolve_device


def _check_estimator(estimator):
    estimator._validate_params()
    if estimator.centroid != "mean":
        raise ValueError(
            f"centroid={estimator.centroid!r} cannot be fitted from partial "
            "results: a median is not a sum. Use centroid='mean'."
        )
    return clone(estimator)


def _check_classes(classes):
    classes = np.unique(column_or_1d(np.asarray(classes)))
    check_classification_targets(classes)
    if classes.size < 2:
        raise ValueError(f"At least 2 classes are needed; got {classes.tolist()!r}.")
    return classes


def block_stats(X, y, classes, sample_weight=None, *, device="cpu", batch_size="auto"):
    """Class statistics of one block of rows: what a worker computes.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        The block's images, one flattened image per row.
    y : array-like of shape (n_samples,)
        Their labels, each one of ``classes``.
    classes : ndarray of shape (n_classes,)
        Every label, sorted (as ``np.unique`` returns them).
    sample_weight : array-like of shape (n_samples,), default=None
        Non-negative weights.
    device, batch_size
        As :class:`~sk_template.NearestMeanImageClassifier`'s parameters.

    Returns
    -------
    stats : sk_template._core.ClassStats
        Sums that add up across blocks.
    """
    X = check_array(X, dtype="numeric")
    y = column_or_1d(np.asarray(y))
    if len(y) != len(X):
        raise ValueError(f"A block has {len(X)} rows in X but {len(y)} labels in y.")
    index = label_indices(y, classes)
    sample_weight = check_weights(sample_weight, X)
    return class_stats(
        X,
        index,
        classes.size,
        sample_weight,
        device=resolve_device(device),
        batch_size=batch_size,
    )


def _stats_of_block(block, classes, device, batch_size):
    if callable(block):  # loaded where it runs, e.g. from a file
        block = block()
    X, y, *weights = block
    sample_weight = weights[0] if weights else None
    return block_stats(
        X, y, classes, sample_weight, device=device, batch_size=batch_size
    )


def _fitted(estimator, classes, stats):
    estimator.n_features_in_ = stats.sums.shape[1]
    return estimator._set_state(classes, stats)


def fit_blocks(estimator, blocks, *, classes, n_jobs=None):
    """Fit on blocks of rows processed in parallel by joblib.

    Each block's class sums are computed in a joblib worker and the results
    are added: the model equals ``estimator.fit`` on all the rows (to float
    rounding).  The work runs on whatever joblib backend is active, so inside
    ``joblib.parallel_config(backend="dask")`` it runs on a dask cluster, and
    likewise for ray.

    Parameters
    ----------
    estimator : NearestMeanImageClassifier
        Unfitted template; a fitted clone is returned.
    blocks : iterable
        Each item is ``(X, y)`` or ``(X, y, sample_weight)``, or a callable
        without arguments that returns one (called in the worker, so a block
        can be read from disk where it is processed).
    classes : array-like
        Every label that occurs in the blocks.
    n_jobs : int, default=None
        Number of jobs, as in :class:`joblib.Parallel`.

    Returns
    -------
    estimator : NearestMeanImageClassifier
        A fitted clone of ``estimator``.

    Examples
    --------
    >>> import numpy as np
    >>> from sk_template import NearestMeanImageClassifier, fit_blocks
    >>> X = np.array([[0, 0], [0, 10], [250, 250], [240, 255]], dtype=np.uint8)
    >>> y = np.array([3, 3, 7, 7])
    >>> blocks = [(X[:3], y[:3]), (X[3:], y[3:])]
    >>> clf = fit_blocks(NearestMeanImageClassifier(), blocks, classes=[3, 7])
    >>> clf.centroids_
    array([[  0. ,   5. ],
           [245. , 252.5]])
    """
    estimator = _check_estimator(estimator)
    classes = _check_classes(classes)
    parts = Parallel(n_jobs=n_jobs)(
        delayed(_stats_of_block)(block, classes, estimator.device, estimator.batch_size)
        for block in blocks
    )
    if not parts:
        raise ValueError("blocks is empty: there is nothing to fit.")
    return _fitted(estimator, classes, reduce(add, parts))


def fit_dask(estimator, X, y, *, classes=None, sample_weight=None):
    """Fit on dask arrays, one task per block of rows, on any dask scheduler.

    With a ``dask.distributed`` client active the blocks are summed on its
    workers, next to the data; only the sums (a few arrays of
    ``n_classes * n_features`` numbers) travel.

    Parameters
    ----------
    estimator : NearestMeanImageClassifier
        Unfitted template; a fitted clone is returned.
    X : dask.array.Array of shape (n_samples, n_features)
        Chunked along rows only (column chunks are merged). Its row chunk
        sizes may be unknown (NaN), as those of
        :func:`~sk_template.datasets.image_folder_to_dask` with
        ``on_error="skip"`` are.
    y : dask.array.Array or array-like of shape (n_samples,)
        The labels: rechunked like the rows of ``X``, or when those are of
        unknown size, a dask array with the same blocks (made with ``X``).
    classes : array-like, default=None
        Every label; computed from ``y`` (one more pass, which decodes the
        images again when ``y`` comes from the same tasks as ``X``) when
        omitted: pass :func:`~sk_template.datasets.list_classes` of the folder.
    sample_weight : dask.array.Array or array-like of shape (n_samples,), \
            default=None
        Aligned with ``X`` as ``y`` is.

    Returns
    -------
    estimator : NearestMeanImageClassifier
        A fitted clone of ``estimator``.
    """
    import dask
    import dask.array as da

    from ._dask import align_rows

    estimator = _check_estimator(estimator)
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D; got a dask array of shape {X.shape}.")
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    # Known row chunks: y and the weights are rechunked to them; unknown ones
    # (image_folder_to_dask(on_error="skip")): paired block by block.
    y = align_rows(y, X, "y")
    if classes is None:
        classes = da.unique(y).compute()
    classes = _check_classes(classes)
    x_blocks = X.to_delayed().ravel()
    y_blocks = y.to_delayed().ravel()
    if sample_weight is None:
        w_blocks = [None] * len(x_blocks)
    else:
        w_blocks = align_rows(sample_weight, X, "sample_weight").to_delayed().ravel()
    stat = dask.delayed(block_stats, pure=True)
    batch_size = estimator.batch_size
    parts = [
        stat(xb, yb, classes, wb, device=estimator.device, batch_size=batch_size)
        for xb, yb, wb in zip(x_blocks, y_blocks, w_blocks, strict=True)
    ]
    # A tree of additions keeps every worker busy and no single one flooded.
    while len(parts) > 1:
        parts = [
            dask.delayed(add)(*parts[i : i + 2]) if i + 1 < len(parts) else parts[i]
            for i in range(0, len(parts), 2)
        ]
    (total,) = dask.compute(parts[0])
    return _fitted(estimator, classes, total)
