"""The IDX format of the MNIST files: read and write, plain or gzipped."""

import gzip
import os
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
        The file is not an IDX file, or is truncated or longer than its header
        says; the message names the file.

    See Also
    --------
    write_idx : The inverse.

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
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{str(path)!r} is a corrupt gzip file ({exc}).") from exc
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_TYPES:
        raise ValueError(
            f"{str(path)!r} is not an IDX file: it starts with {raw[:4]!r}, not two "
            "zero bytes, a type byte and a dimension count."
        )
    dtype, ndim = _IDX_TYPES[raw[2]], raw[3]
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise ValueError(f"{str(path)!r} is truncated inside its IDX header.")
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)
    )
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - offset != expected:
        problem = "truncated" if len(raw) - offset < expected else "too long"
        raise ValueError(
            f"{str(path)!r} is {problem}: its header gives shape {shape} "
            f"({expected} bytes of data) but {len(raw) - offset} bytes follow it."
        )
    data = np.frombuffer(raw, dtype=dtype, offset=offset).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


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
