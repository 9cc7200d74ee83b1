"""``sk-template`` on awkward image folders: predict reads every image it
labels (and reuses the datasets' walker), and the errors about sizes and
memory are one line naming the flag that helps."""

# SPDX-License-Identifier: BSD-3-Clause

import os

import numpy as np
import pytest
from PIL import Image
from test_cli import one_line_error

from sk_template import NearestMeanImageClassifier
from sk_template._persist import save_model
from sk_template.cli import _predict, main
from sk_template.datasets import _batches


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(tmp_path / "data_home"))


def _model(tmp_path, **kwargs):
    """A model of 16 pixel values: "dark" (all 0) and "bright" (all 255)."""
    X = np.array([[0] * 16, [255] * 16], dtype=np.uint8)
    clf = NearestMeanImageClassifier().fit(X, ["dark", "bright"])
    return save_model(clf, tmp_path / "m.npz", **kwargs)


def _labels(out):
    return {line.split("\t")[0]: line.split("\t")[1] for line in out.splitlines()}


@pytest.mark.parametrize("batch", [4096, 1])  # the shape holds across batches
def test_predict_never_labels_an_image_of_another_shape(
    tmp_path, capsys, monkeypatch, batch
):
    """A model saved from Python records no image shape: the first image
    sets it, and a 2x8 image (16 pixels too) is not labelled from an unset
    row: an error, or with --on-error skip a warning."""
    monkeypatch.setattr(_predict, "_BATCH_FILES", batch)
    model = _model(tmp_path)
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("L", (4, 4), 0).save(folder / "1.png")
    Image.new("L", (8, 2), 255).save(folder / "2.png")  # 2x8
    assert main(["predict", str(model), str(folder), "-q"]) == 1
    one_line_error(capsys, folder / "2.png", "2x8", "4x4", "--size", "--on-error")
    assert main(["predict", str(model), str(folder), "-q", "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    assert _labels(captured.out) == {str(folder / "1.png"): "dark"}
    assert f"skipped {folder / '2.png'}" in captured.err
    # Resized to one size, both are read and labelled.
    assert main(["predict", str(model), str(folder), "-q", "--size", "4x4"]) == 0
    labels = _labels(capsys.readouterr().out)
    assert labels == {str(folder / "1.png"): "dark", str(folder / "2.png"): "bright"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_predict_skips_a_fifo_with_on_error_skip(tmp_path, capsys, fifo_unblocker):
    model = _model(tmp_path, image_shape=(4, 4))
    folder = tmp_path / "in"
    folder.mkdir()
    Image.new("L", (4, 4), 0).save(folder / "1.png")
    (folder / "3.png").write_bytes(b"not a png")
    fifo = folder / "4.png"
    os.mkfifo(fifo)
    argv = ["predict", str(model), str(folder), "-q", "--on-error", "skip"]
    for inputs in ([str(folder)], [str(folder / "1.png"), str(fifo)]):
        with fifo_unblocker(fifo) as unblocker:
            assert main([*argv[:2], *inputs, *argv[3:]]) == 0
        assert unblocker.opened == 0
        captured = capsys.readouterr()
        assert _labels(captured.out) == {str(folder / "1.png"): "dark"}
        assert f"skipped {fifo}: a named pipe (FIFO)" in captured.err
    # A FIFO named on the command line is never opened either.
    with fifo_unblocker(fifo) as unblocker:
        assert main(["predict", str(model), str(fifo), "-q"]) == 1
    assert unblocker.opened == 0
    one_line_error(capsys, f"cannot read image {fifo}: a named pipe (FIFO)")


def test_predict_searches_folders_as_the_loader_does(tmp_path, capsys):
    """Linked sub-folders are followed, hidden and __MACOSX ones are not, as
    load_image_folder does for a class folder."""
    model = _model(tmp_path, image_shape=(4, 4))
    folder, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    for sub in (folder / "__MACOSX", folder / ".hidden", elsewhere):
        sub.mkdir(parents=True)
    for path in (folder / "1.png", elsewhere / "2.png", folder / "__MACOSX" / "3.png"):
        Image.new("L", (4, 4), 0).save(path)
    Image.new("L", (4, 4), 0).save(folder / ".hidden" / "4.png")
    os.symlink(elsewhere, folder / "linked")
    assert main(["predict", str(model), str(folder), "-q"]) == 0
    assert list(_labels(capsys.readouterr().out)) == [
        str(folder / "1.png"),
        str(folder / "linked" / "2.png"),
    ]


def _two_sizes(root):
    for label, value in (("a", 40), ("b", 200)):
        (root / label).mkdir(parents=True)
        for i in range(3):
            size = (8, 8) if i else (10, 6)
            Image.new("L", size, value).save(root / label / f"{i}.png")


def test_evaluate_names_what_fixes_images_of_several_sizes(tmp_path, capsys):
    """A model fitted without --size takes images of its one size: the hint
    is not "pass --size", which evaluate then refuses."""
    train, test = tmp_path / "train", tmp_path / "test"
    for label, value in (("a", 40), ("b", 200)):
        (train / label).mkdir(parents=True)
        for i in range(3):
            Image.new("L", (8, 8), value).save(train / label / f"{i}.png")
    _two_sizes(test)
    model = tmp_path / "m.npz"
    assert main(["fit", str(train), "-o", str(model), "-q"]) == 0
    assert main(["evaluate", str(model), str(test), "-q"]) == 1
    last = one_line_error(capsys, "8x8 images without --size", "fit a model with")
    assert "pass --size" not in last.lower()
    assert main(["evaluate", str(model), str(test), "-q", "--size", "8x8"]) == 1
    one_line_error(capsys, "loaded with no --size, not with --size 8x8")


def test_resize_without_size_is_refused(tmp_path, capsys):
    _two_sizes(tmp_path / "img")
    argv = ["fit", str(tmp_path / "img"), "-o", str(tmp_path / "m.npz"), "-q"]
    assert main([*argv, "--resize", "crop"]) == 1
    one_line_error(capsys, "--resize crop", "no --size", "add --size HxW")
    assert not (tmp_path / "m.npz").exists()
    assert main([*argv, "--resize", "crop", "--size", "8x8"]) == 0


def test_memory_errors_are_one_line_naming_size(tmp_path, capsys, monkeypatch):
    _two_sizes(tmp_path / "img")
    argv = ["fit", str(tmp_path / "img"), "-o", str(tmp_path / "m.npz"), "--no-cache"]
    monkeypatch.setattr(_batches, "_total_memory", lambda: 100)
    assert main([*argv, "--size", "64x64", "-q"]) == 1
    last = one_line_error(capsys, "more than this machine has", "--size HxW")
    assert "size=(height, width)" not in last

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(_batches, "decode_files", no_memory)
    monkeypatch.setattr(_batches, "_total_memory", lambda: None)
    assert main([*argv, "--size", "8x8", "-q"]) == 1
    one_line_error(capsys, "out of memory", "--size HxW")
