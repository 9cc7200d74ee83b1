"""Writing files: symbolic links written through, FIFOs and devices written
into, folders refused, and no temporary name in any error.

``save_model``, ``sk-template fit -o`` and ``sk-template means -o`` share
:func:`sk_template.datasets._atomic.write_atomic`; folder trees (the cache,
``write_image_folder``, ``fetch_mnist``) share ``building_dir``.
"""

# SPDX-License-Identifier: BSD-3-Clause

import os
import stat
import threading

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from sk_template import NearestMeanImageClassifier
from sk_template._persist import load_model, save_model
from sk_template.cli import main
from sk_template.datasets import write_image_folder
from sk_template.datasets._atomic import write_atomic


@pytest.fixture(scope="module")
def clf():
    X, y = load_digits(return_X_y=True)
    return NearestMeanImageClassifier().fit((X * 16).astype(np.uint8), y)


@pytest.fixture
def model_file(tmp_path, clf):
    return save_model(clf, tmp_path / "saved.npz", image_shape=(8, 8))


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(tmp_path / "data_home"))


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("tree") / "pics"
    rng = np.random.default_rng(0)
    return write_image_folder(
        rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8), [0, 1] * 3, root
    )


def _writers(clf, model_file, tree):
    """Ways of writing a file at a path: the function and two CLI commands."""
    return {
        "save_model": lambda path: save_model(clf, path),
        "fit -o": lambda path: main(["fit", str(tree), "-o", str(path), "-q"]),
        "means -o": lambda path: main(["means", str(model_file), "-o", str(path)]),
    }


WRITERS = ["save_model", "fit -o", "means -o"]


def _is_written(path, writer):
    with open(path, "rb") as f:
        head = f.read(8)
    return head.startswith(b"\x89PNG" if writer == "means -o" else b"PK\x03\x04")


def _no_temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".")] == []


# ------------------------------------------------------------------- symlinks
@pytest.mark.parametrize("writer", WRITERS)
def test_symlink_is_written_through(tmp_path, clf, model_file, tree, writer):
    real = tmp_path / "real" / "out.bin"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(os.path.relpath(real, tmp_path))
    assert _writers(clf, model_file, tree)[writer](link) in (0, link)
    assert link.is_symlink() and os.readlink(link) == os.path.relpath(real, tmp_path)
    assert _is_written(real, writer)
    assert _no_temporaries(tmp_path) and _no_temporaries(real.parent)
    if writer != "means -o":
        assert load_model(link).n_features_in_ in (64, 16)


def test_dangling_symlink_creates_its_target(tmp_path, clf):
    link = tmp_path / "link.npz"
    link.symlink_to("target.npz")
    save_model(clf, link)
    assert link.is_symlink() and (tmp_path / "target.npz").is_file()
    assert load_model(tmp_path / "target.npz").n_features_in_ == 64


# ----------------------------------------------------------- FIFOs and devices
def _read_all(fd, into):
    os.set_blocking(fd, True)
    with open(fd, "rb") as f:
        into.append(f.read())


@pytest.mark.parametrize("writer", WRITERS)
def test_fifo_is_written_into_and_kept(tmp_path, clf, model_file, tree, writer):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    # The read end is open before the writer starts, and a write end is held
    # here until it is done: the reader sees everything the writer wrote, and
    # its read ends (when this is closed) whatever the writer did.
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    keeper = os.open(fifo, os.O_WRONLY)
    got = []
    reader = threading.Thread(target=_read_all, args=(read_end, got))
    reader.start()
    try:
        assert _writers(clf, model_file, tree)[writer](fifo) in (0, fifo)
    finally:
        os.close(keeper)
        reader.join()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    copy = tmp_path / "copy.bin"
    copy.write_bytes(got[0])
    assert _is_written(copy, writer)
    if writer != "means -o":
        assert load_model(copy).n_features_in_ in (64, 16)
    assert _no_temporaries(tmp_path)


@pytest.fixture
def null_device(tmp_path):
    """A character device like /dev/null: our own node where mknod is
    allowed (never the system's, in case writing replaced it), else
    /dev/null itself (then we are not root, and it cannot be replaced)."""
    node = tmp_path / "null"
    try:
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError, OSError):
        return os.devnull
    return node


@pytest.mark.parametrize("writer", WRITERS)
def test_character_device_is_written_into_and_kept(
    null_device, clf, model_file, tree, writer
):
    before = os.stat(null_device)
    assert _writers(clf, model_file, tree)[writer](null_device) in (0, null_device)
    after = os.stat(null_device)
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_broken_fifo_is_an_error_naming_it(tmp_path):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    read_end = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)

    def write(f):  # the reader goes away once the writer has opened the FIFO
        os.close(read_end)
        f.write(b"x" * (1 << 20))
        f.flush()

    with pytest.raises(BrokenPipeError) as info:
        write_atomic(fifo, write)
    assert str(fifo) in str(info.value) and ".tmp-" not in str(info.value)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


# ------------------------------------------------------------ folders, errors
@pytest.mark.parametrize("writer", WRITERS)
def test_folder_is_refused_naming_it(tmp_path, clf, model_file, tree, writer, capsys):
    folder = tmp_path / "existdir"
    folder.mkdir()
    if writer == "save_model":
        with pytest.raises(IsADirectoryError) as info:
            save_model(clf, folder)
        message = str(info.value)
    else:
        assert _writers(clf, model_file, tree)[writer](folder) == 1
        message = capsys.readouterr().err
    assert str(folder) in message and "is a folder" in message
    assert ".tmp-" not in message and ".existdir." not in message
    assert list(folder.iterdir()) == [] and _no_temporaries(tmp_path)


def test_errors_while_writing_name_the_target(tmp_path, clf, monkeypatch):
    def broken_replace(src, dst):
        raise PermissionError(13, "Permission denied", str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(PermissionError) as info:
        save_model(clf, tmp_path / "model.npz")
    assert str(tmp_path / "model.npz") in str(info.value)
    assert ".tmp-" not in str(info.value)
    monkeypatch.undo()
    assert _no_temporaries(tmp_path)


def test_folder_trees_are_built_through_a_symlink(tmp_path):
    real = tmp_path / "real"
    write_image_folder(np.zeros((2, 3, 3), np.uint8), [0, 1], real)
    link = tmp_path / "link"
    link.symlink_to("real")
    write_image_folder(np.ones((2, 3, 3), np.uint8), [5, 6], link, overwrite=True)
    assert link.is_symlink()
    assert sorted(p.name for p in real.iterdir()) == ["5", "6"]
    Image.open(real / "5" / "0.png").load()


def test_a_file_replaced_keeps_its_permissions(tmp_path):
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)  # e.g. a private model
    write_atomic(path, lambda f: f.write(b"new"))
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_ctrl_c_between_the_renames_puts_the_old_folder_back(tmp_path, monkeypatch):
    """Replacing a folder takes two renames (the old one aside, the new one
    in); Ctrl-C between them leaves the old folder where it was."""
    from sk_template.datasets import _atomic

    target = tmp_path / "tree"
    target.mkdir()
    (target / "old.txt").write_text("old")
    real = os.replace
    calls = []

    def replace(src, dst):
        calls.append(dst)
        if len(calls) == 3:  # the new folder's rename (after one try and the aside)
            raise KeyboardInterrupt
        return real(src, dst)

    with pytest.raises(KeyboardInterrupt):
        with _atomic.building_dir(target) as tmp:
            (tmp / "new.txt").write_text("new")
            monkeypatch.setattr(os, "replace", replace)
    monkeypatch.undo()
    assert sorted(p.name for p in target.iterdir()) == ["old.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["tree"]  # nothing left aside
