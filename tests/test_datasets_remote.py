"""Image folders at fsspec URLs: ``memory://`` (fsspec alone) and ``s3://``
on a real S3 server on 127.0.0.1 (moto's, started by the ``s3_server``
fixture), compared with the same files in a local folder."""

import io
import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sk_template.datasets import (
    ImageDecodeError,
    SkippedImagesWarning,
    _batches,
    _cache,
    _decode,
    iter_image_folder,
    list_classes,
    load_image_folder,
)

fsspec = pytest.importorskip("fsspec")

pytestmark = pytest.mark.usefixtures("quiet_local_home")

RNG = np.random.default_rng(18)


def png(array):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def jpeg(array, **kwargs):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buf, "JPEG", **kwargs)
    return buf.getvalue()


def rotated_jpeg(array):
    """A JPEG stored on its side with EXIF orientation 6 (upright: ``array``)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = Image.fromarray(np.asarray(array, np.uint8)).transpose(
        Image.Transpose.ROTATE_90
    )
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()


def messy_folder():
    """``{relative path: bytes}`` of a folder with what real ones have:
    integer classes in natural order, names in natural order, a nested
    folder, PNGs and JPEGs (one rotated by EXIF), clutter that is no class
    or sample, odd characters in names."""
    files = {}
    for label in (2, 10):
        for i in (1, 2, 10):
            files[f"{label}/{i}.png"] = png(RNG.integers(0, 256, (6, 5)))
        files[f"{label}/photo.jpg"] = jpeg(RNG.integers(0, 256, (6, 5)), quality=95)
        files[f"{label}/nested/deep 3.png"] = png(RNG.integers(0, 256, (6, 5)))
    files["2/upright.jpg"] = rotated_jpeg(RNG.integers(0, 256, (6, 5)))
    files["10/ünï #%41.png"] = png(RNG.integers(0, 256, (6, 5)))
    files["10/.DS_Store"] = b"\0\0\0\1Bud1"
    files["10/notes.txt"] = b"not an image"
    files["labels.csv"] = b"name,label\n"
    files[".hidden/1.png"] = png(RNG.integers(0, 256, (6, 5)))
    files["__MACOSX/2/._1.png"] = b"resource fork"
    return files


def write_local(files, root):
    root = Path(root)
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


@pytest.fixture
def memory_root():
    """A fresh ``memory://`` folder URL, removed after the test."""
    fs = fsspec.filesystem("memory")
    name = f"sk-test-{uuid.uuid4().hex[:8]}"
    yield fs, f"memory://{name}", f"/{name}"
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


def write_memory(fs, files, path):
    for rel, data in files.items():
        fs.pipe_file(f"{path}/{rel}", data)


def assert_same_load(remote, local, url, root):
    np.testing.assert_array_equal(remote.data, local.data)
    np.testing.assert_array_equal(remote.target, local.target)
    np.testing.assert_array_equal(remote.target_names, local.target_names)
    rels = [f[len(url) + 1 :] for f in remote.filenames]
    assert rels == [
        os.path.relpath(f, root).replace(os.sep, "/") for f in local.filenames
    ]


# ------------------------------------------------------------------- memory://
def test_a_memory_folder_loads_as_the_same_local_folder(memory_root, tmp_path):
    fs, url, path = memory_root
    files = messy_folder()
    write_memory(fs, files, path)
    root = write_local(files, tmp_path / "local")
    local = load_image_folder(root, cache=False)
    remote = load_image_folder(url, cache=False)
    assert_same_load(remote, local, url, root)
    assert list(remote.target_names) == [2, 10]  # numeric, not "10" < "2"
    assert remote.filenames[0] == f"{url}/2/1.png"
    assert f"{url}/2/nested/deep 3.png" in remote.filenames
    assert f"{url}/10/ünï #%41.png" in remote.filenames
    # The EXIF orientation is applied: the upright pixels, not the stored ones.
    upright = remote.images[list(remote.filenames).index(f"{url}/2/upright.jpg")]
    assert upright.shape == (6, 5)
    assert f"Image folder {url!r}" in remote.DESCR
    np.testing.assert_array_equal(list_classes(url), [2, 10])
    batches = list(iter_image_folder(url, batch_size=4))
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), local.data)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), local.target)
    picked = load_image_folder(url, classes=[10], mode="RGB", size=(3, 3), cache=False)
    np.testing.assert_array_equal(
        picked.data,
        load_image_folder(
            root, classes=[10], mode="RGB", size=(3, 3), cache=False
        ).data,
    )


def test_splits_of_a_memory_folder(memory_root, tmp_path):
    fs, url, path = memory_root
    files = {
        f"{s}/{k}": v for s in ("train", "valid") for k, v in messy_folder().items()
    }
    write_memory(fs, files, path)
    root = write_local(files, tmp_path / "local")
    with pytest.raises(ValueError, match="holds split folders.*split='train'"):
        load_image_folder(url)
    with pytest.raises(ValueError, match="Split 'test' not found.*'train', 'valid'"):
        load_image_folder(url, split="test")
    remote = load_image_folder(url, split="valid", cache=False)
    local = load_image_folder(root, split="valid", cache=False)
    assert_same_load(remote, local, f"{url}/valid", root / "valid")


def test_a_memory_folder_is_listed_once_and_read_in_groups(memory_root, monkeypatch):
    """One ``find`` of the folder whatever its nesting or number of files,
    and reads in bounded groups, never a request per file to list it."""
    fs, url, path = memory_root
    for label in range(3):
        for i in range(700):
            folder = f"{label}/{i // 100}" if i >= 100 else f"{label}"
            fs.pipe_file(f"{path}/{folder}/{i}.png", png(np.full((2, 2), i % 256)))
    # Calls made by the loader, not by fsspec itself (its find walks with ls).
    calls = {"find": 0, "ls": 0, "info": 0, "cat_file": 0, "cat_ranges": []}
    depth = [0]

    def spying(name, real):
        def spy(self, *args, **kwargs):
            if depth[0] == 0:
                if name == "cat_ranges":
                    calls[name].append(len(args[0]))
                else:
                    calls[name] += 1
            depth[0] += 1
            try:
                return real(self, *args, **kwargs)
            finally:
                depth[0] -= 1

        return spy

    for name in ("find", "ls", "info", "cat_file", "cat_ranges"):
        monkeypatch.setattr(type(fs), name, spying(name, getattr(type(fs), name)))
    bunch = load_image_folder(url, cache=False)
    assert bunch.data.shape == (2100, 4)
    numbers = [int(f.rsplit("/", 1)[1][:-4]) for f in bunch.filenames]
    np.testing.assert_array_equal(bunch.data[:, 0], np.array(numbers) % 256)
    assert calls["find"] == 1
    assert calls["ls"] == calls["info"] == calls["cat_file"] == 0
    # The first file alone (it sets the shape), then groups of at most 256.
    assert calls["cat_ranges"][0] == 1
    assert max(calls["cat_ranges"]) == 256
    assert sum(calls["cat_ranges"]) == 2100
    calls["find"] = 0
    load_image_folder(url, split=None, classes=[1], cache=False)
    assert calls["find"] == 1


def test_bad_files_of_a_memory_folder(memory_root, tmp_path):
    fs, url, path = memory_root
    files = {
        **messy_folder(),
        "2/empty.png": b"",
        "2/corrupt.png": b"\x89PNG\r\n\x1a\nnot really",
        "10/truncated.jpg": jpeg(RNG.integers(0, 256, (6, 5)))[:40],
    }
    write_memory(fs, files, path)
    root = write_local(files, tmp_path / "local")
    with pytest.raises(ImageDecodeError, match=f"{url}/2/corrupt.png") as info:
        load_image_folder(url, cache=False)
    assert info.value.path == f"{url}/2/corrupt.png"
    with pytest.warns(SkippedImagesWarning, match="Skipped 3") as record:
        remote = load_image_folder(url, on_error="skip", cache=False)
    message = str(record[0].message)
    assert f"{url}/2/empty.png (empty file (0 bytes))" in message
    assert f"{url}/10/truncated.jpg" in message
    with pytest.warns(SkippedImagesWarning):
        local = load_image_folder(root, on_error="skip", cache=False)
    assert_same_load(remote, local, url, root)


def test_pixel_and_size_limits_apply_to_objects(memory_root, monkeypatch):
    fs, url, path = memory_root
    fs.pipe_file(f"{path}/a/small.png", png(np.zeros((4, 4))))
    fs.pipe_file(f"{path}/a/big.png", png(np.zeros((40, 40))))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 1600 > 2 * 100
    with pytest.raises(ImageDecodeError, match="big.png.*over twice"):
        load_image_folder(url, cache=False)
    # An object larger than any image within the limit can be is never read.
    monkeypatch.setattr(_decode, "METADATA_BYTES", 0)  # limit: 1,600 bytes
    huge = f"{path}/a/huge.png"
    fs.pipe_file(huge, png(RNG.integers(0, 256, (60, 60))))
    assert fs.size(huge) > 1600
    read = []
    real = type(fs).cat_ranges
    monkeypatch.setattr(
        type(fs),
        "cat_ranges",
        lambda self, paths, *a, **k: read.extend(paths) or real(self, paths, *a, **k),
    )
    fs.rm(f"{path}/a/big.png")
    with pytest.warns(
        SkippedImagesWarning, match=r"huge.png \([0-9,]+ bytes, more than"
    ):
        X, _ = load_image_folder(url, on_error="skip", cache=False, return_X_y=True)
    assert len(X) == 1 and huge not in read


def test_an_object_of_unknown_size_is_read_no_further_than_the_limit(
    memory_root, monkeypatch
):
    """A listing without sizes (some stores give none) still bounds a read."""
    from sk_template.datasets._store import open_store

    fs, url, path = memory_root
    fs.pipe_file(f"{path}/a/x.png", png(RNG.integers(0, 256, (60, 60))))
    fs.pipe_file(f"{path}/a/y.png", png(np.zeros((3, 3))))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    monkeypatch.setattr(_decode, "METADATA_BYTES", 0)  # limit: 1,600 bytes
    store, _ = open_store(url)
    big, small = store.read([f"{url}/a/x.png", f"{url}/a/y.png"], [-1, -1])
    assert isinstance(big, ImageDecodeError) and "not read whole" in big.reason
    assert bytes(small) == png(np.zeros((3, 3)))


def test_an_object_changed_during_the_load_is_a_bad_file(memory_root, monkeypatch):
    """Read up to one byte past its listed size, an object replaced by a
    larger one (or a smaller one) between the listing and the read is never
    decoded as if it were the listed one."""
    fs, url, path = memory_root
    for i in range(3):
        fs.pipe_file(f"{path}/a/{i}.png", png(np.full((4, 4), i)))
    real = type(fs).cat_ranges

    def replace_then_read(self, paths, *args, **kwargs):
        if len(paths) > 1:  # after the first file, before the rest
            fs.pipe_file(f"{path}/a/2.png", png(RNG.integers(0, 256, (9, 9))))
        return real(self, paths, *args, **kwargs)

    monkeypatch.setattr(type(fs), "cat_ranges", replace_then_read)
    with pytest.raises(ImageDecodeError, match="2.png: it changed while the folder"):
        load_image_folder(url, cache=False)


def test_the_cache_of_a_memory_folder_checks_every_object(
    memory_root, quiet_local_home, monkeypatch
):
    fs, url, path = memory_root
    for i in range(4):
        fs.pipe_file(f"{path}/{i % 2}/{i}.png", png(np.full((3, 3), 10 * i)))
    first = load_image_folder(url)
    entries = os.listdir(quiet_local_home / _cache.CACHE_DIRNAME)
    assert len(entries) == 1
    real = _batches.decode_files
    decoded = []
    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: decoded.append(1) or real(*a, **k)
    )
    again = load_image_folder(url)
    assert decoded == []
    np.testing.assert_array_equal(again.data, first.data)
    # Replaced by an object of the same size and name: not served stale.
    fs.pipe_file(f"{path}/1/3.png", png(np.full((3, 3), 99)))
    assert fs.size(f"{path}/1/3.png") == len(png(np.full((3, 3), 30)))
    changed = load_image_folder(url)
    assert decoded == [1]
    assert changed.data[-1].tolist() == [99] * 9
    # A local load writes (and prunes) the cache; the remote entry stays.
    local = write_local(
        {"x/0.png": png(np.zeros((2, 2)))}, quiet_local_home.parent / "l"
    )
    load_image_folder(local)
    assert decoded == [1, 1]
    load_image_folder(url)
    assert decoded == [1, 1]  # from its cache


def test_n_jobs_with_a_memory_folder_decodes_in_this_process(memory_root, monkeypatch):
    fs, url, path = memory_root
    monkeypatch.setattr(_decode, "MIN_FILES_PER_JOB", 2)
    for i in range(12):
        fs.pipe_file(f"{path}/{i % 3}/{i}.png", png(np.full((2, 3), i)))
    X, y = load_image_folder(url, n_jobs=2, cache=False, return_X_y=True)
    np.testing.assert_array_equal(X[:, 0], [0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11])


def test_file_urls_are_the_local_folder_and_share_its_cache(
    tmp_path, quiet_local_home, monkeypatch
):
    root = write_local(messy_folder(), tmp_path / "local")
    by_path = load_image_folder(root)
    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: pytest.fail("decoded again")
    )
    by_url = load_image_folder(root.as_uri())
    np.testing.assert_array_equal(by_url.data, by_path.data)
    np.testing.assert_array_equal(by_url.filenames, by_path.filenames)


def test_wrong_urls_and_storage_options(memory_root, tmp_path):
    fs, url, path = memory_root
    fs.pipe_file(f"{path}/a/0.png", png(np.zeros((2, 2))))
    with pytest.raises(FileNotFoundError, match="'memory://nowhere-at-all' does not"):
        load_image_folder("memory://nowhere-at-all")
    with pytest.raises(NotADirectoryError, match=f"'{url}/a/0.png' is a file"):
        load_image_folder(f"{url}/a/0.png")
    with pytest.raises(ValueError, match="not a URL fsspec knows"):
        load_image_folder("nosuchprotocol://x/y")
    with pytest.raises(ValueError, match="storage_options are passed to fsspec"):
        load_image_folder(tmp_path, storage_options={"anon": True})
    with pytest.raises(TypeError, match="storage_options must be a dict"):
        list_classes(url, storage_options="anon")


def test_no_cloud_library_is_imported_for_local_and_memory_folders(tmp_path):
    write_local(messy_folder(), tmp_path / "local")
    code = (
        "import sys\n"
        "from sk_template.datasets import load_image_folder\n"
        f"load_image_folder({str(tmp_path / 'local')!r}, cache=False)\n"
        "assert 'fsspec' not in sys.modules, 'fsspec for a path'\n"
        "import fsspec\n"
        "fsspec.filesystem('memory').pipe_file('/nocloud/a/0.png', "
        f"{png(np.zeros((2, 2)))!r})\n"
        "load_image_folder('memory://nocloud', cache=False)\n"
        "loaded = {'s3fs', 'gcsfs', 'boto3', 'botocore'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_each_url_imports_its_own_library_only():
    """gs:// brings in gcsfs and not s3fs; s3:// s3fs and not gcsfs (no
    request is made: the file system is only made)."""
    pytest.importorskip("gcsfs")
    pytest.importorskip("s3fs")
    code = (
        "import sys\n"
        "from sk_template.datasets._store import open_store\n"
        "open_store('gs://some-bucket/x', {'token': 'anon'})\n"
        "assert 'gcsfs' in sys.modules and 's3fs' not in sys.modules\n"
        "open_store('s3://some-bucket/x', {'anon': True})\n"
        "assert 's3fs' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_command_line_takes_urls(memory_root, tmp_path, capsys):
    from sk_template.cli import main

    fs, url, path = memory_root
    files = messy_folder()
    write_memory(fs, files, path)
    model = tmp_path / "m.npz"
    assert main(["fit", url, "-o", str(model), "-q"]) == 0
    assert "Fitted on 12 images of 2 classes" in capsys.readouterr().out
    assert main(["evaluate", str(model), url, "-q"]) == 0
    assert "accuracy" in capsys.readouterr().out.lower()
    assert main(["predict", str(model), f"{url}/10", f"{url}/2/1.png", "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{url}/10/1.png\t")
    assert lines[-1].startswith(f"{url}/2/1.png\t")
    assert len(lines) == 7
    assert main(["fit", url, "-o", str(model), "--storage-options", "[1]", "-q"]) == 2
    assert "expected a JSON object" in capsys.readouterr().err


# ---------------------------------------------------------------------- s3://
@pytest.fixture
def bucket(s3_server):
    return s3_server.bucket(f"sk-test-{uuid.uuid4().hex[:8]}")


def test_an_s3_folder_loads_as_the_same_local_folder(
    s3_server, bucket, tmp_path, monkeypatch
):
    files = messy_folder()
    root = write_local(files, tmp_path / "local")
    url = s3_server.upload(root, bucket, "data/digits")
    # What consoles and tools leave in buckets: folder markers, and keys no
    # folder can hold (an empty segment, "." segments), all left out.
    for key in ("data/digits/2/", "data/digits/10/nested/", "data/digits/10//x.png"):
        s3_server.client.put_object(Bucket=bucket, Key=key, Body=b"")
    s3_server.client.put_object(
        Bucket=bucket, Key="data/digits/2/./dot.png", Body=files["2/1.png"]
    )
    options = s3_server.storage_options()
    remote = load_image_folder(url, storage_options=options)
    local = load_image_folder(root, cache=False)
    assert_same_load(remote, local, url, root)
    # Decoded by joblib's worker processes, each with its own connections.
    monkeypatch.setattr(_decode, "MIN_FILES_PER_JOB", 2)
    parallel = load_image_folder(url, storage_options=options, n_jobs=2, cache=False)
    assert_same_load(parallel, local, url, root)
    assert remote.filenames[0] == f"s3://{bucket}/data/digits/2/1.png"
    np.testing.assert_array_equal(list_classes(url, storage_options=options), [2, 10])
    # From the cache, with the credentials nowhere in it.
    cached = load_image_folder(f"{url}/", storage_options=options)
    np.testing.assert_array_equal(cached.data, remote.data)
    for dirpath, _, names in os.walk(get_home()):
        for name in names:
            assert s3_server.secret.encode() not in (Path(dirpath) / name).read_bytes()


def get_home():
    from sk_template.datasets import get_data_home

    return get_data_home()


def test_wrong_credentials_name_the_bucket(s3_server, bucket):
    s3_server.client.put_object(
        Bucket=bucket, Key="d/a/0.png", Body=png(np.zeros((2, 2)))
    )
    wrong = s3_server.storage_options(secret="not-the-secret")
    with pytest.raises(
        PermissionError, match=f"denied.*credentials for the bucket '{bucket}'"
    ):
        load_image_folder(f"s3://{bucket}/d", storage_options=wrong)
    unknown = s3_server.storage_options(key="AKIANOBODY", secret="x")
    with pytest.raises(PermissionError, match=f"bucket '{bucket}'"):
        list_classes(f"s3://{bucket}/d", storage_options=unknown)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_image_folder(
            f"s3://{bucket}-missing/d", storage_options=s3_server.storage_options()
        )


def test_an_s3_object_replaced_after_a_load_is_never_served_stale(
    s3_server, bucket, quiet_local_home
):
    options = s3_server.storage_options()
    client = s3_server.client
    for i in range(4):
        client.put_object(
            Bucket=bucket, Key=f"d/{i % 2}/{i}.png", Body=png(np.full((3, 3), i))
        )
    first = load_image_folder(f"s3://{bucket}/d", storage_options=options)
    assert first.data[:, 0].tolist() == [0, 2, 1, 3]
    # Same name, same size, other pixels.
    client.put_object(Bucket=bucket, Key="d/1/3.png", Body=png(np.full((3, 3), 7)))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        second = load_image_folder(f"s3://{bucket}/d", storage_options=options)
    assert second.data[:, 0].tolist() == [0, 2, 1, 7]
    client.delete_object(Bucket=bucket, Key="d/0/2.png")
    assert load_image_folder(f"s3://{bucket}/d", storage_options=options).data[
        :, 0
    ].tolist() == [0, 1, 7]


def test_an_s3_folder_is_listed_once_and_read_with_bounded_concurrency(
    s3_server, bucket, monkeypatch
):
    """On an async store (s3fs), one listing of the folder, then every object
    fetched once, never more than FETCH_CONCURRENCY requests in flight, and
    more than one at a time (the concurrency is real)."""
    import asyncio

    import s3fs

    from sk_template.datasets import _store

    for i in range(300):
        s3_server.client.put_object(
            Bucket=bucket, Key=f"d/{i % 3}/{i}.png", Body=png(np.full((2, 2), i % 256))
        )
    monkeypatch.setattr(_store, "FETCH_CONCURRENCY", 8)
    fetched, in_flight, most = [], [0], [0]
    listings = []
    real_cat, real_find = s3fs.S3FileSystem._cat_file, s3fs.S3FileSystem.find

    async def cat_file(self, path, *args, **kwargs):
        fetched.append(path)
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        try:
            await asyncio.sleep(0.01)  # a slower network: requests overlap
            return await real_cat(self, path, *args, **kwargs)
        finally:
            in_flight[0] -= 1

    def find(self, path, *args, **kwargs):
        listings.append(path)
        return real_find(self, path, *args, **kwargs)

    monkeypatch.setattr(s3fs.S3FileSystem, "_cat_file", cat_file)
    monkeypatch.setattr(s3fs.S3FileSystem, "find", find)
    bunch = load_image_folder(
        f"s3://{bucket}/d", storage_options=s3_server.storage_options(), cache=False
    )
    numbers = [int(f.rsplit("/", 1)[1][:-4]) for f in bunch.filenames]
    np.testing.assert_array_equal(bunch.data[:, 0], np.array(numbers) % 256)
    assert len(listings) == 1
    assert sorted(fetched) == sorted(f[len("s3://") :] for f in bunch.filenames)
    assert 1 < most[0] <= 8
