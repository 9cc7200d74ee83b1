"""The decoders: pyspng and Pillow give the same pixels, and the pixel rules hold."""

import io
import os
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from sk_template.datasets import (
    ImageDecodeError,
    SkippedImagesWarning,
    _decode,
    load_image_folder,
)

RNG = np.random.default_rng(42)
GREY = RNG.integers(0, 256, size=(6, 7), dtype=np.uint8)
RGB = RNG.integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
RGBA = RNG.integers(0, 256, size=(6, 7, 4), dtype=np.uint8)
LA = RNG.integers(0, 256, size=(6, 7, 2), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, size=(6, 7), dtype=np.uint16)
# The colour keys of the tRNS cases below occur, so transparency matters.
GREY[0, :3] = 7
RGB[0, :3] = (1, 2, 3)


def _palette(transparency):
    im = Image.fromarray(RGB).quantize(colors=16)
    kwargs = {"transparency": 0} if transparency else {}
    return im, kwargs


# name -> (image, save kwargs)
KINDS = {
    "grey": (Image.fromarray(GREY), {}),
    "grey_trns": (Image.fromarray(GREY), {"transparency": 7}),
    "grey_16bit": (Image.fromarray(GREY16), {}),
    "bilevel": (Image.fromarray(GREY > 127), {}),
    "grey_alpha": (Image.fromarray(LA), {}),
    "rgb": (Image.fromarray(RGB), {}),
    "rgb_trns": (Image.fromarray(RGB), {"transparency": (1, 2, 3)}),
    "rgba": (Image.fromarray(RGBA), {}),
    "palette": _palette(False),
    "palette_trns": _palette(True),
}
MODES = ["L", "RGB", "RGBA", None]


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    paths = {}
    for name, (im, kwargs) in KINDS.items():
        paths[name] = folder / f"{name}.png"
        im.save(paths[name], **kwargs)
    return paths


def _pillow_only(monkeypatch, path, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(_decode, "USE_PYSPNG", False)
        return _decode.decode_file(str(path), **kwargs)


@pytest.mark.parametrize("size", [None, (4, 9)])
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", list(KINDS))
def test_pyspng_and_pillow_give_identical_pixels(pngs, monkeypatch, kind, mode, size):
    pytest.importorskip("pyspng")
    fast = _decode.decode_file(str(pngs[kind]), mode=mode, size=size)
    slow = _pillow_only(monkeypatch, pngs[kind], mode=mode, size=size)
    assert fast.dtype == slow.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("kind", ["grey", "grey_alpha", "rgb", "rgba"])
def test_pyspng_really_decodes_8bit_pngs(pngs, monkeypatch, kind):
    load = pytest.importorskip("pyspng").load
    calls = []
    monkeypatch.setattr(
        _decode._pyspng, "load", lambda data: calls.append(1) or load(data)
    )
    _decode.decode_file(str(pngs[kind]), mode=None)
    assert calls == [1]


def _spy_on_pyspng(monkeypatch):
    """Record the calls to pyspng.load (which then decodes as usual)."""
    load = pytest.importorskip("pyspng").load
    calls = []
    monkeypatch.setattr(
        _decode._pyspng, "load", lambda data: calls.append(len(data)) or load(data)
    )
    return calls


@pytest.mark.parametrize(
    "kind", ["grey_16bit", "bilevel", "palette", "grey_trns", "rgb_trns"]
)
@pytest.mark.parametrize("mode", ["L", None])
def test_pyspng_is_not_used_where_it_differs(pngs, monkeypatch, kind, mode):
    calls = _spy_on_pyspng(monkeypatch)
    out = _decode.decode_file(str(pngs[kind]), mode=mode)
    assert calls == []  # Pillow decoded it ...
    # ... with Pillow's pixels.
    np.testing.assert_array_equal(out, _pillow_only(monkeypatch, pngs[kind], mode=mode))


def test_pyspng_errors_other_than_bad_data_are_not_hidden(pngs, monkeypatch):
    """Only pyspng's own error (data it cannot decode) falls back to Pillow."""
    pytest.importorskip("pyspng")

    def out_of_memory(data):
        raise MemoryError("pyspng could not allocate")

    monkeypatch.setattr(_decode._pyspng, "load", out_of_memory)
    with pytest.raises(MemoryError, match="pyspng could not allocate"):
        _decode.decode_file(str(pngs["grey"]))


# -- the pixel limit (decompression bombs) ------------------------------------


def _png_claiming(width, height, tmp_path):
    """A small valid-looking RGBA PNG whose header claims width x height."""
    path = tmp_path / f"bomb_{width}x{height}.png"
    Image.fromarray(RGBA).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = struct.pack(">II", width, height)  # IHDR width, height
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))  # its CRC
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("use_pyspng", [True, False])
def test_decompression_bomb_is_refused_before_decoding(
    tmp_path, monkeypatch, use_pyspng
):
    """A 20000x20000 RGBA header (1.6 GB of pixels) in a file of a few hundred
    bytes: refused from its header under Pillow's default limit, whichever
    decoder would have decoded it."""
    monkeypatch.setattr(_decode, "USE_PYSPNG", use_pyspng)
    calls = []

    def spy(data):  # stands in for pyspng: never really allocates here
        calls.append(1)
        raise RuntimeError("pyspng: stand-in")

    if _decode._pyspng is not None:
        monkeypatch.setattr(_decode._pyspng, "load", spy)
    path = _png_claiming(20000, 20000, tmp_path)
    with pytest.raises(ImageDecodeError, match="MAX_IMAGE_PIXELS") as info:
        _decode.decode_file(str(path), mode="RGBA")
    assert info.value.path == str(path)
    assert "is 400,000,000 pixels" in info.value.reason
    assert calls == []


@pytest.mark.parametrize("use_pyspng", [True, False])
@pytest.mark.parametrize("fmt", ["png", "bmp"])
def test_pixel_limit_is_pillows_on_every_decoder(
    tmp_path, monkeypatch, use_pyspng, fmt
):
    """Over PIL.Image.MAX_IMAGE_PIXELS: a warning naming the file; over twice
    it: an error naming it; None: no limit."""
    monkeypatch.setattr(_decode, "USE_PYSPNG", use_pyspng)
    calls = _spy_on_pyspng(monkeypatch) if _decode._pyspng is not None else []
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # the image has 42 pixels
    Image.fromarray(GREY).save(tmp_path / f"x.{fmt}")
    path = str(tmp_path / f"x.{fmt}")
    with pytest.raises(ImageDecodeError, match="over twice PIL.Image.MAX_IMAGE_PIXELS"):
        _decode.decode_file(path)
    assert calls == []
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 40)
    with pytest.warns(Image.DecompressionBombWarning, match=rf"x\.{fmt}: 7x6") as rec:
        out = _decode.decode_file(path)
    assert len(rec) == 1  # ours, not Pillow's as well
    np.testing.assert_array_equal(out, GREY)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(_decode.decode_file(path), GREY)


def test_too_big_images_are_bad_files_in_a_folder(tmp_path, monkeypatch):
    root = tmp_path / "digits"
    for label in (3, 7):
        (root / str(label)).mkdir(parents=True)
        for i in range(2):
            Image.fromarray(GREY).save(root / str(label) / f"{i}.png")
    Image.fromarray(np.zeros((60, 70), np.uint8)).save(root / "7" / "big.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # big.png has 4200
    with pytest.raises(ImageDecodeError, match=r"big\.png: 70x60") as info:
        load_image_folder(root, cache=False)
    assert "MAX_IMAGE_PIXELS" in str(info.value)
    with pytest.warns(SkippedImagesWarning, match=r"big\.png"):
        bunch = load_image_folder(root, cache=False, on_error="skip")
    assert bunch.data.shape == (4, 42)


def test_colour_key_transparency_is_applied(pngs):
    rgba = _decode.decode_file(str(pngs["rgb_trns"]), mode="RGBA")
    assert (rgba[0, :3, 3] == 0).all()
    assert (rgba[..., 3] == 0).sum() == (RGB == (1, 2, 3)).all(axis=-1).sum()


@pytest.mark.parametrize("use_pyspng", [True, False])
def test_damaged_compressed_data_is_an_error_with_either_decoder(
    tmp_path, monkeypatch, use_pyspng
):
    path = tmp_path / "damaged.png"
    Image.fromarray(RNG.integers(0, 256, size=(28, 28), dtype=np.uint8)).save(path)
    data = bytearray(path.read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 20] ^= 0x01  # one bit inside the compressed pixels
    path.write_bytes(bytes(data))
    monkeypatch.setattr(_decode, "USE_PYSPNG", use_pyspng)
    with pytest.raises(ImageDecodeError, match="damaged.png"):
        _decode.decode_file(str(path))


@pytest.mark.parametrize("kind", ["grey", "rgb", "rgba", "grey_alpha", "palette"])
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA"])
def test_modes_are_pillows_convert(pngs, kind, mode):
    expected = np.asarray(Image.open(pngs[kind]).convert(mode))
    np.testing.assert_array_equal(
        _decode.decode_file(str(pngs[kind]), mode=mode), expected
    )


def test_mode_none_keeps_the_stored_format(pngs):
    shapes = {
        kind: _decode.decode_file(str(p), mode=None).shape for kind, p in pngs.items()
    }
    assert shapes["grey"] == shapes["grey_16bit"] == shapes["bilevel"] == (6, 7)
    assert shapes["grey_alpha"] == (6, 7, 2)
    assert shapes["rgb"] == shapes["palette"] == (6, 7, 3)
    assert shapes["rgba"] == shapes["palette_trns"] == (6, 7, 4)
    np.testing.assert_array_equal(
        _decode.decode_file(str(pngs["bilevel"]), mode=None), (GREY > 127) * 255
    )


def test_16bit_keeps_the_high_byte(tmp_path):
    """16-bit samples become v >> 8: 65535 -> 255, 257 * k -> k, no clipping."""
    values = np.array([[0, 255, 256, 1000, 257 * 100, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    out = _decode.decode_file(str(tmp_path / "deep.png"), mode="L")
    np.testing.assert_array_equal(out, [[0, 0, 1, 3, 100, 255]])
    # Pillow's own convert("L") clips instead, which we do not follow.
    clipped = np.asarray(Image.open(tmp_path / "deep.png").convert("L"))
    assert clipped[0, 1:].tolist() == [255] * 5
    rgb = _decode.decode_file(str(tmp_path / "deep.png"), mode="RGB")
    np.testing.assert_array_equal(rgb[..., 2], out)


def test_rgba_as_grey_drops_alpha(tmp_path):
    """mode="L" on RGBA is Pillow's convert: luma of RGB; alpha is ignored."""
    pixels = np.array([[[255, 0, 0, 0], [255, 0, 0, 255], [0, 0, 0, 0]]], np.uint8)
    Image.fromarray(pixels).save(tmp_path / "rgba.png")
    out = _decode.decode_file(str(tmp_path / "rgba.png"), mode="L")
    np.testing.assert_array_equal(out, [[76, 76, 0]])  # transparent red is still red
    as_rgb = _decode.decode_file(str(tmp_path / "rgba.png"), mode="RGB")
    np.testing.assert_array_equal(as_rgb, pixels[..., :3])


def test_palette_png_loads_through_the_palette(tmp_path, pngs):
    bunch_dir = tmp_path / "p" / "a"
    bunch_dir.mkdir(parents=True)
    Image.open(pngs["palette"]).save(bunch_dir / "0.png")
    bunch = load_image_folder(tmp_path / "p", cache=False)
    expected = np.asarray(Image.open(pngs["palette"]).convert("L"))
    np.testing.assert_array_equal(bunch.images[0], expected)
    indices = np.asarray(Image.open(pngs["palette"]))
    assert not np.array_equal(bunch.images[0], indices)  # not the raw indices


def test_32bit_images_are_refused(tmp_path):
    Image.fromarray(np.zeros((2, 2), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(ImageDecodeError, match="32-bit integer or float"):
        _decode.decode_file(str(tmp_path / "f.tif"))


def test_jpeg_decodes_like_pillow(tmp_path):
    Image.fromarray(RGB).save(tmp_path / "x.jpg", quality=90)
    out = _decode.decode_file(str(tmp_path / "x.jpg"), mode="RGB")
    np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / "x.jpg")))


def test_large_files_are_read_whole(tmp_path):
    noise = RNG.integers(0, 256, size=(300, 300, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "big.png")
    assert (tmp_path / "big.png").stat().st_size > 1 << 17  # several reads' worth
    np.testing.assert_array_equal(
        _decode.decode_file(str(tmp_path / "big.png"), mode="RGB"), noise
    )


def test_read_file_reads_no_more_than_fstat_tells(tmp_path, monkeypatch):
    """A file that grows while it is read (or a device claiming 0 bytes, such
    as /dev/zero) is read only up to the size fstat gave: no unbounded read."""
    path = tmp_path / "growing.png"
    path.write_bytes(bytes(range(256)) * 8)
    real_fstat = os.fstat

    class Stat:
        def __init__(self, st):
            self.st_size, self.st_mode = 1000, st.st_mode

    monkeypatch.setattr(os, "fstat", lambda fd: Stat(real_fstat(fd)))
    assert bytes(_decode.read_file(path)) == (bytes(range(256)) * 8)[:1000]


def test_read_file_holds_a_large_file_once(tmp_path):
    """A huge (here sparse) file takes its size in memory once, not twice
    (chunks and their join)."""
    import tracemalloc

    size = 32 << 20
    path = tmp_path / "sparse.png"
    with open(path, "wb") as f:
        f.write(b"garbage")
        f.truncate(size)
    tracemalloc.start()
    try:
        data = _decode.read_file(path)
        peak = tracemalloc.get_traced_memory()[1]
        del data
        tracemalloc.reset_peak()
        with pytest.raises(ImageDecodeError, match="sparse.png"):
            _decode.decode_file(path)  # handed to Pillow without a copy
        decode_peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1.25 * size
    assert decode_peak < 1.25 * size


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "TIFF", "GIF", "WEBP"])
def test_large_files_reach_pillow_without_a_copy_and_decode_the_same(monkeypatch, fmt):
    monkeypatch.setattr(_decode, "USE_SIMPLEJPEG", False)
    monkeypatch.setattr(_decode, "USE_PYSPNG", False)
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, size=(40, 50, 3), dtype=np.uint8)).save(
        buf, fmt
    )
    data = bytearray(buf.getvalue())
    copied = _decode.decode_bytes(data, mode="RGB")
    monkeypatch.setattr(_decode, "_COPY_LIMIT", 0)  # every file: no copy
    assert isinstance(_decode._stream(data), io.BufferedReader)
    np.testing.assert_array_equal(_decode.decode_bytes(data, mode="RGB"), copied)
