"""Tests of the ``sk-template`` command, in subprocesses and in-process.

Each command runs once as ``python -m sk_template`` in a subprocess (the demo
end to end; fit, evaluate, predict and means on a folder written here;
pixels; fetch-mnist).  Error paths run in-process through ``main(argv)``,
which is what the console script calls, to keep the file fast; two of them
also run in a subprocess to check the real exit status.
"""

# SPDX-License-Identifier: BSD-3-Clause

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import joblib
import numpy as np
import pytest
import torch
from PIL import Image

from sk_template import NearestMeanImageClassifier
from sk_template._persist import FORMAT_VERSION, load_model, save_model
from sk_template.cli import main, means_image_size
from sk_template.datasets import write_idx, write_image_folder

REPO = Path(__file__).resolve().parents[1]
CLASSES = ["cat", "dog", "owl"]
SHAPE = (6, 5)  # not square: the model file must carry the shape
# The source document's pixels of a 3 (rows 4:10, columns 4:10 of its image).
BOOK_PIXELS = np.array(
    [
        [0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 29],
        [0, 0, 0, 48, 166, 224],
        [0, 93, 244, 249, 253, 187],
        [0, 107, 253, 253, 230, 48],
        [0, 3, 20, 20, 15, 0],
    ],
    dtype=np.uint8,
)
BOOK_TABLE = """\
    0   1   2   3   4   5
0   0   0   0   0   0   0
1   0   0   0   0   0  29
2   0   0   0  48 166 224
3   0  93 244 249 253 187
4   0 107 253 253 230  48
5   0   3  20  20  15   0
"""
BOOK_CROP_TABLE = """\
    3   4   5
2  48 166 224
3 249 253 187
"""


def _images(rng, n_per_class):
    """Class k has a bright band on rows 2k, 2k+1: separable with no error."""
    images, labels = [], []
    for k, name in enumerate(CLASSES):
        block = rng.integers(0, 40, size=(n_per_class, *SHAPE))
        block[:, 2 * k : 2 * k + 2, :] += 200
        images.append(block.astype(np.uint8))
        labels += [name] * n_per_class
    return np.concatenate(images), np.array(labels)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """``root/{train,valid}/{cat,dog,owl}/*.png`` of 6x5 grey images."""
    root = tmp_path_factory.mktemp("tree") / "animals"
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("valid", 4)):
        images, labels = _images(rng, n)
        write_image_folder(images, labels, root, split=split)
    return root


@pytest.fixture(scope="module")
def model_file(tree, tmp_path_factory):
    """A model fitted on ``tree``'s train split, as ``sk-template fit`` saves it."""
    path = tmp_path_factory.mktemp("model") / "model.npz"
    assert main(["fit", str(tree), "--split", "train", "-o", str(path), "-q"]) == 0
    return path


@pytest.fixture(autouse=True)
def data_home(tmp_path, monkeypatch):
    """Keep the image cache out of the home folder; no colours from the env."""
    home = tmp_path / "data_home"
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(home))
    monkeypatch.delenv("COLORTERM", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


def run(*args, cwd=None):
    """``python -m sk_template ARGS`` in a subprocess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    return subprocess.run(
        [sys.executable, "-m", "sk_template", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


def one_line_error(capsys_or_result, *fragments):
    """Assert stderr holds one ``sk-template: error:`` line, naming ``fragments``."""
    if hasattr(capsys_or_result, "readouterr"):
        err = capsys_or_result.readouterr().err
    else:
        err = capsys_or_result.stderr
    assert "Traceback" not in err
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("sk-template: error: "), err
    assert [ln for ln in err.splitlines() if ln.startswith("sk-template: ")] == [last]
    for fragment in fragments:
        assert str(fragment) in last, (fragment, last)
    return last


# --------------------------------------------------------------------------- demo
def test_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = run("demo", "--out", out)
    assert result.returncode == 0, result.stderr
    stdout = result.stdout

    # The whole path ran: written with write_image_folder, loaded back.
    pngs = list((out / "digits").rglob("*.png"))
    assert len(pngs) == 1797
    assert "Writing scikit-learn's 1797 handwritten digits" in result.stderr
    assert f"written as PNG files to {out / 'digits'}" in stdout
    assert "on 1347 images of 10 classes, 8x8 pixels each" in stdout
    assert "tested it on 450 images" in stdout

    lines = stdout.splitlines()
    accuracy = next(line for line in lines if line.startswith("Accuracy: "))
    assert float(accuracy.split()[1]) > 0.85
    assert accuracy.endswith("of 450 images)")
    table = lines.index("class  images  accuracy")
    assert [line.split()[0] for line in lines[table + 1 : table + 11]] == list(
        "0123456789"
    )
    matrix = lines.index(
        "Confusion matrix (rows: true class, columns: predicted class)"
    )
    assert lines[matrix + 1].split() == list("0123456789")
    rows = [
        list(map(int, line.split()[1:])) for line in lines[matrix + 2 : matrix + 12]
    ]
    assert np.sum(rows) == 450

    # It says where it wrote what, and wrote it.
    assert f"to {out / 'means.png'}" in stdout
    assert f"Wrote the model to {out / 'model.npz'}" in stdout
    model, meta = load_model(out / "model.npz", return_metadata=True)
    assert meta["image_shape"] == (8, 8)
    assert model.classes_.tolist() == list(range(10))
    with Image.open(out / "means.png") as im:
        assert im.format == "PNG"
        assert im.size == means_image_size(10, (8, 8)) == (608, 288)
        # Upscaled with nearest-neighbour: a tile is made of 14x14 squares.
        tile = np.asarray(im.convert("L"))[8 : 8 + 112, 8 : 8 + 112]
        assert (tile == np.repeat(np.repeat(tile[::14, ::14], 14, 0), 14, 1)).all()
        assert tile.min() < 60 and tile.max() > 240  # dark ink on white


def test_demo_on_a_folder_tree(tree, tmp_path, capsys):
    # With train/valid splits, the demo uses them.
    assert main(["demo", "--data", str(tree), "--out", str(tmp_path / "a")]) == 0
    out = capsys.readouterr().out
    assert "on 36 images of 3 classes, 6x5 pixels each" in out
    assert "tested it on 12 images (split 'valid'; fitted on split 'train')" in out
    assert "Accuracy: 1.0000 (12 of 12 images)" in out
    assert f"evaluate {tmp_path / 'a' / 'model.npz'} {tree} --split valid" in out
    assert (tmp_path / "a" / "means.png").is_file()

    # Without splits, it holds out a stratified part.
    assert (
        main(["demo", "--data", str(tree / "train"), "--out", str(tmp_path / "b")]) == 0
    )
    out = capsys.readouterr().out
    assert "on 27 images of 3 classes" in out
    assert "tested it on 9 images (a stratified 25% of it held out)" in out
    _, meta = load_model(tmp_path / "b" / "model.npz", return_metadata=True)
    assert meta["image_shape"] == SHAPE


# ------------------------------------------------- fit, evaluate, predict, means
def test_fit_evaluate_predict_means(tree, tmp_path):
    model = tmp_path / "model.npz"
    result = run("fit", tree, "--split", "train", "--metric", "manhattan", "-o", model)
    assert result.returncode == 0, result.stderr
    assert "Loading images from" in result.stderr  # progress on stderr...
    assert result.stdout == (
        "Fitted on 36 images of 3 classes (cat, dog, owl); wrote the model to "
        f"{model}\n"
    )
    loaded, meta = load_model(model, return_metadata=True)
    assert loaded.metric == "manhattan"
    assert meta["image_shape"] == SHAPE

    result = run("evaluate", model, tree, "--split", "valid", "--quiet")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # ...and none with --quiet
    assert result.stdout == (
        f"Model: {model}\n"
        f"Data: {tree} (split 'valid')\n"
        "Accuracy: 1.0000 (12 of 12 images)\n"
        "\n"
        "class  images  accuracy\n"
        "  cat       4    1.0000\n"
        "  dog       4    1.0000\n"
        "  owl       4    1.0000\n"
        "\n"
        "Confusion matrix (rows: true class, columns: predicted class)\n"
        "      cat dog owl\n"
        "  cat   4   0   0\n"
        "  dog   0   4   0\n"
        "  owl   0   0   4\n"
    )

    result = run("-q", "evaluate", model, tree, "--split", "valid", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "model": str(model),
        "data": str(tree),
        "split": "valid",
        "accuracy": 1.0,
        "n_samples": 12,
        "classes": CLASSES,
        "per_class_n_samples": [4, 4, 4],
        "per_class_accuracy": [1.0, 1.0, 1.0],
        "confusion_matrix": [[4, 0, 0], [0, 4, 0], [0, 0, 4]],
    }

    one_file = tree / "train" / "owl" / "24.png"
    result = run("predict", model, tree / "valid", one_file, "-q")
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert len(lines) == 13
    for path, label, probability in lines:
        assert Path(path).is_file()
        assert label == Path(path).parent.name
        assert 1 / 3 < float(probability) <= 1.0
    assert [Path(p).parent.name for p, _, _ in lines[:12]] == sorted(CLASSES * 4)
    assert lines[-1][0] == str(one_file)

    picture = tmp_path / "means.png"
    result = run("means", model, "-o", picture, "--scale", "10")
    assert result.returncode == 0, result.stderr
    assert f"Wrote the means of 3 classes (182x96 pixels) to {picture}" in result.stdout
    with Image.open(picture) as im:
        # Three 50x60 tiles in a row, 20 pixels of label under them, 8 around.
        assert im.size == means_image_size(3, SHAPE, scale=10) == (182, 96)


def test_means_layout_and_options(model_file, tmp_path, capsys):
    picture = tmp_path / "means.png"
    assert main(["means", str(model_file), "-o", str(picture), "--columns", "1"]) == 0
    with Image.open(picture) as im:
        # Default scale 19, about 112 pixels high; one column, three rows.
        assert (
            im.size
            == means_image_size(3, SHAPE, columns=1)
            == (
                8 + 5 * 19 + 8,
                3 * (6 * 19 + 20 + 8) + 8,
            )
        )
    # --cmap gray draws the stored values: the band of "cat" (rows 0-1) is light.
    assert main(["means", str(model_file), "-o", str(picture), "--cmap", "gray"]) == 0
    with Image.open(picture) as im:
        pixels = np.asarray(im.convert("L"))
    scale = 19
    assert pixels[8 + scale // 2, 8 + scale // 2] > 180
    assert pixels[8 + 5 * scale, 8 + scale // 2] < 60
    capsys.readouterr()


def test_means_of_a_model_without_image_shape(tmp_path, capsys):
    X = np.random.default_rng(0).integers(0, 255, size=(20, 12), dtype=np.uint8)
    model = save_model(
        NearestMeanImageClassifier().fit(X, [0, 1] * 10), tmp_path / "m.npz"
    )
    picture = tmp_path / "means.png"
    assert main(["means", str(model), "-o", str(picture)]) == 1
    one_line_error(capsys, model, "12 features are not a square image", "--shape")
    assert not picture.exists()
    assert main(["means", str(model), "-o", str(picture), "--shape", "3x4"]) == 0
    with Image.open(picture) as im:
        assert im.size == means_image_size(2, (3, 4))


# --------------------------------------------------------------------------- pixels
def test_pixels_prints_the_known_table(tmp_path):
    image = tmp_path / "three.png"
    Image.fromarray(BOOK_PIXELS).save(image)
    result = run("pixels", image)  # stdout is a pipe: plain numbers
    assert result.returncode == 0, result.stderr
    assert result.stdout == BOOK_TABLE
    assert "\x1b" not in result.stdout


def test_pixels_crop_and_colours(tmp_path, capsys, monkeypatch):
    image = tmp_path / "three.png"
    Image.fromarray(BOOK_PIXELS).save(image)
    assert main(["pixels", str(image), "--crop", "2:4,3:6"]) == 0
    assert capsys.readouterr().out == BOOK_CROP_TABLE
    assert main(["pixels", str(image), "--crop", "4:,:2"]) == 0
    assert capsys.readouterr().out == "    0   1\n4   0 107\n5   0   3\n"

    # Forced colours, 256-colour grey ramp: 0 is white (231) with black digits
    # (16); 93 is grey 162, nearest 158 (247), still with black digits; 244 is
    # grey 11, nearest 8 (232), with white digits (231); 253 is black (16).
    assert main(["pixels", str(image), "--crop", "3:4,0:5", "--color", "always"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row == (
        "3"
        "\x1b[48;5;231;38;5;16m   0"
        "\x1b[48;5;247;38;5;16m  93"
        "\x1b[48;5;232;38;5;231m 244"
        "\x1b[48;5;232;38;5;231m 249"
        "\x1b[48;5;16;38;5;231m 253"
        "\x1b[0m"
    )
    # 24-bit when the terminal says it has it.
    monkeypatch.setenv("COLORTERM", "truecolor")
    assert main(["pixels", str(image), "--crop", "3:4,0:2", "--color", "always"]) == 0
    row = capsys.readouterr().out.splitlines()[1]
    assert row == (
        "3"
        "\x1b[48;2;255;255;255;38;2;0;0;0m   0"
        "\x1b[48;2;162;162;162;38;2;0;0;0m  93"
        "\x1b[0m"
    )
    # "auto" shades only a terminal, and never with NO_COLOR.
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    assert main(["pixels", str(image)]) == 0
    assert capsys.readouterr().out == BOOK_TABLE


# ----------------------------------------------------------------- fetch-mnist
def _tiny_mnist(folder):
    """Four small IDX .gz files in the MNIST layout, and their md5 table."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    md5 = {}
    for prefix, n in (("train", 12), ("t10k", 6)):
        labels = np.array([3, 7, 1] * (n // 3), dtype=np.uint8)
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        for kind, array in (("images-idx3", images), ("labels-idx1", labels)):
            name = f"{prefix}-{kind}-ubyte.gz"
            write_idx(folder / name, array)
            md5[name] = hashlib.md5(gzip.decompress((folder / name).read_bytes()))
            md5[name] = md5[name].hexdigest()
    return md5


def test_fetch_mnist_from_a_file_url(tmp_path, capsys, monkeypatch):
    from sk_template.datasets import _mnist

    mirror = tmp_path / "mirror"
    md5 = _tiny_mnist(mirror)
    home = tmp_path / "home"

    # Files that are not MNIST fail their checksum: a one-line error.
    argv = ["fetch-mnist", "--data-home", str(home), "--layout", "sample"]
    url = ["--base-url", mirror.as_uri() + "/"]
    assert main(argv + url) == 1
    one_line_error(capsys, "Checksum mismatch for", "md5")

    # With the checksums of these files, they are fetched and written out.
    monkeypatch.setattr(_mnist, "MNIST_MD5", md5)
    assert main(argv + url) == 0
    captured = capsys.readouterr()
    assert captured.out == f"{home / 'mnist_sample'}\n"
    assert "Fetching MNIST into" in captured.err
    assert len(list((home / "mnist_sample" / "train" / "3").glob("*.png"))) == 4

    # The command itself, in a subprocess: the tree is there, nothing to fetch.
    result = run(*argv, "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{home / 'mnist_sample'}\n"
    assert result.stderr == ""


# --------------------------------------------------------------------------- errors
def test_errors_in_a_subprocess(tmp_path, tree):
    missing = tmp_path / "missing.npz"
    result = run("evaluate", missing, tree)
    assert result.returncode == 1
    assert result.stdout == ""
    one_line_error(result, "No such model file", missing)

    result = run("--debug", "evaluate", missing, tree)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith("sk-template: error: ")

    result = run("fit", tree)  # no -o
    assert result.returncode == 2
    assert "the following arguments are required: -o/--output" in result.stderr
    assert "Traceback" not in result.stderr


def _pickle(tmp_path, model_file):
    path = tmp_path / "model.joblib"
    joblib.dump(load_model(model_file), path)
    return path


def _text_file(tmp_path, model_file):
    path = tmp_path / "model.npz"
    path.write_text("not a model\n")
    return path


def _truncated(tmp_path, model_file):
    path = tmp_path / "model.npz"
    data = model_file.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def _newer(tmp_path, model_file):
    path = tmp_path / "model.npz"
    with np.load(model_file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["format_version"] = np.array(FORMAT_VERSION + 1)
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "make, fragments",
    [
        (_pickle, ["is a pickle", "can run code when loaded", "joblib.load only if"]),
        (_text_file, ["is not an sk_template model file"]),
        (_truncated, ["corrupt or truncated model file"]),
        (_newer, [f"newer sk_template (format {FORMAT_VERSION + 1} >", "upgrade"]),
    ],
)
@pytest.mark.parametrize("command", ["evaluate", "predict", "means"])
def test_bad_model_files(tmp_path, tree, model_file, capsys, make, fragments, command):
    bad = make(tmp_path, model_file)
    argv = {
        "evaluate": ["evaluate", str(bad), str(tree), "--split", "valid"],
        "predict": ["predict", str(bad), str(tree / "valid")],
        "means": ["means", str(bad), "-o", str(tmp_path / "means.png")],
    }[command]
    assert main(argv) == 1
    assert capsys.readouterr().out == ""
    assert main(argv) == 1
    one_line_error(capsys, bad, *fragments)


def _wrong_size_image(tmp_path):
    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((28, 28), dtype=np.uint8)).save(path)
    return path


def test_bad_paths_and_images(tmp_path, tree, model_file, capsys):
    missing = tmp_path / "nowhere"
    cases = [
        (["fit", str(missing), "-o", str(tmp_path / "m.npz")], [missing, "not exist"]),
        (["fit", str(tree), "-o", str(tmp_path / "m.npz")], ["split"]),
        (["evaluate", str(model_file), str(missing)], [missing]),
        (["evaluate", str(tmp_path / "nope.npz"), str(tree)], ["No such model file"]),
        (["evaluate", str(tmp_path), str(tree)], ["is a folder, not a model file"]),
        (["predict", str(model_file), str(missing)], ["no such image file", missing]),
        (["predict", str(model_file), str(tmp_path)], ["no image files in the folder"]),
        (["pixels", str(missing / "x.png")], ["cannot read image", missing]),
        (["demo", "--data", str(missing), "--out", str(tmp_path / "d")], [missing]),
        (["demo", "--out", str(model_file)], ["is a file, not a folder"]),
        (
            ["fit", str(tree), "--split", "train", "-o", str(missing / "m.npz")],
            [missing / "m.npz"],
        ),
    ]
    for argv, fragments in cases:
        assert main(argv) == 1, argv
        one_line_error(capsys, *fragments)
    assert not missing.exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_predict_never_opens_a_fifo_found_in_a_folder(
    tmp_path, tree, model_file, capsys, fifo_unblocker
):
    folder = tmp_path / "imgs"
    shutil.copytree(tree / "valid", folder)
    fifo = folder / "cat" / "pipe.png"
    os.mkfifo(fifo)
    with fifo_unblocker(fifo) as unblocker:
        assert main(["predict", str(model_file), str(folder), "-q"]) == 1
    one_line_error(capsys, f"cannot read image {fifo}: a named pipe (FIFO)")
    assert unblocker.opened == 0


def test_bad_images(tmp_path, tree, model_file, capsys):
    big = _wrong_size_image(tmp_path)
    assert main(["predict", str(model_file), str(big)]) == 1
    one_line_error(capsys, big, "28x28 images (784 pixel values)", "fitted on 6x5")

    broken = tmp_path / "broken.png"
    broken.write_bytes(Image.open(big).tobytes()[:10] + b"\x89PNG junk")
    assert main(["predict", str(model_file), str(broken)]) == 1
    one_line_error(capsys, f"cannot read image {broken}")

    # A folder of images of another size.
    other = tmp_path / "other"
    write_image_folder(np.zeros((4, 7, 7), np.uint8), CLASSES + ["cat"], other)
    assert main(["evaluate", str(model_file), str(other)]) == 1
    one_line_error(capsys, f"{other} has 7x7 images (49 pixel values)", "6x5")

    # A folder whose labels the model does not know.
    strangers = tmp_path / "strangers"
    write_image_folder(np.zeros((2, *SHAPE), np.uint8), ["emu", "yak"], strangers)
    assert main(["evaluate", str(model_file), str(strangers)]) == 1
    one_line_error(capsys, "none of the labels of the data", "'emu'", "'cat'")

    # Some labels the model does not know: counted as errors, with a warning.
    extra = tmp_path / "extra"
    write_image_folder(np.zeros((2, *SHAPE), np.uint8), ["cat", "yak"], extra)
    assert main(["evaluate", str(model_file), str(extra), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["classes"] == [*CLASSES, "yak"]
    assert json.loads(captured.out)["per_class_accuracy"][3] == 0.0
    assert (
        "sk-template: warning: the data has labels the model does not know, ['yak']"
        in captured.err
    )

    image = tmp_path / "three.png"
    Image.fromarray(BOOK_PIXELS).save(image)
    assert main(["pixels", str(image), "--crop", "2:9,0:3"]) == 1
    one_line_error(capsys, "crop rows 2:9 do not fit", "which has 6 rows")

    broken_tree = tmp_path / "broken_tree"
    write_image_folder(np.zeros((2, *SHAPE), np.uint8), ["cat", "dog"], broken_tree)
    (broken_tree / "dog" / "1.png").write_bytes(b"")
    assert main(["fit", str(broken_tree), "-o", str(tmp_path / "m.npz")]) == 1
    one_line_error(capsys, "cannot read image", "1.png", "empty file")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_devices(tree, model_file, tmp_path, capsys):
    model = tmp_path / "m.npz"
    argv = ["fit", str(tree), "--split", "train", "-o", str(model)]
    assert main([*argv, "--device", "cuda"]) == 1
    # In the command's terms, and before any image is loaded.
    captured = capsys.readouterr()
    assert "Loading images" not in captured.err
    one_line_error(
        SimpleNamespace(stderr=captured.err), "--device cuda", "CUDA is not available"
    )
    # A tree with splits and no --split: the error names the flag.
    assert main(["fit", str(tree), "-o", str(model)]) == 1
    one_line_error(capsys, "holds split folders", "--split train")

    # A model file fitted for CUDA runs on the CPU, with a one-line warning.
    assert main([*argv, "--device", "cpu", "-q"]) == 0
    with np.load(model, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    params = json.loads(str(arrays["params"]))
    arrays["params"] = np.array(json.dumps({**params, "device": "cuda"}))
    np.savez(model, **arrays)
    capsys.readouterr()
    assert main(["predict", str(model), str(tree / "valid" / "cat"), "-q"]) == 0
    captured = capsys.readouterr()
    assert len(captured.out.splitlines()) == 4
    assert captured.err.splitlines() == [
        f"sk-template: warning: The model in {model} was fitted with device='cuda', "
        "which is not available here; it will run on the CPU (device='cpu')."
    ]


@pytest.mark.parametrize(
    "argv, message",
    [
        ([], "the following arguments are required: COMMAND"),
        (["nosuch"], "invalid choice: 'nosuch'"),
        (["fit", "root", "-o", "m.npz", "--metric", "nope"], "invalid choice: 'nope'"),
        (["pixels", "x.png", "--crop", "1-2"], "crop must look like r0:r1,c0:c1"),
        (["means", "m.npz", "--shape", "28"], "expected HxW or HxWxC"),
        (["means", "m.npz", "--scale", "0"], "expected a positive integer"),
        (["demo", "--test-size", "2"], "expected a number in (0, 1)"),
    ],
)
def test_usage_errors_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sk-template")
    assert message in err


def test_help_and_version(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("demo", "fit", "evaluate", "predict", "means", "pixels"):
        assert command in out
    assert "fetch-mnist" in out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sk-template ")


def test_evaluate_matches_folder_names_to_string_classes(tmp_path, capsys):
    images, labels = _images(np.random.default_rng(1), 3)
    labels = np.where(labels == "cat", "3", "7")  # a model fitted on "3", "7"
    clf = NearestMeanImageClassifier().fit(images.reshape(len(images), -1), labels)
    model = save_model(clf, tmp_path / "m.npz", image_shape=SHAPE)
    folder = write_image_folder(images, labels.astype(int), tmp_path / "digits")
    assert main(["evaluate", str(model), str(folder), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["classes"] == ["3", "7"]
    assert report["accuracy"] == 1.0


def test_colour_images(tmp_path, capsys):
    rng = np.random.default_rng(2)
    grey, labels = _images(rng, 4)
    images = np.stack([grey, 255 - grey, grey // 2], axis=-1)  # (n, 6, 5, 3)
    root = write_image_folder(images, labels, tmp_path / "colour")
    model = tmp_path / "m.npz"
    assert main(["fit", str(root), "--mode", "RGB", "-o", str(model), "-q"]) == 0
    assert load_model(model, return_metadata=True)[1]["image_shape"] == (*SHAPE, 3)
    capsys.readouterr()
    assert main(["evaluate", str(model), str(root), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
    assert main(["predict", str(model), str(root / "owl"), "-q"]) == 0
    assert {line.split("\t")[1] for line in capsys.readouterr().out.splitlines()} == {
        "owl"
    }
    picture = tmp_path / "means.png"
    assert main(["means", str(model), "-o", str(picture), "--scale", "2", "-q"]) == 0
    with Image.open(picture) as im:
        assert im.size == means_image_size(3, (*SHAPE, 3), scale=2)
        assert im.mode == "RGB"


# ------------------------------------------------------------------- photos
def _sample_photos(tmp_path, n_per_class, seed):
    """Crops of scikit-learn's two sample photos, of many sizes and formats:
    class "china" from china.jpg, class "flower" from flower.jpg."""
    from sklearn.datasets import load_sample_images

    rng = np.random.default_rng(seed)
    photos = load_sample_images().images
    root = tmp_path / f"photos{seed}"
    for label, source in zip(["china", "flower"], photos, strict=True):
        (root / label).mkdir(parents=True)
        for k in range(n_per_class):
            h, w = rng.integers(80, 300, size=2)
            top = rng.integers(0, source.shape[0] - h)
            left = rng.integers(0, source.shape[1] - w)
            crop = Image.fromarray(source[top : top + h, left : left + w])
            crop.save(root / label / f"{k}.{['jpg', 'png', 'webp'][k % 3]}")
    return root


def test_photos_end_to_end(tmp_path):
    """A folder of colour photos of mixed sizes: fit and predict on a new photo
    from the command line, and the same folder in Python, with no script."""
    root = _sample_photos(tmp_path, 12, seed=0)
    model = tmp_path / "photos.npz"
    result = run(
        "fit", root, "--mode", "RGB", "--size", "32x32", "--resize", "crop",
        "-o", model,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Fitted on 24 images of 2 classes (china, flower)" in result.stdout
    _, meta = load_model(model, return_metadata=True)
    assert meta["image_shape"] == (32, 32, 3)
    assert meta["load_params"] == {"mode": "RGB", "size": (32, 32), "resize": "crop"}

    # New photos, of sizes the model never saw (a portrait one too), and a
    # phone photo stored on its side with an EXIF orientation.
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    Image.fromarray(flower[50:350, 200:400]).save(tmp_path / "new_flower.jpg")
    Image.fromarray(china[100:190, 10:600]).save(tmp_path / "new_china.png")
    sideways = np.ascontiguousarray(np.rot90(flower[0:400, 100:600], 1))
    exif = Image.Exif()
    exif[274] = 6  # rotated: a viewer turns it 90 degrees clockwise
    Image.fromarray(sideways).save(tmp_path / "phone.jpg", exif=exif)
    news = [tmp_path / "new_flower.jpg", tmp_path / "new_china.png"]
    news.append(tmp_path / "phone.jpg")
    result = run("predict", model, *news, "-q")
    assert result.returncode == 0, result.stderr
    lines = [line.split("\t") for line in result.stdout.splitlines()]
    assert [(path, label) for path, label, _ in lines] == [
        (str(news[0]), "flower"),
        (str(news[1]), "china"),
        (str(news[2]), "flower"),
    ]

    # evaluate loads a held-out folder the same way without being told.
    held_out = _sample_photos(tmp_path, 6, seed=1)
    result = run("evaluate", model, held_out, "--json", "-q")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["accuracy"] >= 0.75  # chance: 0.5

    # The same in Python: load_image_folder with the same arguments gives
    # the rows the model was fitted on.
    from sk_template.datasets import load_image_folder

    bunch = load_image_folder(
        root, mode="RGB", size=(32, 32), resize="crop", data_home=tmp_path / "c"
    )
    assert bunch.data.shape == (24, 32 * 32 * 3)
    clf = NearestMeanImageClassifier().fit(bunch.data, bunch.target)
    np.testing.assert_allclose(clf.centroids_, load_model(model).centroids_)


def test_photos_of_mixed_sizes_need_size(tmp_path, capsys):
    root = _sample_photos(tmp_path, 3, seed=2)
    assert main(["fit", str(root), "--mode", "RGB", "-o", str(tmp_path / "m")]) == 1
    one_line_error(capsys, "do not all have the same size", "--size HxW")


def test_on_error_skip(tmp_path, tree, capsys):
    root = tmp_path / "animals"
    images, labels = _images(np.random.default_rng(3), 3)
    write_image_folder(images, labels, root)
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n junk")
    model = tmp_path / "m.npz"
    argv = ["fit", str(root), "-o", str(model)]
    assert main(argv) == 1
    one_line_error(capsys, "cannot read image", "broken.png", "--on-error skip")
    assert main([*argv, "--on-error", "skip", "-q"]) == 0
    captured = capsys.readouterr()
    assert "Fitted on 9 images of 3 classes" in captured.out
    warning = captured.err.splitlines()
    assert len(warning) == 1 and warning[0].startswith("sk-template: warning: ")
    assert "broken.png" in warning[0]

    # predict: the bad file is a warning line, the others are predicted.
    inputs = [str(root / "dog" / "broken.png"), str(root / "owl")]
    assert main(["predict", str(model), *inputs]) == 1
    one_line_error(capsys, "cannot read image", "broken.png")
    assert main(["predict", str(model), *inputs, "--on-error", "skip", "-q"]) == 0
    captured = capsys.readouterr()
    assert [line.split("\t")[1] for line in captured.out.splitlines()] == ["owl"] * 3
    assert captured.err.splitlines() == [
        f"sk-template: warning: skipped {inputs[0]}: "
        "corrupt or truncated PNG file (Pillow cannot identify it)"
    ]
    # Nothing readable at all is an error.
    argv = ["predict", str(model), inputs[0], "--on-error", "skip", "-q"]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"sk-template: warning: skipped {inputs[0]}")
    assert err[1:] == [
        "sk-template: error: none of the 1 image files could be read (see the "
        "warnings above)."
    ]


def test_fit_takes_the_estimator_options(tree, tmp_path, capsys):
    model = tmp_path / "m.npz"
    argv = ["fit", str(tree), "--split", "train", "-o", str(model), "-q"]
    options = ["--centroid", "median", "--shrink-threshold", "0.5"]
    assert main([*argv, *options, "--priors", "0.2,0.3,0.5"]) == 0
    loaded = load_model(model)
    assert loaded.centroid == "median" and loaded.shrink_threshold == 0.5
    assert loaded.priors == [0.2, 0.3, 0.5]
    expected = NearestMeanImageClassifier(
        centroid="median", shrink_threshold=0.5, priors=[0.2, 0.3, 0.5]
    )
    from sk_template.datasets import load_image_folder

    X, y = load_image_folder(tree, split="train", cache=False, return_X_y=True)
    np.testing.assert_allclose(loaded.centroids_, expected.fit(X, y).centroids_)
    assert main([*argv, "--priors", "empirical"]) == 0
    assert load_model(model).priors == "empirical"
    # One prior per class, named as the flag.
    assert main([*argv, "--priors", "0.5,0.5"]) == 1
    one_line_error(capsys, "--priors has 2 entries but there are 3 classes")


def test_evaluate_and_predict_load_images_as_the_model_was_fitted(tmp_path, capsys):
    """Grey 6x5 images fitted as RGB 12x10: evaluate and predict need no flag;
    a flag that contradicts the model file is an error naming it."""
    images, labels = _images(np.random.default_rng(4), 3)
    root = write_image_folder(images, labels, tmp_path / "small")
    model = tmp_path / "m.npz"
    pixels = ["--mode", "RGB", "--size", "12x10", "--resize", "crop"]
    assert main(["fit", str(root), *pixels, "-o", str(model), "-q"]) == 0
    assert load_model(model, return_metadata=True)[1]["image_shape"] == (12, 10, 3)
    capsys.readouterr()
    assert main(["evaluate", str(model), str(root), "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == 1.0
    # A new image of another size is resized as the training images were.
    Image.fromarray(np.kron(images[-1], np.ones((5, 5), np.uint8))).save(
        tmp_path / "big_owl.png"
    )
    assert main(["predict", str(model), str(tmp_path / "big_owl.png"), "-q"]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "owl"
    # Repeating what the file records is fine; contradicting it is not.
    assert main(["evaluate", str(model), str(root), *pixels, "-q"]) == 0
    capsys.readouterr()
    for flag, value, recorded in [
        ("--size", "6x5", "--size 12x10"),
        ("--mode", "L", "--mode RGB"),
        ("--resize", "stretch", "--resize crop"),
    ]:
        assert main(["predict", str(model), str(root / "owl"), flag, value]) == 1
        one_line_error(capsys, f"loaded with {recorded}", f"leave {flag} out")

    # A model file that records nothing (saved from Python): flags stand in.
    clf = NearestMeanImageClassifier().fit(
        np.repeat(images.reshape(len(images), -1), 1, axis=1), labels
    )
    bare = save_model(clf, tmp_path / "bare.npz")
    big = str(tmp_path / "big_owl.png")
    assert main(["predict", str(bare), big, "-q"]) == 1
    one_line_error(capsys, "30x25 images", "fit the model with --size HxW")
    assert main(["predict", str(bare), big, "--size", "6x5", "-q"]) == 0
    assert capsys.readouterr().out.split("\t")[1] == "owl"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "r", "-o", "m", "--size", "64"], "expected HxW"),
        (["fit", "r", "-o", "m", "--size", "0x4"], "expected HxW"),
        (["fit", "r", "-o", "m", "--resize", "squash"], "invalid choice: 'squash'"),
        (["fit", "r", "-o", "m", "--on-error", "ignore"], "invalid choice"),
        (["fit", "r", "-o", "m", "--n-jobs", "0"], "-1 for all cores"),
        (["fit", "r", "-o", "m", "--priors", "a,b"], "expected uniform, empirical"),
        (["fit", "r", "-o", "m", "--priors=-1,2"], "non-negative"),
        (["fit", "r", "-o", "m", "--shrink-threshold", "0"], "positive number"),
        (["fit", "r", "-o", "m", "--centroid", "mode"], "invalid choice: 'mode'"),
        (["predict", "m", "x.png", "--size", "4x4x3"], "expected HxW"),
        (["demo", "--data", "r", "--n-jobs", "x"], "-1 for all cores"),
    ],
)
def test_loading_and_estimator_usage_errors(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: sk-template")
    assert message in err
