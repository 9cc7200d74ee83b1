"""The IDX format of the MNIST files: read and write, plain or gzipped."""

import gzip
import io
import math
import os
import zlib
from pathlib import Path

import numpy as np

from ._atomic import write_file_atomic

__all__ = ["read_idx", "write_idx"]

# IDX type byte -> big-endian numpy dtype.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder("="): code for code, dt in _IDX_TYPES.items()}
_GZIP_MAGIC = b"\x1f\x8b"


# A gzipped IDX file may hold at most this many times its own size, plus
# _EXPANSION_ALLOWANCE: MNIST's files expand 2x (labels) to 5x (images),
# while a gzip stream of zeros expands 1,000x -- a 1 MB file that would
# take a gigabyte to read.  The same rule as model files (see _persist).
_MAX_EXPANSION = 20
_EXPANSION_ALLOWANCE = 16 * 2**20
# Bytes decompressed at a time.
_READ_SIZE = 1 << 20


def read_idx(path):
    """Read an IDX file (as the MNIST files are), gzipped or not.

    Parameters
    ----------
    path : str or path-like
        The file. Gzip compression is recognised by the file's first bytes,
        whatever its name.

    Returns
    -------
    array : ndarray
        The data with the shape the header gives, in native byte order
        (uint8 for the MNIST images and labels).

    Raises
    ------
    ValueError
        The file is not an IDX file, is a corrupt gzip file, is truncated or
        longer than its header says, or is gzipped and its header gives more
        data than 20 times the file's size plus 16 MiB (a "gzip bomb": MNIST's
        files hold 2 to 5 times their size); the message names the file.

    See Also
    --------
    write_idx : The inverse.

    Notes
    -----
    The data is decompressed straight into the array the header announces,
    one MiB at a time, so reading takes memory for the file and the array
    only, and a header that announces more than the file holds (or may
    hold) is refused before anything is allocated.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_template.datasets import read_idx, write_idx
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = write_idx(tmp.name + "/labels-idx1-ubyte.gz", np.array([3, 7], np.uint8))
    >>> read_idx(path)
    array([3, 7], dtype=uint8)
    >>> tmp.cleanup()
    """
    path = Path(os.fspath(path))
    raw = path.read_bytes()
    name = repr(str(path))
    if raw[:2] != _GZIP_MAGIC:
        return _parse(io.BytesIO(raw), name, len(raw), limit=len(raw))
    limit = _MAX_EXPANSION * len(raw) + _EXPANSION_ALLOWANCE
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as stream:
            return _parse(stream, name, len(raw), limit=limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name} is a corrupt gzip file ({exc}).") from exc


def _read(stream, n):
    """Up to ``n`` bytes of ``stream``, fewer only where it ends."""
    parts, got = [], 0
    while got < n:
        part = stream.read(min(n - got, _READ_SIZE))
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _parse(stream, name, file_size, *, limit):
    """The IDX array in ``stream`` (the file's bytes, decompressed), whose
    header may announce at most ``limit`` bytes of data."""
    head = _read(stream, 4)
    if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_TYPES:
        raise ValueError(
            f"{name} is not an IDX file: it starts with {head!r}, not two "
            "zero bytes, a type byte and a dimension count."
        )
    dtype, ndim = _IDX_TYPES[head[2]], head[3]
    sizes = _read(stream, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise ValueError(f"{name} is truncated inside its IDX header.")
    shape = tuple(
        int.from_bytes(sizes[i : i + 4], "big") for i in range(0, 4 * ndim, 4)
    )
    expected = math.prod(shape) * dtype.itemsize
    if expected > limit:
        said = f"its header gives shape {shape} ({expected} bytes of data)"
        if limit == file_size:
            raise ValueError(
                f"{name} is truncated: {said}, more than the file holds "
                f"({file_size - 4 - 4 * ndim} bytes follow the header)."
            )
        raise ValueError(
            f"{name} is refused: {said}, more than a gzipped file of "
            f"{file_size} bytes may expand to here ({limit} bytes: "
            f"{_MAX_EXPANSION} times its size plus 16 MiB, a guard against "
            "gzip bombs). Decompress it first (gunzip) if you trust it."
        )
    data = np.empty(expected, dtype=np.uint8)
    got = 0
    while got < expected:
        n = stream.readinto(memoryview(data)[got : got + _READ_SIZE])
        if not n:
            raise ValueError(
                f"{name} is truncated: its header gives shape {shape} "
                f"({expected} bytes of data) but {got} bytes follow it."
            )
        got += n
    if stream.read(1):
        raise ValueError(
            f"{name} is too long: its header gives shape {shape} ({expected} "
            "bytes of data) but more bytes follow it."
        )
    array = data.view(dtype).reshape(shape)
    if not dtype.isnative:
        array = array.byteswap(inplace=True).view(dtype.newbyteorder("="))
    return array


def write_idx(path, array):
    """Write ``array`` as an IDX file, gzipped when ``path`` ends in ``.gz``.

    The file is written under a temporary name and renamed into place.

    Parameters
    ----------
    path : str or path-like
        The file to write.
    array : array-like
        Of dtype uint8, int8, int16, int32, float32 or float64, with 1 to 255
        dimensions.

    Returns
    -------
    path : pathlib.Path
        The file written.

    See Also
    --------
    read_idx : The inverse.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_template.datasets import read_idx, write_idx
    >>> tmp = tempfile.TemporaryDirectory()
    >>> images = np.zeros((2, 28, 28), dtype=np.uint8)
    >>> read_idx(write_idx(tmp.name + "/images-idx3-ubyte", images)).shape
    (2, 28, 28)
    >>> tmp.cleanup()
    """
    path = Path(os.fspath(path))
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(
            f"IDX stores uint8, int8, int16, int32, float32 or float64; got "
            f"{array.dtype}."
        )
    if not 1 <= array.ndim <= 255:
        raise ValueError(f"IDX stores 1 to 255 dimensions; got {array.ndim}.")
    header = bytes([0, 0, code, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape
    )
    body = np.ascontiguousarray(array, dtype=_IDX_TYPES[code]).tobytes()
    data = header + body
    if path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    write_file_atomic(path, data)
    return path
