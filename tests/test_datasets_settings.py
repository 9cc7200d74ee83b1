"""What the decoded pixels depend on besides the options: Pillow's pixel
limit, the decoders and their versions, and the settings worker processes
share; and decoders that must agree with Pillow's verdict on damaged files."""

# SPDX-License-Identifier: BSD-3-Clause

import io
import struct
import subprocess
import sys
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from sk_template.datasets import (
    ImageDecodeError,
    _decode,
    _folder,
    _progress,
    load_image_folder,
)

RNG = np.random.default_rng(11)


@pytest.fixture(autouse=True)
def _local_settings(quiet_local_home, monkeypatch):
    """Tests here change the pixel limit: put it back after each."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)


@pytest.fixture
def root_with_a_big_one(tmp_path):
    """Three 8x8 images per class, and a 40x40 one (1600 pixels) in "a"."""
    root = tmp_path / "img"
    for label, value in (("a", 10), ("b", 200)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), value).save(root / label / f"{i}.png")
    Image.new("L", (40, 40), 100).save(root / "a" / "big.png")
    return root


def test_raising_the_pixel_limit_does_not_serve_a_cache_that_skipped(
    root_with_a_big_one,
):
    root = root_with_a_big_one
    Image.MAX_IMAGE_PIXELS = 500  # 1600 > 2 * 500: big.png is a bad file
    with pytest.warns(UserWarning, match="big.png"):
        low = load_image_folder(root, size=(8, 8), on_error="skip")
    assert len(low.target) == 6
    Image.MAX_IMAGE_PIXELS = None  # no limit: big.png loads
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        high = load_image_folder(root, size=(8, 8), on_error="skip")
    assert len(high.target) == 7
    assert any(f.endswith("big.png") for f in high.filenames)


def test_worker_processes_use_the_callers_pixel_limit(root_with_a_big_one, monkeypatch):
    monkeypatch.setattr(_decode, "MIN_FILES_PER_JOB", 2)  # workers for 7 files
    Image.MAX_IMAGE_PIXELS = 500
    for n_jobs in (1, 2):
        with pytest.warns(UserWarning, match="big.png"):
            bunch = load_image_folder(
                root_with_a_big_one,
                size=(8, 8),
                on_error="skip",
                cache=False,
                n_jobs=n_jobs,
            )
        assert len(bunch.target) == 6, n_jobs


def test_worker_processes_use_the_callers_decoder_switches(tmp_path, monkeypatch):
    """Each chunk carries the caller's settings, applied before decoding."""
    monkeypatch.setattr(_decode, "USE_PYSPNG", True)
    monkeypatch.setattr(_decode, "USE_SIMPLEJPEG", True)
    shared = (1234, False, False, False)
    Image.new("L", (4, 4), 5).save(tmp_path / "x.png")
    _decode._decode_chunk_in_worker(
        [str(tmp_path / "x.png")], "L", None, "stretch", (4, 4), True, shared
    )
    assert _decode.settings() == shared


def test_a_workers_pixel_limit_warning_reaches_the_caller(
    root_with_a_big_one, monkeypatch
):
    """An image over the limit (not twice it) loads with Pillow's warning,
    whichever process decoded it."""
    monkeypatch.setattr(_decode, "MIN_FILES_PER_JOB", 2)  # workers for 7 files
    Image.MAX_IMAGE_PIXELS = 1000  # 1600 pixels: over, not twice over
    with pytest.warns(Image.DecompressionBombWarning, match="big.png"):
        bunch = load_image_folder(
            root_with_a_big_one, size=(8, 8), cache=False, n_jobs=2
        )
    assert len(bunch.target) == 7


def test_the_cache_key_names_the_decoder_versions(monkeypatch):
    import PIL

    before = _decode.decoder_id()
    monkeypatch.setattr(PIL, "__version__", "0.0.1")
    assert _decode.decoder_id() != before


def _png(chunks):
    out = bytearray(b"\x89PNG\r\n\x1a\n")
    for kind, body in chunks:
        out += struct.pack(">I4s", len(body), kind) + body
        out += struct.pack(">I", zlib.crc32(kind + body))
    return bytes(out)


def test_a_png_whose_only_fault_is_its_adler32(monkeypatch):
    """Pillow refuses a PNG whose zlib checksum is wrong; pyspng, which does
    not check it (checking would cost cold MNIST loads 25%), decodes the
    pixels its data holds, as the module's docstring says. Such a file can
    only be made so: damage to the data breaks its chunk CRC, which is
    checked for every decoder."""
    pytest.importorskip("pyspng")
    img = RNG.integers(0, 256, (20, 30), dtype=np.uint8)
    raw = b"".join(b"\0" + row.tobytes() for row in img)
    z = bytearray(zlib.compress(raw, 0))  # stored blocks: a flip stays valid
    z[-10] ^= 0xFF  # a pixel byte changed: the Adler-32 no longer matches
    ihdr = struct.pack(">IIBBBBB", 30, 20, 8, 0, 0, 0, 0)
    bad = _png([(b"IHDR", ihdr), (b"IDAT", bytes(z)), (b"IEND", b"")])
    monkeypatch.setattr(_decode, "USE_PYSPNG", False)
    with pytest.raises(ImageDecodeError, match="bad.png"):
        _decode.decode_bytes(bad, mode="L", path="bad.png")
    monkeypatch.setattr(_decode, "USE_PYSPNG", True)
    got = _decode.decode_bytes(bad, mode="L", path="bad.png")
    assert (got != img).sum() == 1
    # A damaged chunk (its CRC no longer holds) goes to Pillow, refused.
    damaged = bytearray(_png([(b"IHDR", ihdr), (b"IDAT", zlib.compress(raw))]))
    damaged[45] ^= 0xFF
    damaged += _png([(b"IEND", b"")])[8:]
    with pytest.raises(ImageDecodeError, match="bad.png"):
        _decode.decode_bytes(bytes(damaged), mode="L", path="bad.png")


def test_small_pngs_still_go_to_pyspng(monkeypatch):
    pyspng = pytest.importorskip("pyspng")
    calls, real = [], pyspng.load
    monkeypatch.setattr(
        _decode._pyspng, "load", lambda data: calls.append(1) or real(data)
    )
    img = RNG.integers(0, 256, (28, 28), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "PNG")
    np.testing.assert_array_equal(_decode.decode_bytes(buf.getvalue()), img)
    assert calls == [1]


def test_the_first_image_is_decoded_once(tmp_path, monkeypatch):
    for label in "ab":
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (4, 4), i).save(tmp_path / "img" / label / f"{i}.png")
    decoded = []
    real = _decode.decode_bytes

    def decode_bytes(data, **kwargs):
        decoded.append(kwargs["path"])
        return real(data, **kwargs)

    monkeypatch.setattr(_decode, "decode_bytes", decode_bytes)
    bunch = load_image_folder(tmp_path / "img", cache=False)
    assert len(bunch.target) == 4
    assert sorted(decoded) == sorted(bunch.filenames)


def test_the_progress_bar_is_closed_on_an_error(tmp_path, monkeypatch):
    closed = []
    real = _progress.Progress.close
    monkeypatch.setattr(
        _folder.Progress, "close", lambda self: closed.append(1) or real(self)
    )
    (tmp_path / "img" / "a").mkdir(parents=True)
    Image.new("L", (4, 4)).save(tmp_path / "img" / "a" / "0.png")
    (tmp_path / "img" / "a" / "1.png").write_bytes(b"not a png")
    with pytest.raises(ImageDecodeError):
        load_image_folder(tmp_path / "img", cache=False)
    assert closed == [1]


BOMB = """
import sys
from PIL import Image
from sk_template.datasets import load_image_folder
Image.MAX_IMAGE_PIXELS = 1000
load_image_folder(sys.argv[1], size=(8, 8), on_error=sys.argv[2], cache=False)
print("done")
"""


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_a_bomb_warning_turned_error_is_a_bad_file(tmp_path, on_error):
    """Under ``python -W error`` an image over the limit (not twice it) is a
    clean ImageDecodeError (or a skipped file), not a traceback from inside
    the decoder."""
    for label in "ab":
        (tmp_path / "img" / label).mkdir(parents=True)
        Image.new("L", (8, 8)).save(tmp_path / "img" / label / "0.png")
    Image.new("L", (40, 40)).save(tmp_path / "img" / "a" / "1.png")  # 1600 px
    run = subprocess.run(
        [sys.executable, "-W", "error", "-c", BOMB, str(tmp_path / "img"), on_error],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if on_error == "raise":
        assert run.returncode == 1
        last = run.stderr.strip().splitlines()[-1]
        assert last.startswith("sk_template.datasets._errors.ImageDecodeError")
        assert "1.png" in last and "-W error" in last
    else:  # the SkippedImagesWarning is an error too, naming the file
        assert "SkippedImagesWarning" in run.stderr and "1.png" in run.stderr
        assert "DecompressionBombWarning:" not in run.stderr.splitlines()[-1]
