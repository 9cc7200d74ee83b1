"""The on-disk cache of load_image_folder: hits, rebuilds, corruption, mmap."""

import io
import json
import os
import shutil
import time
import warnings

import numpy as np
import pytest
from PIL import Image

from sk_template.datasets import (
    CacheWarning,
    SkippedImagesWarning,
    _batches,
    _cache,
    load_image_folder,
    write_image_folder,
)

RNG = np.random.default_rng(3)
IMAGES = RNG.integers(0, 256, size=(10, 4, 3), dtype=np.uint8)
LABELS = np.arange(10) % 2


@pytest.fixture
def home(quiet_local_home):
    return quiet_local_home


@pytest.fixture
def root(tmp_path):
    return write_image_folder(IMAGES, LABELS, tmp_path / "pics")


def entries(home):
    folder = home / _cache.CACHE_DIRNAME
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def assert_same(a, b):
    for field in ("data", "target", "target_names", "images", "filenames"):
        np.testing.assert_array_equal(a[field], b[field])
    assert a.DESCR == b.DESCR


def test_second_load_comes_from_the_cache(home, root, monkeypatch):
    first = load_image_folder(root)
    assert len(entries(home)) == 1
    files = sorted(os.listdir(home / _cache.CACHE_DIRNAME / entries(home)[0]))
    assert files == ["data.npy", "filenames.npy", "meta.json", "target.npy"]
    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: pytest.fail("decoded again")
    )
    second = load_image_folder(root)
    assert_same(first, second)
    f32 = load_image_folder(root, dtype="float32")  # same cache, scaled on read
    np.testing.assert_array_equal(f32.data, first.data.astype(np.float32) / 255)
    shuffled = load_image_folder(root, shuffle=True, random_state=0)
    assert sorted(shuffled.filenames) == sorted(first.filenames)


def test_data_home_argument_and_cache_false(tmp_path, home, root):
    load_image_folder(root, cache=False)
    assert entries(home) == []
    load_image_folder(root, data_home=tmp_path / "elsewhere")
    assert entries(home) == []
    assert len(os.listdir(tmp_path / "elsewhere" / _cache.CACHE_DIRNAME)) == 1
    load_image_folder(root)
    assert len(entries(home)) == 1  # the environment variable's folder


def test_options_have_their_own_entries(home, root):
    load_image_folder(root)
    load_image_folder(root, mode="RGB")
    load_image_folder(root, classes=[1])
    load_image_folder(root, size=(2, 2))
    assert len(entries(home)) == 4


def test_changed_file_rebuilds(home, root):
    before = load_image_folder(root)
    path = root / "1" / "3.png"
    Image.fromarray(np.full((4, 3), 9, np.uint8)).save(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = load_image_folder(root)
    row = list(after.filenames).index(str(path))
    np.testing.assert_array_equal(after.images[row], np.full((4, 3), 9))
    assert not np.array_equal(before.images[row], after.images[row])
    assert len(entries(home)) == 1  # rewritten in place, not piled up


def test_touched_file_rebuilds(home, root, monkeypatch):
    load_image_folder(root)
    path = root / "0" / "0.png"
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    calls = []
    real = _batches.decode_files
    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    load_image_folder(root)
    assert calls == [1]


def _same_size_png(path, value):
    """Rewrite ``path`` in place with other pixels and the very same size."""
    size = path.stat().st_size
    for attempt in range(256):  # PNG sizes vary a little with the pixels
        buf = io.BytesIO()
        pixels = np.full((4, 3), (value + attempt) % 256, np.uint8)
        Image.fromarray(pixels).save(buf, format="PNG", compress_level=0)
        if len(buf.getvalue()) == size:
            with open(path, "r+b") as f:  # in place: the inode is kept
                f.write(buf.getvalue())
            return pixels
    pytest.fail("no PNG of the same size")  # pragma: no cover


@pytest.mark.parametrize("how", ["in place (cp -p)", "replaced (rsync -t, tar x)"])
def test_same_size_rewrite_with_the_mtime_put_back_rebuilds(home, tmp_path, how):
    """cp -p, rsync -t and tar x keep the size and put the old mtime back; the
    ctime (which no user tool can set back) or the inode still changes."""
    root = tmp_path / "pics"
    for label in (0, 1):
        (root / str(label)).mkdir(parents=True)
        for i in range(3):
            pixels = np.full((4, 3), 10 * i + label, np.uint8)
            Image.fromarray(pixels).save(
                root / str(label) / f"{i}.png", compress_level=0
            )
    path = root / "1" / "2.png"
    before = path.stat()
    load_image_folder(root)
    if how.startswith("in place"):
        # Timestamps tick coarsely (a few ms): rewrite until the ctime moves.
        while True:
            pixels = _same_size_png(path, 200)
            if path.stat().st_ctime_ns != before.st_ctime_ns:
                break
            time.sleep(0.01)  # pragma: no cover - the clock has not ticked
        assert path.stat().st_ino == before.st_ino
    else:
        new = tmp_path / "new.png"
        shutil.copy(path, new)
        pixels = _same_size_png(new, 200)
        os.replace(new, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    bunch = load_image_folder(root)
    row = list(bunch.filenames).index(str(path))
    np.testing.assert_array_equal(bunch.images[row], pixels)


def test_added_and_removed_files_rebuild(home, root):
    Image.fromarray(IMAGES[0]).save(root / "1" / "99.png")
    assert len(load_image_folder(root).data) == 11
    (root / "0" / "0.png").unlink()
    (root / "1" / "99.png").unlink()
    bunch = load_image_folder(root)
    assert len(bunch.data) == 9
    assert str(root / "0" / "0.png") not in bunch.filenames


def test_truncated_cache_file_is_rebuilt_with_a_warning(home, root):
    """A cache file cut short (a crash mid-write, a full disk) is never trusted."""
    first = load_image_folder(root)
    data_npy = home / _cache.CACHE_DIRNAME / entries(home)[0] / "data.npy"
    size = data_npy.stat().st_size
    for mmap in (False, True):
        with open(data_npy, "r+b") as f:
            f.truncate(size - 7)
        with pytest.warns(CacheWarning, match="unreadable.*decoding the images again"):
            again = load_image_folder(root, mmap=mmap)
        np.testing.assert_array_equal(again.data, first.data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_image_folder(root)  # rebuilt: no warning any more


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: (d / "meta.json").write_text("{not json"),
        lambda d: (d / "target.npy").unlink(),
        lambda d: np.save(d / "target.npy", np.full(10, 5, np.int32)),
        lambda d: np.save(d / "data.npy", np.zeros((10, 11), np.uint8)),
        lambda d: np.save(d / "filenames.npy", np.arange(10)),
        lambda d: (d / "data.npy").write_bytes(b"garbage"),
    ],
    ids=["meta", "missing", "labels", "shape", "names", "garbage"],
)
def test_damaged_cache_is_rebuilt(home, root, damage):
    first = load_image_folder(root)
    damage(home / _cache.CACHE_DIRNAME / entries(home)[0])
    with pytest.warns(CacheWarning):
        again = load_image_folder(root)
    assert_same(first, again)


def test_cache_of_another_format_version_is_replaced_quietly(home, root):
    load_image_folder(root)
    meta_path = home / _cache.CACHE_DIRNAME / entries(home)[0] / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["format"] = -1
    meta_path.write_text(json.dumps(meta))
    load_image_folder(root)
    assert json.loads(meta_path.read_text())["format"] == _cache.FORMAT_VERSION


def test_leftover_temporary_folder_is_ignored(home, root, monkeypatch):
    first = load_image_folder(root)
    key = entries(home)[0]
    junk = home / _cache.CACHE_DIRNAME / f".{key}.tmp-1-dead"
    junk.mkdir()
    (junk / "data.npy").write_bytes(b"half")
    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: pytest.fail("decoded again")
    )
    assert_same(first, load_image_folder(root))


def test_interrupted_cache_write_leaves_no_entry(home, root, monkeypatch):
    def disk_full(path, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_cache.np, "save", disk_full)
    with pytest.warns(CacheWarning, match="Could not write the image cache"):
        bunch = load_image_folder(root)
    assert len(bunch.data) == 10  # the images are still returned
    assert entries(home) == []  # and no half-written cache is left
    with pytest.raises(OSError, match="mmap=True needs the cache"):
        with pytest.warns(CacheWarning):
            load_image_folder(root, mmap=True)


def test_mmap(home, root):
    plain = load_image_folder(root)
    mapped = load_image_folder(root, mmap=True)
    assert isinstance(mapped.data, np.memmap)
    assert not mapped.data.flags.writeable
    assert np.shares_memory(mapped.images, mapped.data)
    assert_same(plain, mapped)
    with pytest.raises(ValueError, match="read-only"):
        mapped.data[0, 0] = 1


def test_mmap_on_a_cold_cache(home, root):
    mapped = load_image_folder(root, mmap=True)
    assert isinstance(mapped.data, np.memmap)
    np.testing.assert_array_equal(mapped.images[[0, 5]], IMAGES[[0, 1]])


def test_skipped_files_are_reported_from_the_cache_too(home, root):
    (root / "0" / "bad.png").write_bytes(b"")
    with pytest.warns(SkippedImagesWarning, match="bad.png"):
        first = load_image_folder(root, on_error="skip")
    with pytest.warns(SkippedImagesWarning, match="bad.png"):
        second = load_image_folder(root, on_error="skip")
    assert_same(first, second)
    assert len(first.data) == 10


def test_string_labels_survive_the_cache(home, tmp_path):
    root = write_image_folder(IMAGES[:4], ["b", "a10", "a2", "b"], tmp_path / "s")
    first = load_image_folder(root)
    second = load_image_folder(root)
    assert_same(first, second)
    assert second.target_names.tolist() == ["a2", "a10", "b"]
    assert second.target.dtype.kind == "U"


def test_unwritable_data_home_loads_without_cache(tmp_path, root, monkeypatch):
    from sk_template.datasets import _home

    def read_only(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(_home.Path, "mkdir", read_only)
    with pytest.warns(CacheWarning, match="cache is unavailable.*Permission denied"):
        bunch = load_image_folder(root, data_home=tmp_path / "ro")
    assert len(bunch.data) == 10
    with pytest.raises(PermissionError):
        load_image_folder(root, data_home=tmp_path / "ro", mmap=True)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file"):
        load_image_folder(root, data_home=tmp_path / "file")


def test_entries_of_deleted_folders_are_pruned(home, tmp_path, root):
    gone = write_image_folder(IMAGES, LABELS, tmp_path / "temporary")
    load_image_folder(gone)
    stale_tmp = home / _cache.CACHE_DIRNAME / ".abc.tmp-1-dead"
    stale_tmp.mkdir()
    os.utime(stale_tmp, (0, 0))
    fresh_tmp = home / _cache.CACHE_DIRNAME / ".def.tmp-2-live"
    fresh_tmp.mkdir()  # another process may be writing it right now
    shutil.rmtree(gone)
    load_image_folder(root)  # writing an entry prunes the others
    assert fresh_tmp.exists() and not stale_tmp.exists()
    (kept,) = [name for name in entries(home) if not name.startswith(".")]
    meta = json.loads((home / _cache.CACHE_DIRNAME / kept / "meta.json").read_text())
    assert meta["root"] == str(root)


def _flip_last_byte(path, offset=1):
    raw = bytearray(path.read_bytes())
    raw[-offset] ^= 0x01
    path.write_bytes(bytes(raw))


def _reverse_target_names(entry):
    meta_path = entry / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta["target_names"] = meta["target_names"][::-1]
    meta_path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: _flip_last_byte(d / "data.npy"),
        lambda d: _flip_last_byte(d / "filenames.npy"),
        # The low byte of the last int32 label: 1 -> 0, still in range.
        lambda d: _flip_last_byte(d / "target.npy", offset=4),
        _reverse_target_names,
    ],
    ids=["pixel", "filename", "label", "target_names"],
)
@pytest.mark.parametrize("mmap", [False, True])
def test_changed_contents_are_detected(home, root, damage, mmap):
    """Damage that keeps every shape, dtype and index range valid: a flipped
    byte (a pixel, a file name's character, a label 0 <-> 1) or the class
    names swapped, which would swap every label."""
    first = load_image_folder(root)
    damage(home / _cache.CACHE_DIRNAME / entries(home)[0])
    with pytest.warns(CacheWarning, match="does not match its checksum"):
        again = load_image_folder(root, mmap=mmap)
    assert_same(first, again)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_same(first, load_image_folder(root))  # rewritten whole


def test_class_folders_with_undecodable_names_use_the_cache(home, tmp_path):
    """A class folder (and file) whose name is not UTF-8: the cache key and
    fingerprint hash the name's bytes, and the names come back as
    os.fsdecode gives them, the same from the cache as without it."""
    base = os.fsencode(tmp_path / "raw")
    for i, cls in enumerate([b"caf\xe9", b"plain"]):
        folder = os.path.join(base, cls)
        os.makedirs(folder)
        for j in range(3):
            name = os.path.join(folder, b"im\xff%d.png" % j)
            Image.fromarray(IMAGES[i * 3 + j]).save(os.fsdecode(name))
    root = os.fsdecode(base)
    plain = load_image_folder(root, cache=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        first = load_image_folder(root)
        assert len(entries(home)) == 1
        second = load_image_folder(root, mmap=True)
    for bunch in (first, second):
        assert_same(plain, bunch)
    assert plain.target_names.tolist() == ["caf\udce9", "plain"]
    assert os.fsencode(second.filenames[0]).endswith(b"caf\xe9/im\xff0.png")
