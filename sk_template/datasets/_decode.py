"""Decode image files into one preallocated uint8 array, fast and exactly.

Pillow is the general decoder (PNG, JPEG, WebP, BMP, GIF, TIFF, PNM). Two
optional decoders of the ``fast`` extra (``pip install sk_template[fast]``)
take the common cases and give the very same pixels:

* ``pyspng`` decodes small 8-bit grey, grey+alpha, RGB and RGBA PNGs (up to
  ``SPNG_MAX_BYTES`` of image data: MNIST-sized images, icons) about twice as
  fast; anything it cannot do exactly (palette, 16-bit, 1/2/4-bit PNGs,
  colour-key transparency, an EXIF block) goes to Pillow. pyspng does not
  check chunk CRCs, which Pillow refuses damaged files on, so they are
  checked first. Neither does it check the zlib stream's Adler-32, which
  Pillow does: checking it would inflate the data a second time, 3.5 us of
  pyspng's 6.5 us on an MNIST digit (cold MNIST loads were 25% slower), and
  a file whose chunk CRCs hold but whose Adler-32 does not can only have been
  made so (damage to the data breaks its chunk's CRC). Such a file decodes
  to the pixels its data holds with pyspng, and is refused by Pillow; the
  cache key names the decoders, so a cache is never served across them.
* ``simplejpeg`` (libjpeg-turbo, as Pillow's wheels) decodes 8-bit grey and
  colour JPEGs about 15% faster than Pillow; CMYK, 12-bit, arithmetic-coded
  and EXIF-carrying JPEGs go to Pillow. Both run libjpeg-turbo with the same
  settings (accurate integer DCT, smooth chroma upsampling), so the pixels are
  equal (the tests compare them). A Pillow built on another JPEG library may
  round differently, so the cache key names the decoders in use and their
  versions (:func:`decoder_id`) and a cache is never served across decoders.

Every change of mode after decoding is done by Pillow's own ``Image.convert``
and every resize by Pillow's ``Image.resize``, whichever decoder ran.

Pixel rules, whichever decoder ran:

* ``mode="L"``, ``"RGB"``, ``"RGBA"``: Pillow's ``convert(mode)``. RGBA to "L"
  or "RGB" drops the alpha channel (no compositing onto a background).
* ``mode=None``: keep the stored mode when it is "L", "LA", "RGB" or "RGBA";
  1-bit becomes "L", palette becomes "RGB" ("RGBA" if it has transparency),
  anything else (CMYK, YCbCr, ...) becomes "RGB".
* 16-bit samples keep their high byte (``v >> 8``), as Pillow already does for
  16-bit RGB PNGs, so 65535 maps to 255 and ``257 * k`` to ``k``. (Pillow's own
  ``convert("L")`` of a 16-bit grey image clips everything above 255 instead.)
* 32-bit integer and float images (mode "I" outside PNG, "F") are refused.
* The EXIF orientation (JPEG, WebP, PNG, TIFF) is applied: a phone photo comes
  out upright, as image viewers show it. A GIF gives its first frame.

Resizing to ``size=(h, w)`` (see :func:`resize_box` for the two policies) uses
Pillow's antialiased BILINEAR filter, as torchvision's ``Resize`` does by
default. A JPEG larger than the output is first decoded at 1/2, 1/4 or 1/8
scale by libjpeg itself (Pillow's ``Image.draft``; the scaled inverse DCT
averages blocks of pixels, like an area filter), never below the output size,
so the filter only ever bridges less than a factor of two, where bilinear and
bicubic differ little and bilinear is the faster. An image already of the
output size is not resampled at all, whatever the policy.

Size limit, the same for every decoder: each decoder reads the image size from
the file's header and passes it to :func:`check_pixel_limit` before decoding
any pixels, which applies Pillow's guard against decompression bombs,
``PIL.Image.MAX_IMAGE_PIXELS`` (about 89 million pixels unless changed; None
turns it off), as Pillow itself does: over the limit, a
``DecompressionBombWarning`` naming the file and the image is decoded; over
twice the limit, an :class:`ImageDecodeError` and nothing is decoded. Where
warnings are errors (``python -W error``), the warning is one too: an
:class:`ImageDecodeError` naming the file.

Joblib's worker processes (``n_jobs``) decode with the settings of the process
that started them: ``PIL.Image.MAX_IMAGE_PIXELS``, ``USE_PYSPNG`` and
``USE_SIMPLEJPEG`` are passed along with each chunk of files (and whether
a ``DecompressionBombWarning`` is an error), and the pixel-limit warnings a
worker raises are repeated in the caller.
"""

import io
import os
import platform
import re
import struct
import warnings
import zlib

import numpy as np
import PIL
from joblib import Parallel, delayed, effective_n_jobs
from PIL import ExifTags, Image, UnidentifiedImageError

from ._errors import ImageDecodeError

try:  # the optional fast PNG decoder
    import pyspng as _pyspng
except ImportError:  # pragma: no cover - depends on the environment
    _pyspng = None
try:  # the optional fast JPEG decoder
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - depends on the environment
    _simplejpeg = None

# Set to False to decode everything with Pillow (tests compare the decoders).
USE_PYSPNG = True
USE_SIMPLEJPEG = True
# Part of every cache key: bump it when the pixels a file decodes to change,
# so caches written by an older decoder are not served.
# 3: EXIF orientation applied; bilinear resizing; resize="crop".
DECODER_VERSION = 3
RESIZE_POLICIES = ("stretch", "crop")
RESAMPLE = Image.Resampling.BILINEAR

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHUNK_HEAD = struct.Struct(">I4s")  # a PNG chunk's length and type
_CRC = struct.Struct(">I")
_PNG_SIZE = struct.Struct(">II")  # IHDR's width and height
# PNG colour types pyspng decodes exactly at 8 bits, and Pillow's mode for them.
_SPNG_MODES = {0: "L", 2: "RGB", 4: "LA", 6: "RGBA"}
_KEEP_MODES = {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA", "1": "L"}
_16BIT_MODES = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})
# Image.transpose that turns a stored image upright, per EXIF orientation.
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# JPEG frame markers simplejpeg decodes as Pillow does: baseline, extended and
# progressive Huffman-coded frames; every other frame marker goes to Pillow.
_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2})
_JPEG_OTHER_FRAMES = frozenset(range(0xC3, 0xD0)) - {0xC4, 0xC8, 0xCC}
# PNGs with more image data (bytes of filtered rows) than this go to Pillow:
# pyspng takes bytes only (a copy of the file), and for larger images both
# spend their time in zlib's inflate.
SPNG_MAX_BYTES = 8192
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)
# Below this many files a single process is faster than starting workers.
MIN_FILES_PER_JOB = 1000
# Bytes an image file may hold besides its pixels (see max_file_bytes).
METADATA_BYTES = 64 << 20


def read_file(path):
    """Return the bytes of ``path``: one open, one ``fstat``, reads into one
    buffer of the file's size.

    At most the size ``fstat`` tells is read (a file growing meanwhile is read
    as it was), and the memory taken is that size, once: no read is unbounded
    and no bytes are copied. A file larger than :func:`max_file_bytes` is an
    :class:`ImageDecodeError`, and is not read.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        size = os.fstat(fd).st_size
        limit = max_file_bytes()
        if limit is not None and size > limit:
            raise ImageDecodeError(path, too_large(size, limit))
        buf = bytearray(size)
        view = memoryview(buf)
        done = 0
        while done < size:
            n = os.readv(fd, [view[done:]]) if _READV else _readinto(fd, view[done:])
            if n == 0:  # the file shrank meanwhile
                break
            done += n
        view.release()
        if done < size:
            del buf[done:]
        return buf
    finally:
        os.close(fd)


def read_files(paths):
    """Yield the bytes of each local file of ``paths``, or the
    :class:`ImageDecodeError` saying why it cannot be read (the reader of
    local folders; :mod:`._store` has the one of other stores)."""
    for path in paths:
        try:
            yield read_file(path)
        except ImageDecodeError as exc:
            yield exc
        except OSError as exc:
            yield ImageDecodeError(path, f"cannot open it ({exc.strerror or exc})")


def max_file_bytes():
    """The size over which a file is refused unread, or None (no limit).

    No image file within twice ``PIL.Image.MAX_IMAGE_PIXELS`` (over which
    :func:`check_pixel_limit` refuses it anyway) is larger: 8 bytes a pixel
    (16-bit RGBA, uncompressed) and :data:`METADATA_BYTES` (64 MiB) of
    metadata. With Pillow's default
    limit that is 1.5 GB; it keeps a huge or hostile file (local, or an
    object in a bucket) from being read into memory at all.
    """
    limit = Image.MAX_IMAGE_PIXELS
    return None if limit is None else 16 * int(limit) + METADATA_BYTES


def too_large(size, limit):
    """Why a file of ``size`` bytes over :func:`max_file_bytes` is refused."""
    return (
        f"{size:,} bytes, more than an image within twice "
        f"PIL.Image.MAX_IMAGE_PIXELS can take ({limit:,} bytes): never read. "
        "Raise PIL.Image.MAX_IMAGE_PIXELS (None turns it off) to read such files"
    )


_READV = hasattr(os, "readv")


def _readinto(fd, view):  # pragma: no cover - where os.readv is missing
    data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


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
    try:
        warnings.warn(
            f"{path}: {width}x{height} is {pixels:,} pixels, over "
            f"PIL.Image.MAX_IMAGE_PIXELS ({limit:,}), Pillow's guard against "
            "decompression bombs; decoded anyway, as Pillow does up to twice the "
            "limit. Raise PIL.Image.MAX_IMAGE_PIXELS to load such images without "
            "this warning.",
            Image.DecompressionBombWarning,
            stacklevel=2,
        )
    except Image.DecompressionBombWarning:  # warnings are errors (-W error)
        raise ImageDecodeError(
            path,
            f"{width}x{height} is {pixels:,} pixels, over "
            f"PIL.Image.MAX_IMAGE_PIXELS ({limit:,}), and DecompressionBombWarning "
            "is an error here (-W error); raise PIL.Image.MAX_IMAGE_PIXELS to load "
            "images this large",
        ) from None


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


def _version(module):
    return getattr(module, "__version__", "?")


def decoder_id():
    """What decoded pixels depend on besides the options: a part of cache keys.

    The decoders in use and their versions (a new libjpeg-turbo in Pillow's
    wheels may round differently).
    """
    jpeg = (
        f"simplejpeg-{_version(_simplejpeg)}"
        if _simplejpeg is not None and USE_SIMPLEJPEG
        else "pillow"
    )
    png = (
        f"pyspng-{_version(_pyspng)}"
        if _pyspng is not None and USE_PYSPNG
        else "pillow"
    )
    return (
        f"{DECODER_VERSION}/pillow={PIL.__version__}/jpeg={jpeg}/png={png}"
        f"/{platform.machine()}"
    )


def _bomb_warning_is_error():
    """Whether a DecompressionBombWarning raises here (``-W error``)."""
    with warnings.catch_warnings(record=True):
        try:
            warnings.warn("probe", Image.DecompressionBombWarning, stacklevel=1)
        except Image.DecompressionBombWarning:
            return True
    return False


def settings():
    """The module-level settings a decoding worker process must share.

    Passed to :func:`decode_chunk` in every joblib task, since a worker
    process starts with the defaults whatever the caller changed:
    ``(MAX_IMAGE_PIXELS, USE_PYSPNG, USE_SIMPLEJPEG, bomb warnings are
    errors)``.
    """
    return (
        Image.MAX_IMAGE_PIXELS,
        USE_PYSPNG,
        USE_SIMPLEJPEG,
        _bomb_warning_is_error(),
    )


def _apply(shared):
    """Make ``shared`` (from :func:`settings`) this process's settings."""
    global USE_PYSPNG, USE_SIMPLEJPEG
    Image.MAX_IMAGE_PIXELS, USE_PYSPNG, USE_SIMPLEJPEG, _ = shared


def _decode_chunk_in_worker(
    paths, mode, size, resize, shape, stop_on_error, shared, store=None, sizes=None
):
    """:func:`decode_chunk` in a worker process, with the caller's settings;
    also returns the pixel-limit warnings raised, for the caller to repeat
    (a worker's own warnings reach nobody)."""
    _apply(shared)
    with warnings.catch_warnings(record=True) as caught:
        action = "error" if shared[3] else "always"
        warnings.simplefilter(action, Image.DecompressionBombWarning)
        result = decode_chunk(
            paths, mode, size, resize, shape, stop_on_error, store=store, sizes=sizes
        )
    bombs = [
        str(w.message)
        for w in caught
        if issubclass(w.category, Image.DecompressionBombWarning)
    ]
    return (*result, bombs)


def resize_box(width, height, size, resize):
    """The region of a ``width`` x ``height`` image that becomes ``size``.

    ``size`` is the output's ``(height, width)``. Returns ``(left, top, right,
    bottom)`` in pixels, as Pillow's ``Image.resize(box=...)`` takes it:

    * ``"stretch"``: the whole image, scaled to ``size`` whatever its aspect
      ratio.
    * ``"crop"``: the largest centred region with the aspect ratio of
      ``size``; scaling it to ``size`` is torchvision's ``Resize`` of the
      shorter side followed by ``CenterCrop`` (timm's "center" crop mode),
      computed in one resampling step.

    Examples
    --------
    >>> resize_box(500, 375, (64, 64), "stretch")
    (0.0, 0.0, 500.0, 375.0)
    >>> resize_box(500, 375, (64, 64), "crop")
    (62.5, 0.0, 437.5, 375.0)
    """
    out_h, out_w = size
    if resize == "crop":
        if width * out_h > height * out_w:  # wider than the output: trim the sides
            kept = height * out_w / out_h
            left = (width - kept) / 2
            return (left, 0.0, left + kept, float(height))
        kept = width * out_h / out_w  # taller: trim the top and bottom
        top = (height - kept) / 2
        return (0.0, top, float(width), top + kept)
    return (0.0, 0.0, float(width), float(height))


def jpeg_scale(width, height, size, resize):
    """The libjpeg scale denominator (1, 2, 4 or 8) for a JPEG decoded to ``size``.

    The largest that keeps the region :func:`resize_box` resamples at least as
    large as the output, so the filter never enlarges what libjpeg reduced.

    Examples
    --------
    >>> jpeg_scale(500, 375, (64, 64), "stretch")
    4
    >>> jpeg_scale(500, 375, (224, 224), "crop")
    1
    """
    left, top, right, bottom = resize_box(width, height, size, resize)
    ratio = min((right - left) / size[1], (bottom - top) / size[0])
    return next((s for s in (8, 4, 2) if ratio >= s), 1)


def _orientation(im):
    """The EXIF orientation of ``im`` (2..8), or 1: upright as stored."""
    if "exif" not in im.info and im.format != "TIFF":
        return 1
    try:
        value = im.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # an unreadable EXIF block does not spoil the pixels
        return 1
    return value if value in _UPRIGHT else 1


def _stored(size, orientation):
    """``size`` in the stored orientation: orientations 5..8 swap the axes."""
    return size if size is None or orientation < 5 else (size[1], size[0])


def _resize(im, size, resize, full=None, scale=1):
    """``im`` resized to ``size`` = (h, w) following the ``resize`` policy.

    ``im`` may be a JPEG decoded at ``1/scale`` of its ``full`` (width,
    height): the region is computed on the full image and scaled down, so the
    partial pixels at the right and bottom edges of a scaled decode are
    weighted exactly.
    """
    h, w = size
    width, height = full or im.size
    box = resize_box(width, height, size, resize)
    if scale == 1 and im.size == (w, h) and box == (0, 0, w, h):
        return im
    return im.resize((w, h), RESAMPLE, box=tuple(v / scale for v in box))


def _finish(im, mode, size, resize, path, full=None, scale=1):
    """The pixels of a decoded image: converted, resized, upright (see module)."""
    orientation = _orientation(im)
    out = _convert(im, mode, path)
    if size is not None:
        out = _resize(out, _stored(size, orientation), resize, full, scale)
    if orientation != 1:  # after resizing: the same geometry, less to move
        out = out.transpose(_UPRIGHT[orientation])
    return np.asarray(out)


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


def _draft(im, size, resize):
    """Have libjpeg decode the JPEG ``im`` reduced for ``size``; the scale used."""
    width, height = im.size
    scale = jpeg_scale(width, height, size, resize)
    if scale == 1:
        return 1
    # Image.draft picks the largest scale that keeps at least this size: scale.
    drafted = im.draft(im.mode, (width // scale, height // scale))
    return 1 if drafted is None else round(width / drafted[1][2])


# Files larger than this are handed to Pillow without a copy (io.BytesIO
# copies a bytearray): a huge file is held in memory once.
_COPY_LIMIT = 1 << 20


class _BufferReader(io.RawIOBase):
    """A seekable, read-only file over a buffer, sharing its memory."""

    def __init__(self, data):
        self._view = memoryview(data)
        self._pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def readinto(self, b):
        n = max(0, min(len(b), len(self._view) - self._pos))
        b[:n] = self._view[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: len(self._view)}
        self._pos = max(0, base[whence] + offset)
        return self._pos

    def tell(self):
        return self._pos


def _stream(data):
    """``data`` as the file object Pillow reads; large buffers are not copied."""
    if len(data) <= _COPY_LIMIT or isinstance(data, bytes):
        return io.BytesIO(data)
    return io.BufferedReader(_BufferReader(data), buffer_size=1 << 16)


def _open_pillow(data, path):
    """``Image.open`` (which reads only the header), then the size limit."""
    with warnings.catch_warnings():
        # check_pixel_limit warns instead, naming the file.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            im = Image.open(_stream(data))
        except Image.DecompressionBombError as exc:
            # Pillow's own check, over twice the limit, stops Image.open
            # before it tells the size: say what check_pixel_limit says,
            # with the size where the header is one we read.
            size = _header_size(data)
            if size is not None:
                check_pixel_limit(path, *size)
            found = re.search(r"\((\d+) pixels\)", str(exc))
            pixels = int(found[1]) if found else None
            reason = _too_big("the image", pixels, Image.MAX_IMAGE_PIXELS)
            raise ImageDecodeError(path, reason) from None
    check_pixel_limit(path, *im.size)
    return im


def _png_size(data):
    """``(width, height)`` from a PNG's whole IHDR chunk, else None."""
    if data[:8] != _PNG_SIGNATURE or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    return _PNG_SIZE.unpack_from(data, 16)


def _header_size(data):
    """``(width, height)`` from a PNG's or a JPEG's header, else None."""
    size = _png_size(data)
    if size is not None:
        return size
    frame = _jpeg_frame(data)
    return None if frame is None else (frame[1], frame[0])


def _decode_pillow(data, mode, size, resize, path):
    try:
        with _open_pillow(data, path) as im:
            full, scale = im.size, 1
            if size is not None and im.format in ("JPEG", "MPO"):
                scale = _draft(im, _stored(size, _orientation(im)), resize)
            im.load()
            arr = _finish(im, mode, size, resize, path, full, scale)
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

    Besides the format (8 bits; grey, grey+alpha, RGB, RGBA) and the size
    (at most ``SPNG_MAX_BYTES`` of image data), the chunks are walked: pyspng
    ignores a colour-key transparency chunk (tRNS), which Pillow applies, and
    an EXIF chunk (eXIf), whose orientation Pillow reads, and it does not
    check chunk CRCs, so it would decode damaged data that Pillow refuses.
    Such files go to Pillow.  (Nor does it check the zlib Adler-32: see the
    module's docstring.)
    """
    size = _png_size(data)
    if size is None or data[24] != 8:  # bit depth
        return None
    mode = _SPNG_MODES.get(data[25])  # colour type
    if mode is None:
        return None
    width, height = size
    if height * (1 + width * len(mode)) > SPNG_MAX_BYTES:
        return None
    pos, n = 8, len(data)
    while pos + 12 <= n:
        length, kind = _CHUNK_HEAD.unpack_from(data, pos)
        end = pos + 12 + length
        if end > n or kind in (b"tRNS", b"eXIf"):
            return None
        if zlib.crc32(data[pos + 4 : end - 4]) != _CRC.unpack_from(data, end - 4)[0]:
            return None
        if kind == b"IEND":
            return mode
        pos = end
    return None


def _decode_spng(data, stored, mode, size, resize, path):
    width, height = _PNG_SIZE.unpack_from(data, 16)  # IHDR's
    check_pixel_limit(path, width, height)
    try:
        arr = _pyspng.load(bytes(data))  # it takes bytes only; small here
    except RuntimeError:  # pyspng's only error: data it cannot decode
        return None  # let Pillow decode it, or name what is wrong with it
    if (mode is None or mode == stored) and (
        size is None or arr.shape[:2] == tuple(size)
    ):
        return arr
    return _finish(Image.fromarray(arr), mode, size, resize, path)


def _jpeg_frame(data):
    """``(height, width, components)`` of a JPEG simplejpeg decodes as Pillow
    does (8-bit grey or colour, Huffman-coded, no EXIF block), else None.

    Walks the marker segments up to the first scan; anything unexpected
    returns None, and the file goes to Pillow.
    """
    if data[:3] != b"\xff\xd8\xff":
        return None
    frame, pos, n = None, 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xDA:  # start of scan: the headers are over
            return frame
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xE1 and data.startswith(b"Exif\0\0", pos + 4):
            return None  # an orientation to apply: Pillow reads it
        if marker in _JPEG_OTHER_FRAMES or (marker in _JPEG_FRAMES and frame):
            return None
        if marker in _JPEG_FRAMES:
            body = data[pos + 4 : pos + 10]
            if len(body) < 6 or body[0] != 8 or body[5] not in (1, 3):
                return None  # 12-bit, CMYK, or damaged
            frame = (
                int.from_bytes(body[1:3], "big"),
                int.from_bytes(body[3:5], "big"),
                body[5],
            )
        pos += 2 + length
    return None


def _decode_simplejpeg(data, frame, mode, size, resize, path):
    height, width, components = frame
    check_pixel_limit(path, width, height)
    scale = 1 if size is None else jpeg_scale(width, height, size, resize)
    shape = (-(-height // scale), -(-width // scale))  # libjpeg rounds up
    colour = components == 3
    try:
        arr = _simplejpeg.decode_jpeg(
            data,
            # RGBX is the layout of Pillow's RGB images: no repacking below.
            "RGBX" if colour else "GRAY",
            min_height=shape[0] if scale > 1 else 0,
            min_width=shape[1] if scale > 1 else 0,
        )
    except ValueError:  # simplejpeg's error: data libjpeg-turbo cannot decode
        return None  # let Pillow decode it, or name what is wrong with it
    if arr.shape[:2] != shape:
        return None  # simplejpeg chose another scale (tiny images)
    if colour:
        im = Image.frombytes("RGB", shape[::-1], arr, "raw", "RGBX")
    else:
        im = Image.fromarray(arr[..., 0])
    return _finish(im, mode, size, resize, path, (width, height), scale)


def decode_bytes(data, *, mode="L", size=None, resize="stretch", path="<bytes>"):
    """Decode the bytes of one image file into a uint8 array.

    The array has shape (h, w) for modes "L" and (h, w, c) otherwise; see the
    module docstring for the pixel rules and ``resize`` (:func:`resize_box`).
    Raises :class:`ImageDecodeError`.
    """
    if not data:
        raise ImageDecodeError(path, "empty file (0 bytes)")
    if _pyspng is not None and USE_PYSPNG:
        stored = _spng_mode(data)
        if stored is not None:
            arr = _decode_spng(data, stored, mode, size, resize, path)
            if arr is not None:
                return arr
    if _simplejpeg is not None and USE_SIMPLEJPEG:
        frame = _jpeg_frame(data)
        if frame is not None:
            arr = _decode_simplejpeg(data, frame, mode, size, resize, path)
            if arr is not None:
                return arr
    return _decode_pillow(data, mode, size, resize, path)


def decode_file(path, *, mode="L", size=None, resize="stretch"):
    """Read and decode one local image file; see :func:`decode_bytes`."""
    (data,) = read_files([path])
    if isinstance(data, ImageDecodeError):
        raise data
    return decode_bytes(data, mode=mode, size=size, resize=resize, path=path)


def _read(paths, store, sizes):
    """The bytes (or the error) of each file of ``paths``, in order: from the
    local disk, or from ``store`` (see :mod:`._store`)."""
    return read_files(paths) if store is None else store.read(paths, sizes)


def decode_chunk(
    paths, mode, size, resize, shape, stop_on_error, out=None, store=None, sizes=None
):
    """Decode ``paths`` into ``out`` (allocated when None), row by row.

    Returns ``(out, errors, mismatched)``: ``errors`` lists ``(row, reason)`` of
    unreadable files and ``mismatched`` lists ``(row, shape)`` of images whose
    shape is not ``shape``; those rows of ``out`` are left unset. With
    ``stop_on_error`` the chunk ends at its first unreadable file. The files
    are local, or in ``store`` with their listed ``sizes``.
    """
    if out is None:
        out = np.empty((len(paths), *shape), dtype=np.uint8)
    errors, mismatched = [], []
    for i, (path, data) in enumerate(
        zip(paths, _read(paths, store, sizes), strict=True)
    ):
        try:
            if isinstance(data, ImageDecodeError):
                raise data
            arr = decode_bytes(data, mode=mode, size=size, resize=resize, path=path)
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


def first_image(paths, mode, size, resize, stop_on_error, store=None, sizes=None):
    """The first decodable file's pixels (None when there is none), and the
    ``(row, reason)`` errors met before it: it is ``paths[len(errors)]``."""
    errors = []
    for i, path in enumerate(paths):
        one = None if sizes is None else sizes[i : i + 1]
        (data,) = _read([path], store, one)
        try:
            if isinstance(data, ImageDecodeError):
                raise data
            return decode_bytes(
                data, mode=mode, size=size, resize=resize, path=path
            ), errors
        except ImageDecodeError as exc:
            if stop_on_error:
                raise
            errors.append((i, exc.reason))
    return None, errors


def decode_files(
    paths,
    *,
    mode,
    size,
    resize,
    shape,
    stop_on_error,
    n_jobs,
    progress=None,
    first=None,
    store=None,
    sizes=None,
):
    """Decode every file of ``paths`` into one (n, *shape) uint8 array.

    Work is split into chunks decoded by ``n_jobs`` joblib workers when there
    are enough files to pay for them; each worker returns its block and the
    result is the same as with one process. Returns ``(out, errors,
    mismatched)`` with row indices into ``paths`` (see :func:`decode_chunk`).
    ``first``, what :func:`first_image` returned for ``paths``, saves decoding
    those files again. The files are local, or in ``store`` (see
    :mod:`._store`) with their listed ``sizes``; a store that lives in this
    process only (``memory://``) is read here, whatever ``n_jobs``.
    """
    n = len(paths)
    out = np.empty((n, *shape), dtype=np.uint8)
    errors, mismatched, start = [], [], 0
    if first is not None:
        arr, errors = first[0], list(first[1])
        start = len(errors) + 1
        if arr.shape == shape:
            out[start - 1] = arr
        else:
            mismatched.append((start - 1, arr.shape))
    n_workers = effective_n_jobs(n_jobs) if n_jobs is not None else 1
    if store is not None and not store.shareable:
        n_workers = 1
    if n_workers > 1 and n - start >= 2 * MIN_FILES_PER_JOB:
        bounds = [(start + a, start + b) for a, b in _chunks(n - start, n_workers)]
        shared = settings()
        # Each worker returns its block, copied into place below.
        results = Parallel(n_jobs=n_jobs, return_as="generator")(
            delayed(_decode_chunk_in_worker)(
                paths[a:b],
                mode,
                size,
                resize,
                shape,
                stop_on_error,
                shared,
                store,
                None if sizes is None else sizes[a:b],
            )
            for a, b in bounds
        )
    else:
        bounds = [(a, min(a + 1024, n)) for a in range(start, n, 1024)]
        # Decoded straight into place.
        results = (
            (
                *decode_chunk(
                    paths[a:b],
                    mode,
                    size,
                    resize,
                    shape,
                    stop_on_error,
                    out=out[a:b],
                    store=store,
                    sizes=None if sizes is None else sizes[a:b],
                ),
                (),
            )
            for a, b in bounds
        )
    for (a, b), (block, errs, mism, bombs) in zip(bounds, results, strict=True):
        for message in bombs:  # as the worker's decoder warned
            warnings.warn(message, Image.DecompressionBombWarning, stacklevel=2)
        if not np.may_share_memory(block, out):
            out[a:b] = block
        errors.extend((a + i, r) for i, r in errs)
        mismatched.extend((a + i, s) for i, s in mism)
        if progress is not None:
            progress.update(b)
        if errors and stop_on_error:
            break
    return out, errors, mismatched
