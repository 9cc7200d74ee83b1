"""Fuzz the image decoder, ``decode_bytes``, with mutated PNG and JPEG files
(see ``_harness.py``).

Each input is four option bytes and the file: the first option byte picks
the mode (``"L"``, ``"RGB"``, ``"RGBA"`` or None, the stored one), the
resize policy, and whether the fast decoders (pyspng, simplejpeg) may take
the file or Pillow decodes everything; the next two are the output height
and width (0: no resize).  The pixel limit, ``PIL.Image.MAX_IMAGE_PIXELS``,
is set to 2**22 (over it a warning, over twice an error), so an image the
decoders accept stays far below the memory limit.

A quarter of the mutations change the option bytes too; half of the others
make the PNG chunks' CRCs right again, and some of those set a large width
and height, so that the fuzzer gets past Pillow's CRC check to the
decoders and the pixel limit.

Documented error: ``ImageDecodeError`` (a ``ValueError``).  A decoded image
must be uint8 of the shape the options ask for; and where a fast decoder
took the file and Pillow decodes it too, the pixels must be the same (the
module's promise).

Usage, from tests/fuzz::

    python fuzz_image_decode.py -max_total_time=600 new/ corpus/image_decode
"""

# SPDX-License-Identifier: BSD-3-Clause

import random
import sys
import warnings
import zlib
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _harness  # noqa: E402

# The libraries uninstrumented: coverage guides the fuzzer through
# sk_template's code and Pillow's Python plugins (PNG and JPEG).
import joblib  # noqa: E402, F401
import numpy as np  # noqa: E402

with atheris.instrument_imports(include=["sk_template", "PIL"]):
    from PIL import Image, JpegImagePlugin, PngImagePlugin  # noqa: F401

    from sk_template.datasets import ImageDecodeError, _decode

Image.MAX_IMAGE_PIXELS = 2**22
MODES = ("L", "RGB", "RGBA", None)
CHANNELS = {"L": None, "RGB": 3, "RGBA": 4}
SEEDS = Path(__file__).resolve().parent / "corpus" / "image_decode"


def _decode_with(data, fast, **options):
    _decode.USE_PYSPNG = _decode.USE_SIMPLEJPEG = fast
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return _decode.decode_bytes(data, path="<fuzz>", **options)


def _took_fast_route(data):
    return _decode._spng_mode(data) is not None or _decode._jpeg_frame(data) is not None


def test_one_input(data):
    if len(data) < 4:
        return
    opts, height, width = data[0], data[1], data[2]
    image = data[4:]
    mode = MODES[opts & 3]
    resize = _decode.RESIZE_POLICIES[(opts >> 2) & 1]
    fast = bool(opts & 8)
    size = (height, width) if height and width else None
    options = {"mode": mode, "size": size, "resize": resize}
    try:
        arr = _decode_with(image, fast, **options)
    except ImageDecodeError:
        return
    if arr.dtype != np.uint8 or arr.ndim not in (2, 3):
        raise AssertionError(f"decoded to {arr.dtype} {arr.shape}")
    if size is not None and arr.shape[:2] != size:
        raise AssertionError(f"asked for {size}, got {arr.shape}")
    if mode is not None and (arr.shape[2:] or (None,))[0] != CHANNELS[mode]:
        raise AssertionError(f"asked for mode {mode}, got shape {arr.shape}")
    if fast and _took_fast_route(image):
        try:
            pillow = _decode_with(image, False, **options)
        except ImageDecodeError:
            return  # a damaged file pyspng decodes (its Adler-32 unchecked)
        if not np.array_equal(arr, pillow):
            raise AssertionError("the fast decoder and Pillow give other pixels")


def _fixed_png(data, rng):
    """``data`` with every PNG chunk's CRC made right again (Pillow refuses a
    wrong one at once), and sometimes a large width and height in IHDR: the
    way to the pixel limit and past the decoders' first checks."""
    if not data.startswith(_decode._PNG_SIGNATURE):
        return data
    data = bytearray(data)
    if rng.random() < 0.25 and len(data) >= 33 and data[12:16] == b"IHDR":
        for at in (16, 20):  # width, height
            data[at : at + 4] = rng.choice([0, 1, 2048, 4096, 65535, 2**31]).to_bytes(
                4, "big"
            )
    pos = 8
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        end = pos + 12 + length
        if end > len(data):
            break
        data[end - 4 : end] = zlib.crc32(data[pos + 4 : end - 4]).to_bytes(4, "big")
        pos = end
    return bytes(data)


def mutate(data, max_size, seed):
    """libFuzzer's mutation of the file (the option bytes kept apart half
    the time), then, half the time, the PNG chunks' CRCs made right."""
    rng = random.Random(seed)
    if len(data) < 4 or rng.random() < 0.25:
        return atheris.Mutate(data, max_size)
    options, image = data[:4], data[4:]
    image = atheris.Mutate(image, max_size - 4)
    if rng.random() < 0.5:
        image = _fixed_png(image, rng)
    return (options + image)[:max_size]


if __name__ == "__main__":
    _harness.run(
        test_one_input,
        warm_up=next(SEEDS.iterdir()).read_bytes(),
        max_len=64 * 1024,
        custom_mutator=mutate,
    )
