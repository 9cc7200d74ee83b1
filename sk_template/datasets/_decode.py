"""Decode image files into one preallocated uint8 array, fast and exactly.

Pillow is the general decoder. For 8-bit grey, grey+alpha, RGB and RGBA PNGs
the optional ``pyspng`` (``pip install sk_template[fast]``) decodes about three
times faster and gives the very same pixels: anything it cannot do exactly
(palette, 16-bit, 1/2/4-bit PNGs) goes to Pillow, and every change of mode
after decoding is done by Pillow's own ``Image.convert``, whichever decoder ran.

Pixel rules, the same for both decoders:

* ``mode="L"``, ``"RGB"``, ``"RGBA"``: Pillow's ``convert(mode)``. RGBA to "L"
  or "RGB" drops the alpha channel (no compositing onto a background).
* ``mode=None``: keep the stored mode when it is "L", "LA", "RGB" or "RGBA";
  1-bit becomes "L", palette becomes "RGB" ("RGBA" if it has transparency),
  anything else (CMYK, YCbCr, ...) becomes "RGB".
* 16-bit samples keep their high byte (``v >> 8``), as Pillow already does for
  16-bit RGB PNGs, so 65535 maps to 255 and ``257 * k`` to ``k``. (Pillow's own
  ``convert("L")`` of a 16-bit grey image clips everything above 255 instead.)
* 32-bit integer and float images (mode "I" outside PNG, "F") are refused.

Size limit, the same for both decoders: each decoder reads the image size from
the file's header and passes it to :func:`check_pixel_limit` before decoding
any pixels, which applies Pillow's guard against decompression bombs,
``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 million pixels unless changed; None
turns it off), as Pillow itself does: over the limit, a
``DecompressionBombWarning`` naming the file and the image is decoded; over
twice the limit, an :class:`ImageDecodeError` and nothing is decoded.
"""

import io
import os
import re
import struct
import warnings
import zlib

import numpy as np
from joblib import Parallel, delayed, effective_n_jobs
from PIL import Image, UnidentifiedImageError

from ._errors import ImageDecodeError

try:  # the optional fast PNG decoder
    import pyspng as _pyspng
except ImportError:  # pragma: no cover - depends on the environment
    _pyspng = None

# Set to False to decode everything with Pillow (tests compare the two).
USE_PYSPNG = True
# Part of every cache key: bump it when the pixels a file decodes to change,
# so caches written by an older decoder are not served.
DECODER_VERSION = 2

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")  # a PNG chunk's length and type
_CRC = struct.Struct(">I")
_PNG_SIZE = struct.Struct(">II")  # IHDR's width and height
# PNG colour types pyspng decodes exactly at 8 bits, and Pillow's mode for them.
_SPNG_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}
_KEEP_MODES = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "1": "L"}
_16BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
_READ_BLOCK = 1 << 16
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
# Below this many files a single process is faster than starting workers.
MIN_FILES_PER_JOB = 1000


def read_file(path):
    """Return the bytes of ``path`` with one open and (usually) one read."""
    fd = os.open(path, _OPEN_FLAGS)
    try:
        data = os.read(fd, _READ_BLOCK)
        if len(data) == _READ_BLOCK:
            chunks = [data]
            while chunk := os.read(fd, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
        return data
    finally:
        os.close(fd)


def check_pixel_limit(path, width, height):
    """Apply ``PIL.Image.MAX_IMAGE_PIXELS`` to an image of ``width x height``.

    Every decoder calls this with the size read from the file's header before
    it decodes (and allocates) any pixels. Like Pillow: nothing happens when
    the limit is None; over the limit, a ``DecompressionBombWarning`` naming
    the file; over twice the limit, :class:`ImageDecodeError`.
    """
    limit = Image.MAX_IMAGE_PIXELS
    # As Pillow counts: max(1, width) * max(1, height), for sizes >= 0.
    pixels = (width or 1) * (height or 1)
    if limit is None or pixels <= limit:  # every call: kept cheap
        return
    if pixels > 2 * limit:
        raise ImageDecodeError(path, _too_big(f"{width}x{height}", pixels, limit))
    if pixels > limit:
        warnings.warn(
            f"{path}: {width}x{height} is {pixels:,} pixels, over "
            f"PIL.Image.MAX_IMAGE_PIXELS ({limit:,}), Pillow's guard against "
            "decompression bombs; decoded anyway, as Pillow does up to twice the "
            "limit. Raise PIL.Image.MAX_IMAGE_PIXELS to load such images without "
            "this warning.",
            Image.DecompressionBombWarning,
            stacklevel=2,
        )


def _too_big(size, pixels, limit):
    """The reason of the error for an image over twice the pixel limit."""
    count = "" if pixels is None else f" {pixels:,} pixels,"
    return (
        f"{size} is{count} over twice PIL.Image.MAX_IMAGE_PIXELS ({limit:,}), "
        "Pillow's guard against decompression bombs; raise "
        "PIL.Image.MAX_IMAGE_PIXELS (None turns it off) to load images this large"
    )


def _target_mode(im, mode):
    if mode is not None:
        return mode
    if im.mode == "P":
        return "RGBA" if "transparency" in im.info else "RGB"
    if im.mode == "PA":
        return "RGBA"
    return _KEEP_MODES.get(im.mode, "RGB")


def _convert(im, mode, path):
    """``im`` in the requested mode, following the module's pixel rules."""
    if im.mode in _16BIT_MODES or (im.mode == "I" and im.format == "PNG"):
        high = (np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)
        im = Image.fromarray(high)
    elif im.mode in ("I", "F") or im.mode.startswith(("I;", "F;")):
        raise ImageDecodeError(
            path,
            f"pixel mode {im.mode!r} (32-bit integer or float samples) is not "
            "supported; save the image with 8 or 16 bits per sample",
        )
    target = _target_mode(im, mode)
    if im.mode != target:
        with warnings.catch_warnings():
            # Palette images with byte transparency warn on conversion.
            warnings.simplefilter("ignore", UserWarning)
            im = im.convert(target)
    return im


def _resize(im, size):
    h, w = size
    if im.size != (w, h):
        im = im.resize((w, h), Image.Resampling.BICUBIC)
    return im


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"\xff\xd8\xff", "JPEG"),
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\0", "TIFF"),
    (b"MM\0*", "TIFF"),
    (b"RIFF", "WebP"),
)


def _format_from_signature(data):
    for signature, fmt in _SIGNATURES:
        if data.startswith(signature):
            return fmt
    return None


def _open_pillow(data, path):
    """``Image.open`` (which reads only the header), then the size limit."""
    with warnings.catch_warnings():
        # check_pixel_limit warns instead, naming the file.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            # Pillow's own check, over twice the limit, stops Image.open
            # before it tells the size: say what check_pixel_limit says.
            found = re.search(r"\((\d+) pixels\)", str(exc))
            pixels = int(found[1]) if found else None
            reason = _too_big("the image", pixels, Image.MAX_IMAGE_PIXELS)
            raise ImageDecodeError(path, reason) from None
    check_pixel_limit(path, *im.size)
    return im


def _decode_pillow(data, mode, size, path):
    try:
        with _open_pillow(data, path) as im:
            im.load()
            out = _convert(im, mode, path)
            if size is not None:
                out = _resize(out, size)
            arr = np.asarray(out)
    except (ImageDecodeError, Image.DecompressionBombWarning):
        raise  # ours, or check_pixel_limit's warning turned into an error
    except UnidentifiedImageError:
        fmt = _format_from_signature(data)
        reason = (
            f"corrupt or truncated {fmt} file (Pillow cannot identify it)"
            if fmt
            else "not an image file Pillow can identify"
        )
        raise ImageDecodeError(path, reason) from None
    except Exception as exc:  # Pillow raises many kinds on corrupt data
        reason = f"{type(exc).__name__}: {exc}".replace("\n", " ")
        raise ImageDecodeError(path, f"corrupt or truncated image ({reason})") from exc
    if arr.dtype != np.uint8:  # pragma: no cover - _convert guarantees uint8
        raise ImageDecodeError(path, f"decoded to {arr.dtype}, expected uint8")
    return arr


def _spng_mode(data):
    """Pillow's mode for a PNG pyspng decodes exactly, else None.

    Besides the format (8 bits; grey, grey+alpha, RGB, RGBA), the chunks are
    walked: pyspng ignores a colour-key transparency chunk (tRNS), which
    Pillow applies, and does not check chunk CRCs, so it would decode damaged
    data that Pillow refuses.  Such files go to Pillow.
    """
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    if data[24] != 8:  # bit depth
        return None
    mode = _SPNG_MODES.get(data[25])  # colour type
    pos, n = 8, len(data)
    while mode is not None and pos + 12 <= n:
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        end = pos + 12 + length
        if end > n or kind == b"tRNS":
            return None
        if zlib.crc32(data[pos + 4 : end - 4]) != _CRC.unpack_from(data, end - 4)[0]:
            return None
        if kind == b"IEND":
            return mode
        pos = end
    return None


def _decode_spng(data, stored, mode, size, path):
    width, height = _PNG_SIZE.unpack_from(data, 16)  # IHDR's
    check_pixel_limit(path, width, height)
    try:
        arr = _pyspng.load(data)
    except RuntimeError:  # pyspng's only error: data it cannot decode
        return None  # let Pillow decode it, or name what is wrong with it
    target = mode or stored
    if target == stored and (size is None or arr.shape[:2] == tuple(size)):
        return arr
    im = Image.fromarray(arr)
    if target != stored:
        im = im.convert(target)
    if size is not None:
        im = _resize(im, size)
    return np.asarray(im)


def decode_bytes(data, *, mode="L", size=None, path="<bytes>"):
    """Decode the bytes of one image file into a uint8 array.

    The array has shape (h, w) for modes "L" and (h, w, c) otherwise; see the
    module docstring for the pixel rules. Raises :class:`ImageDecodeError`.
    """
    if not data:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    if _pyspng is not None and USE_PYSPNG:
        stored = _spng_mode(data)
        if stored is not None:
            arr = _decode_spng(data, stored, mode, size, path)
            if arr is not None:
                return arr
    return _decode_pillow(data, mode, size, path)


def decode_file(path, *, mode="L", size=None):
    """Read and decode one image file; see :func:`decode_bytes`."""
    try:
        data = read_file(path)
    except OSError as exc:
        raise ImageDecodeError(path, f"cannot open it ({exc.strerror or exc})") from exc
    return decode_bytes(data, mode=mode, size=size, path=path)


def decode_chunk(paths, mode, size, shape, stop_on_error, out=None):
    """Decode ``paths`` into ``out`` (allocated when None), row by row.

    Returns ``(out, errors, mismatched)``: ``errors`` lists ``(row, reason)`` of
    unreadable files and ``mismatched`` lists ``(row, shape)`` of images whose
    shape is not ``shape``; those rows of ``out`` are left unset. With
    ``stop_on_error`` the chunk ends at its first unreadable file.
    """
    if out is None:
        out = np.empty((len(paths), *shape), dtype=np.uint8)
    errors, mismatched = [], []
    for i, path in enumerate(paths):
        try:
            arr = decode_file(path, mode=mode, size=size)
        except ImageDecodeError as exc:
            errors.append((i, exc.reason))
            if stop_on_error:
                break
            continue
        if arr.shape != shape:
            mismatched.append((i, arr.shape))
            continue
        out[i] = arr
    return out, errors, mismatched


def _chunks(n, n_jobs):
    size = min(max(n // (n_jobs * 8), 256), 8192)
    return [(a, min(a + size, n)) for a in range(0, n, size)]


def reference_shape(paths, mode, size, stop_on_error):
    """Shape of the first decodable file, and the errors met before it."""
    errors = []
    for i, path in enumerate(paths):
        try:
            return decode_file(path, mode=mode, size=size).shape, errors
        except ImageDecodeError as exc:
            if stop_on_error:
                raise
            errors.append((i, exc.reason))
    return None, errors


def decode_files(paths, *, mode, size, shape, stop_on_error, n_jobs, progress=None):
    """Decode every file of ``paths`` into one (n, *shape) uint8 array.

    Work is split into chunks decoded by ``n_jobs`` joblib workers when there
    are enough files to pay for them; each worker returns its block and the
    result is the same as with one process. Returns ``(out, errors,
    mismatched)`` with row indices into ``paths`` (see :func:`decode_chunk`).
    """
    n = len(paths)
    out = np.empty((n, *shape), dtype=np.uint8)
    errors, mismatched = [], []
    n_workers = effective_n_jobs(n_jobs) if n_jobs is not None else 1
    if n_workers > 1 and n >= 2 * MIN_FILES_PER_JOB:
        bounds = _chunks(n, n_workers)
        # Each worker returns its block, copied into place below.
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(decode_chunk)(paths[a:b], mode, size, shape, stop_on_error)
            for a, b in bounds
        )
    else:
        bounds = [(a, min(a + 1024, n)) for a in range(0, n, 1024)]
        # Decoded straight into place.
        results = (
            decode_chunk(paths[a:b], mode, size, shape, stop_on_error, out=out[a:b])
            for a, b in bounds
        )
    for (a, b), (block, errs, mism) in zip(bounds, results, strict=True):
        if not np.may_share_memory(block, out):
            out[a:b] = block
        errors.extend((a + i, r) for i, r in errs)
        mismatched.extend((a + i, s) for i, s in mism)
        if progress is not None:
            progress.update(b)
        if errors and stop_on_error:
            break
    return out, errors, mismatched
