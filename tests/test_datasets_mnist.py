"""fetch_mnist on small IDX files served from file:// URLs (no network here)."""

import gzip
import hashlib
import shutil
import urllib.request

import numpy as np
import pytest

from sk_template.datasets import (
    _mnist,
    fetch_mnist,
    load_image_folder,
    read_idx,
    write_idx,
)

RNG = np.random.default_rng(11)
TRAIN_Y = np.array([3, 7, 1, 3, 0, 7, 7, 9, 3, 2], dtype=np.uint8)
TEST_Y = np.array([7, 3, 5, 3], dtype=np.uint8)
TRAIN_X = RNG.integers(0, 256, size=(10, 28, 28), dtype=np.uint8)
TEST_X = RNG.integers(0, 256, size=(4, 28, 28), dtype=np.uint8)
ARRAYS = {
    "train-images-idx3-ubyte.gz": TRAIN_X,
    "train-labels-idx1-ubyte.gz": TRAIN_Y,
    "t10k-images-idx3-ubyte.gz": TEST_X,
    "t10k-labels-idx1-ubyte.gz": TEST_Y,
}


def md5_unzipped(path):
    return hashlib.md5(gzip.decompress(path.read_bytes())).hexdigest()


@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A folder with four small MNIST-like files, and the md5 table for them."""
    folder = tmp_path / "mirror"
    folder.mkdir()
    table = {}
    for name, array in ARRAYS.items():
        table[name] = md5_unzipped(write_idx(folder / name, array))
    monkeypatch.setattr(_mnist, "MNIST_MD5", table)
    return folder


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


def test_png_layout(mirror, home):
    path = fetch_mnist(home, base_url=mirror.as_uri())
    assert path == home / "mnist_png"
    assert sorted(p.name for p in path.iterdir()) == ["testing", "training"]
    train = load_image_folder(path, split="training", cache=False)
    np.testing.assert_array_equal(train.target_names, [0, 1, 2, 3, 7, 9])
    order = np.argsort(TRAIN_Y, kind="stable")  # class, then source index
    np.testing.assert_array_equal(train.images, TRAIN_X[order])
    np.testing.assert_array_equal(train.target, TRAIN_Y[order])
    assert (path / "training" / "3" / "8.png").exists()  # named by source index
    test = load_image_folder(path, split="testing", cache=False)
    np.testing.assert_array_equal(test.target, [3, 3, 5, 7])
    # The verified downloads are kept for the next layout.
    assert sorted(p.name for p in (home / "mnist_idx").iterdir()) == sorted(ARRAYS)
    np.testing.assert_array_equal(
        read_idx(home / "mnist_idx" / "t10k-images-idx3-ubyte.gz"), TEST_X
    )


def test_sample_layout(mirror, home):
    path = fetch_mnist(home, layout="sample", base_url=mirror.as_uri() + "/")
    assert path == home / "mnist_sample"
    assert sorted(p.name for p in path.iterdir()) == ["labels.csv", "train", "valid"]
    train = load_image_folder(path, split="train", cache=False)
    np.testing.assert_array_equal(train.target, [3, 3, 3, 7, 7, 7])
    np.testing.assert_array_equal(train.images, TRAIN_X[[0, 3, 8, 1, 5, 6]])
    valid = load_image_folder(path, split="valid", cache=False)
    np.testing.assert_array_equal(valid.images, TEST_X[[1, 3, 0]])
    lines = (path / "labels.csv").read_text().splitlines()
    assert lines == [
        "name,label",
        "train/3/0.png,0",
        "train/3/3.png,0",
        "train/3/8.png,0",
        "train/7/1.png,1",
        "train/7/5.png,1",
        "train/7/6.png,1",
        "valid/3/1.png,0",
        "valid/3/3.png,0",
        "valid/7/0.png,1",
    ]
    for line in lines[1:]:
        assert (path / line.split(",")[0]).is_file()


def test_both_layouts_and_no_second_download(mirror, home, monkeypatch):
    paths = fetch_mnist(home, layout=["png", "sample"], base_url=mirror.as_uri())
    assert paths == [home / "mnist_png", home / "mnist_sample"]

    def offline(*args, **kwargs):
        raise AssertionError("downloaded although everything is there")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    assert fetch_mnist(home, layout="sample") == home / "mnist_sample"
    assert fetch_mnist(home) == home / "mnist_png"
    shutil.rmtree(home / "mnist_png")  # the IDX files are kept: rebuilt offline
    assert fetch_mnist(home).is_dir()


def test_checksum_mismatch(mirror, home, monkeypatch):
    write_idx(mirror / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3, 4], np.uint8))
    got = md5_unzipped(mirror / "t10k-labels-idx1-ubyte.gz")
    expected = _mnist.MNIST_MD5["t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(ValueError, match="Checksum mismatch") as info:
        fetch_mnist(home, base_url=mirror.as_uri())
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz" in message
    assert expected in message and got in message
    assert not (home / "mnist_png").exists()
    leftovers = [p.name for p in (home / "mnist_idx").iterdir()]
    assert "t10k-labels-idx1-ubyte.gz" not in leftovers
    assert all(not name.startswith(".") for name in leftovers)
    assert [p.name for p in home.iterdir()] == ["mnist_idx"]


def test_not_gzip_is_a_mismatch(mirror, home):
    (mirror / "train-labels-idx1-ubyte.gz").write_bytes(b"<html>moved</html>")
    with pytest.raises(ValueError, match="train-labels.*not a gzip file"):
        fetch_mnist(home, base_url=mirror.as_uri())


def test_second_mirror_is_tried(mirror, home, tmp_path):
    dead = (tmp_path / "dead").as_uri()
    path = fetch_mnist(home, base_url=[dead, mirror.as_uri()])
    assert path.is_dir()


def test_unreachable(tmp_path, home):
    with pytest.raises(OSError, match="Could not download train-images.*base_url="):
        fetch_mnist(home, base_url=(tmp_path / "nothing").as_uri())
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_mnist(home, download_if_missing=False)


def test_bad_layout(home):
    with pytest.raises(ValueError, match="layout must be"):
        fetch_mnist(home, layout="tgz")


def test_official_checksums_are_the_readmes():
    assert _mnist.MNIST_MD5 == {
        "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
    }
