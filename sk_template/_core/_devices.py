"""Devices and the dtypes computed on them."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import torch

from ._checks import is_tensor


def resolve_device(device):
    """Turn a ``device`` parameter into an available :class:`torch.device`.

    Parameters
    ----------
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"``, ``"auto"`` (CUDA, then
        MPS, else CPU) or a :class:`torch.device`.

    Returns
    -------
    device : torch.device

    Raises
    ------
    ValueError
        If the string is not a device name or the device is not present.
    """
    if isinstance(device, str) and device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(
            f"device={device!r} is not a device torch knows. Use 'cpu', 'cuda', "
            "'cuda:N', 'mps', 'auto' or a torch.device."
        ) from exc
    if dev.type == "cpu":
        return dev
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on "
                "this machine (torch.cuda.is_available() is False). Use "
                "device='cpu' or device='auto'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} was requested but this machine has only "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
        return dev
    if dev.type == "mps":
        if not _mps_available():
            raise ValueError(
                f"device={device!r} was requested but MPS is not available on "
                "this machine. Use device='cpu' or device='auto'."
            )
        return dev
    raise ValueError(
        f"device={device!r} is not supported; use 'cpu', 'cuda', 'cuda:N', 'mps' "
        "or 'auto'."
    )


def device_available(device):
    """Return whether :func:`resolve_device` would accept ``device``."""
    try:
        resolve_device(device)
    except ValueError:
        return False
    return True


def _mps_available():
    backend = getattr(torch.backends, "mps", None)
    return backend is not None and backend.is_available()


def accumulator_dtype(device):
    """The dtype sums are accumulated in: float64, but float32 on MPS, which
    has no float64."""
    return torch.float32 if device.type == "mps" else torch.float64


# torch dtypes computed in float32: float32 holds every value exactly, and
# for the integers (8 bits at most) every square and every sum of up to
# ``MAX_EXACT_ROWS`` of them too.
_IN_FLOAT32 = {
    torch.bool,
    torch.uint8,
    torch.int8,
    torch.float16,
    torch.bfloat16,
    torch.float32,
}


def compute_dtype(X, device):
    """The float dtype distances from ``X`` are computed in on ``device``
    (fitting sums in float64 unless float32 is exact: see
    :func:`~sk_template._core.class_stats`).

    float32 for 8-bit integers and bool (uint8 images above all: half the
    work and memory of float64), float16 and float32; float64 for the rest
    (float64, and 16-, 32- and 64-bit integers, whose squares float32 cannot
    sum exactly: 255**2 * 256 rows is below 2**24, 65535**2 is not), as
    scikit-learn keeps float64 precision.  MPS
    has only float32.
    """
    if device.type == "mps":
        return torch.float32
    if is_tensor(X):
        in_float32 = X.dtype in _IN_FLOAT32
    else:
        dt = np.dtype(X.dtype)
        in_float32 = (
            dt.kind == "b"
            or (dt.kind in "ui" and dt.itemsize == 1)
            or (dt.kind == "f" and dt.itemsize <= 4)
        )
    return torch.float32 if in_float32 else torch.float64
