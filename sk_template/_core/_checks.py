"""Checks of tensors that stay on their device, and of computed results."""

# SPDX-License-Identifier: BSD-3-Clause

import torch


def is_tensor(X):
    """Return whether ``X`` is a :class:`torch.Tensor`."""
    return isinstance(X, torch.Tensor)


def check_materialized(X, *, name="X"):
    """Refuse a tensor on the ``meta`` device: it has a shape but no values,
    and torch's own error (from ``Tensor.item()``) does not say which input
    it was."""
    if X.device.type == "meta":
        raise ValueError(
            f"{name} is a tensor on the 'meta' device, which holds a shape and "
            "a dtype but no values. Pass the data itself: create or load the "
            f"tensor on a real device (for example {name}.to_empty(device='cpu') "
            "followed by filling it, or the original tensor)."
        )


def check_finite_result(values, *, reduce, dtype, what):
    """Raise a ValueError naming the overflow when a row of ``values`` has a
    non-finite ``reduce`` (``torch.amin`` of distances, ``torch.amax`` of
    log posteriors): computed from finite inputs, it means that a square or
    a sum went past the largest ``dtype`` value, and every value derived from
    it (probabilities above all) would be NaN or meaningless.

    One reduction along the classes per chunk, and one synchronisation.
    """
    if values.numel() and not bool(torch.isfinite(reduce(values, dim=1)).all()):
        name = str(dtype).removeprefix("torch.")
        raise ValueError(
            f"The {what} overflow {name} for some rows of X: their values are "
            f"too large in magnitude for {name} arithmetic (squares and sums "
            f"go past {torch.finfo(dtype).max:.3g}), so distances and "
            "probabilities cannot be computed. X is probably on another scale "
            "than the training data: scale it the same way (for example divide "
            "both by their largest value)"
            + (", or pass it as float64." if dtype != torch.float64 else ".")
        )


def check_tensor(X, *, name="X"):
    """Validate a 2-D tensor that stays on its device (no copy to the host).

    Checks what :func:`sklearn.utils.check_array` would: two dimensions, at
    least one row and one column, a real dtype and finite values; and that
    it has values at all (not on the ``meta`` device).
    """
    check_materialized(X, name=name)
    if X.is_complex():
        raise ValueError(f"Complex data not supported; {name} has dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"Expected 2D array, got {X.ndim}D tensor instead for {name} with "
            f"shape {tuple(X.shape)}. Reshape your data with X.reshape(-1, 1) if "
            "it has a single feature or X.reshape(1, -1) if it is a single sample."
        )
    n_samples, n_features = X.shape
    if n_samples < 1:
        raise ValueError(
            f"Found array with 0 sample(s) (shape={tuple(X.shape)}) while a "
            "minimum of 1 is required."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a "
            "minimum of 1 is required."
        )
    if X.is_floating_point() and not bool(torch.isfinite(X).all()):
        kind = "NaN" if bool(torch.isnan(X).any()) else "infinity"
        raise ValueError(f"Input {name} contains {kind}.")
    return X
