"""Bad input to load_image_folder: each gets an error naming the path, or a warning."""

import io
import os
import warnings

import numpy as np
import pytest
from PIL import Image

from sk_template.datasets import (
    ImageDecodeError,
    SkippedImagesWarning,
    _batches,
    _cache,
    iter_image_folder,
    load_image_folder,
)

RNG = np.random.default_rng(7)


pytestmark = pytest.mark.usefixtures("quiet_local_home")


def png_bytes(array):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def root(tmp_path):
    """root/3 and root/7 with three 6x5 grey PNGs each."""
    root = tmp_path / "digits"
    for label in (3, 7):
        (root / str(label)).mkdir(parents=True)
        for i in range(3):
            data = png_bytes(RNG.integers(0, 256, size=(6, 5)))
            (root / str(label) / f"{i}.png").write_bytes(data)
    return root


# -- the folder itself ---------------------------------------------------------


def test_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nowhere.*does not exist.*<class>"):
        load_image_folder(tmp_path / "nowhere")


def test_root_is_a_file(tmp_path):
    (tmp_path / "x.png").write_bytes(png_bytes(np.zeros((2, 2))))
    with pytest.raises(NotADirectoryError, match=r"x\.png.*is a file, not a folder"):
        load_image_folder(tmp_path / "x.png")


def test_empty_root(tmp_path):
    with pytest.raises(ValueError, match="No class folders found in .* it is empty"):
        load_image_folder(tmp_path)


def test_images_without_class_folders(tmp_path):
    (tmp_path / "0.png").write_bytes(png_bytes(np.zeros((2, 2))))
    with pytest.raises(ValueError, match="holds images directly but no class folders"):
        load_image_folder(tmp_path)


def test_class_folder_without_images(root):
    (root / "9").mkdir()
    (root / "9" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"9'? has no images.*allow_empty=True"):
        load_image_folder(root)
    bunch = load_image_folder(root, allow_empty=True, cache=False)
    np.testing.assert_array_equal(bunch.target_names, [3, 7])


def test_split_that_does_not_exist(tmp_path, root):
    os.rename(root, tmp_path / "train")
    (tmp_path / "digits").mkdir()
    os.rename(tmp_path / "train", tmp_path / "digits" / "train")
    (tmp_path / "digits" / "valid" / "3").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"'test' not found .* \['train', 'valid'\]"):
        load_image_folder(tmp_path / "digits", split="test")


def test_split_on_a_folder_without_splits(root):
    with pytest.raises(ValueError, match="has no split folders.*split=None"):
        load_image_folder(root, split="train")


def test_symlink_loop_folder(root):
    os.symlink(root / "3", root / "3" / "again")
    with pytest.raises(ValueError, match=r"Symbolic link loop: .*again"):
        load_image_folder(root)


def test_symlink_loop_file(root):
    os.symlink("self.png", root / "3" / "self.png")  # points at itself
    with pytest.raises(ImageDecodeError, match=r"self\.png") as info:
        load_image_folder(root, cache=False)
    assert info.value.path.endswith("self.png")
    with pytest.warns(SkippedImagesWarning, match=r"self\.png"):
        bunch = load_image_folder(root, on_error="skip", cache=False)
    assert len(bunch.data) == 6


def test_broken_symlink(root):
    os.symlink(root / "gone.png", root / "7" / "link.png")
    with pytest.raises(ImageDecodeError, match=r"link\.png.*cannot open"):
        load_image_folder(root)


# -- entries that are not regular files -----------------------------------------


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
@pytest.mark.parametrize("cache", [True, False])
def test_fifo_named_like_an_image_is_a_bad_file_never_opened(
    root, cache, fifo_unblocker
):
    fifo = root / "7" / "x.png"
    os.mkfifo(fifo)
    with fifo_unblocker(fifo) as unblocker:
        with pytest.raises(ImageDecodeError, match=r"7.x\.png: a named pipe") as info:
            load_image_folder(root, cache=cache)
        assert info.value.path == str(fifo)
        with pytest.raises(ImageDecodeError, match=r"x\.png: a named pipe"):
            next(iter_image_folder(root))
        with pytest.warns(SkippedImagesWarning, match=r"7.x\.png \(a named pipe"):
            bunch = load_image_folder(root, cache=cache, on_error="skip")
        assert bunch.data.shape == (6, 30)
        if cache:  # from the cache, with the same warning
            with pytest.warns(SkippedImagesWarning, match=r"x\.png"):
                load_image_folder(root, on_error="skip")
        with pytest.warns(SkippedImagesWarning, match=r"x\.png"):
            batches = list(iter_image_folder(root, on_error="skip", batch_size=4))
        assert sum(len(X) for X, _ in batches) == 6
    assert unblocker.opened == 0  # nobody ever opened it to read


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="no /dev/null")
@pytest.mark.parametrize("cache", [True, False])
def test_link_to_a_device_is_a_bad_file(root, cache):
    (root / "3" / "deep").mkdir()  # in a nested folder of the class
    os.symlink("/dev/null", root / "3" / "deep" / "null.png")
    with pytest.raises(ImageDecodeError, match=r"null\.png: a character device") as e:
        load_image_folder(root, cache=cache)
    assert e.value.path == str(root / "3" / "deep" / "null.png")
    with pytest.warns(SkippedImagesWarning, match=r"null\.png"):
        assert len(load_image_folder(root, on_error="skip", cache=False).data) == 6


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_only_special_files_is_an_error_naming_one(tmp_path, fifo_unblocker):
    (tmp_path / "a").mkdir()
    os.mkfifo(tmp_path / "a" / "0.png")
    with fifo_unblocker(tmp_path / "a" / "0.png") as unblocker:
        with pytest.raises(ValueError, match=r"None of the 1 image files.*0\.png"):
            load_image_folder(tmp_path, on_error="skip")
    assert unblocker.opened == 0


# -- the cache folder ------------------------------------------------------------


@pytest.mark.parametrize("where", ["root", "split"])
def test_cache_inside_the_image_folder_is_never_a_class(root, tmp_path, where):
    if where == "split":  # root/train/<class>, the cache in root/train
        split = tmp_path / "splits" / "train"
        split.parent.mkdir()
        os.rename(root, split)
        root, kwargs, home = split.parent, {"split": "train"}, split
    else:
        kwargs, home = {}, root
    first = load_image_folder(root, data_home=home, **kwargs)
    assert (home / _cache.CACHE_DIRNAME).is_dir()
    for _ in range(2):  # from the cache, and not finding the cache as a class
        again = load_image_folder(root, data_home=home, **kwargs)
        np.testing.assert_array_equal(again.target_names, [3, 7])
        np.testing.assert_array_equal(again.data, first.data)
        np.testing.assert_array_equal(
            load_image_folder(root, cache=False, **kwargs).data, first.data
        )


# -- memory ---------------------------------------------------------------------


def test_arrays_larger_than_memory_are_refused_before_allocating(root, monkeypatch):
    """Six 6x5 images take 180 bytes: on a machine of 100 bytes that is a clear
    error, before the array is allocated or anything decoded past the first."""
    monkeypatch.setattr(_batches, "_total_memory", lambda: 100)
    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: pytest.fail("allocated anyway")
    )
    with pytest.raises(MemoryError, match=r"6 images of 6x5 pixels") as info:
        load_image_folder(root)
    message = str(info.value)
    assert str(root / "3" / "0.png") in message  # the image that set the size
    assert "take 180 bytes of memory, more than this machine has (100 bytes)" in message
    assert "size=(height, width)" in message
    with pytest.raises(MemoryError, match=r"4 images of 6x5 pixels.*batch_size"):
        next(iter_image_folder(root, batch_size=4))


# -- bad files ---------------------------------------------------------------


def _truncated(array):
    data = png_bytes(array)
    return data[: len(data) // 2]


BAD_FILES = {
    "zero-byte": (b"", "empty file"),
    "truncated": (_truncated(RNG.integers(0, 256, size=(6, 5))), "truncated"),
    "text": (b"hello, I am not a PNG\n", "not an image file"),
    "png-header-only": (b"\x89PNG\r\n\x1a\n", "corrupt or truncated"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
@pytest.mark.parametrize("fast", [True, False])
def test_bad_file_raises_naming_it(root, monkeypatch, kind, fast):
    from sk_template.datasets import _decode

    monkeypatch.setattr(_decode, "USE_PYSPNG", fast)
    data, reason = BAD_FILES[kind]
    (root / "7" / "1.png").write_bytes(data)
    with pytest.raises(ImageDecodeError, match=rf"7.1\.png: .*{reason}") as info:
        load_image_folder(root)
    assert info.value.path == str(root / "7" / "1.png")
    assert isinstance(info.value, ValueError)
    assert "on_error='skip'" in str(info.value)


def test_skip_bad_files_with_one_warning(root):
    (root / "3" / "0.png").write_bytes(b"")
    (root / "7" / "2.png").write_bytes(BAD_FILES["truncated"][0])
    (root / "7" / "9.png").write_text("not a png")
    with pytest.warns(SkippedImagesWarning, match="Skipped 3 unreadable") as record:
        bunch = load_image_folder(root, on_error="skip", cache=False)
    assert len(record) == 1
    message = str(record[0].message)
    for name in ("3/0.png", "7/2.png", "7/9.png"):
        assert name in message
    assert len(bunch.data) == 4 and len(bunch.filenames) == 4
    np.testing.assert_array_equal(bunch.target, [3, 3, 7, 7])
    assert not any(f.endswith(("3/0.png", "7/2.png")) for f in bunch.filenames)


def test_first_image_bad_is_skipped_too(root):
    (root / "3" / "0.png").write_bytes(b"")
    with pytest.warns(SkippedImagesWarning):
        bunch = load_image_folder(root, on_error="skip", cache=False)
    assert bunch.data.shape == (5, 30)


def test_no_readable_image_at_all(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "0.png").write_bytes(b"")
    with pytest.raises(ValueError, match="None of the 1 image files"):
        load_image_folder(tmp_path, on_error="skip")


def test_16bit_png(root):
    deep = (np.arange(30).reshape(6, 5) * 2000).astype(np.uint16)
    Image.fromarray(deep).save(root / "3" / "1.png")
    bunch = load_image_folder(root, cache=False)
    np.testing.assert_array_equal(bunch.images[1], deep >> 8)  # high byte, no clip


def test_palette_png(root):
    rgb = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).quantize(8).save(root / "3" / "1.png")
    bunch = load_image_folder(root, cache=False)
    expected = Image.open(root / "3" / "1.png").convert("L")
    np.testing.assert_array_equal(bunch.images[1], np.asarray(expected))


def test_rgba_png_with_mode_l(root):
    rgba = RNG.integers(0, 256, size=(6, 5, 4), dtype=np.uint8)
    rgba[..., 3] = 0  # fully transparent: the colour is still used
    Image.fromarray(rgba).save(root / "7" / "1.png")
    bunch = load_image_folder(root, cache=False)
    expected = np.asarray(Image.fromarray(rgba[..., :3]).convert("L"))
    np.testing.assert_array_equal(bunch.images[4], expected)


def test_mixed_sizes(root):
    (root / "7" / "1.png").write_bytes(png_bytes(np.zeros((9, 4))))
    (root / "7" / "2.png").write_bytes(png_bytes(np.zeros((6, 6))))
    with pytest.raises(ValueError, match="do not all have the same size") as info:
        load_image_folder(root)
    message = str(info.value)
    assert "3/0.png, is 6x5" in message
    assert "7/1.png is 9x4" in message and "7/2.png is 6x6" in message
    assert "2 differ" in message and "size=(height, width)" in message
    bunch = load_image_folder(root, size=(6, 5), cache=False)
    assert bunch.images.shape == (6, 6, 5)


def test_mixed_channels_with_mode_none(root):
    rgb = RNG.integers(0, 256, size=(6, 5, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "7" / "1.png")
    with pytest.raises(ValueError, match=r"7.1\.png is 6x5x3"):
        load_image_folder(root, mode=None)
    assert load_image_folder(root, cache=False).images.shape == (6, 6, 5)


def test_many_mismatches_are_summarised(root):
    for i in range(3, 12):
        (root / "7" / f"{i}.png").write_bytes(png_bytes(np.zeros((2, 2))))
    with pytest.raises(ValueError, match=r"9 differ: .*\(and 4 more\)"):
        load_image_folder(root)


def test_no_partial_result_on_error(root):
    """An error leaves no cache behind: the next call decodes (and fails) again."""
    (root / "7" / "2.png").write_bytes(b"")
    for _ in range(2):
        with pytest.raises(ImageDecodeError):
            load_image_folder(root)


# -- parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"mode": "CMYK"}, "mode must be one of"),
        ({"dtype": "int64"}, "dtype must be"),
        ({"dtype": "nonsense"}, "dtype must be"),
        ({"size": 28}, "size must be None or a pair"),
        ({"size": (28, 0)}, "size must be None or a pair"),
        ({"on_error": "ignore"}, "on_error must be"),
        ({"mmap": True, "cache": False}, "set cache=True"),
        ({"mmap": True, "dtype": "float32"}, "use dtype='uint8'"),
        ({"mmap": True, "shuffle": True}, "shuffle=False"),
        ({"split": ""}, "split must be the name"),
    ],
)
def test_invalid_parameters(root, kwargs, match):
    with pytest.raises(ValueError, match=match):
        load_image_folder(root, **kwargs)


def test_root_type(root):
    with pytest.raises(TypeError, match="root must be a str or path-like"):
        load_image_folder(3.5)


def test_no_warnings_on_good_folders(root):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(root)
        load_image_folder(root)  # from the cache
