"""Where the command's results go: an output path that cannot be written is
refused before any work, a full disk names the path, a reader of stdout that
goes away ends the command quietly, and thousands of files on the command
line are each predicted once, in order."""

# SPDX-License-Identifier: BSD-3-Clause

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_cli import one_line_error
from test_interrupt import _env

from sk_template.cli import main
from sk_template.datasets import write_image_folder

RNG = np.random.default_rng(17)
needs_dev_full = pytest.mark.skipif(
    not Path("/dev/full").exists(), reason="needs /dev/full"
)


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(tmp_path / "data_home"))


@pytest.fixture
def pics(tmp_path):
    images = RNG.integers(0, 256, size=(60, 6, 6), dtype=np.uint8)
    return write_image_folder(images, np.arange(60) % 3, tmp_path / "pics")


@pytest.fixture
def model(tmp_path, pics):
    path = tmp_path / "model.npz"
    assert main(["fit", str(pics), "-o", str(path), "-q"]) == 0
    return path


def test_fit_onto_a_folder_is_refused_before_loading(tmp_path, pics, capsys):
    folder = tmp_path / "existing"
    (folder / "keep").mkdir(parents=True)
    assert main(["fit", str(pics), "-o", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "Loading images" not in err and "Fitting" not in err
    assert err.endswith(f"it is a folder; name a file: {folder}\n"), err
    assert sorted(p.name for p in folder.iterdir()) == ["keep"]  # untouched


def test_fit_into_a_missing_folder_is_refused_before_loading(tmp_path, pics, capsys):
    target = tmp_path / "nowhere" / "model.npz"
    assert main(["fit", str(pics), "-o", str(target)]) == 1
    err = capsys.readouterr().err
    assert "Loading images" not in err
    assert "the folder" in err and "does not exist" in err and str(target) in err


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0,
    reason="root writes into read-only folders",
)
def test_fit_into_a_read_only_folder_is_refused_before_loading(tmp_path, pics, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert main(["fit", str(pics), "-o", str(folder / "m.npz")]) == 1
    finally:
        folder.chmod(0o755)
    err = capsys.readouterr().err
    assert "Loading images" not in err and "permission denied" in err


def test_means_onto_a_folder_is_refused_before_reading_the_model(
    tmp_path, model, capsys
):
    folder = tmp_path / "pictures"
    folder.mkdir()
    assert main(["means", str(model), "-o", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "Loading the model" not in err
    assert err.endswith(f"it is a folder; name a file: {folder}\n"), err


@needs_dev_full
@pytest.mark.parametrize("command", ["fit", "means"])
def test_a_full_disk_names_the_output(pics, model, capsys, command):
    argv = (
        ["fit", str(pics), "-o", "/dev/full", "-q"]
        if command == "fit"
        else ["means", str(model), "-o", "/dev/full", "-q"]
    )
    assert main(argv) == 1
    one_line_error(capsys, "No space left on device: /dev/full")


@pytest.mark.parametrize("fmt", ["tsv", "jsonl", "csv"])
def test_predict_into_head_stops_quietly(tmp_path, fmt):
    # ``sk-template predict ... | head -1``: far more lines than a pipe holds,
    # and the reader closes its end after the first.
    images = RNG.integers(0, 256, size=(3000, 2, 2), dtype=np.uint8)
    root = write_image_folder(images, np.arange(3000) % 2, tmp_path / "many")
    model = tmp_path / "m.npz"
    assert main(["fit", str(root), "-o", str(model), "-q"]) == 0
    child = subprocess.Popen(
        [sys.executable, "-m", "sk_template", "predict", str(model), str(root)]
        + ["--format", fmt, "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(tmp_path / "home"),
    )
    first = child.stdout.readline()
    child.stdout.close()
    err = child.stderr.read().decode()
    child.wait(timeout=120)
    starts = {"tsv": str(root).encode(), "jsonl": b'{"path"', "csv": b"path,"}
    assert first.startswith(starts[fmt]), first
    assert (child.returncode, err) == (1, "")


def test_thousands_of_files_on_the_command_line(tmp_path, capsys):
    # What a shell glob gives: every file, once each, in the order given.
    images = RNG.integers(0, 256, size=(2500, 3, 3), dtype=np.uint8)
    root = write_image_folder(images, np.arange(2500) % 5, tmp_path / "many")
    model = tmp_path / "m.npz"
    assert main(["fit", str(root), "-o", str(model), "-q"]) == 0
    capsys.readouterr()
    files = sorted(str(p) for p in root.glob("*/*.png"))[::-1]  # not natural order
    assert main(["predict", str(model), *files, "-q"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == files
    from_folder = main(["predict", str(model), str(root), "-q"])
    assert from_folder == 0
    by_path = dict(line.split("\t", 1) for line in lines)
    other = dict(line.split("\t", 1) for line in capsys.readouterr().out.splitlines())
    assert by_path == other  # the same labels as the folder gives
