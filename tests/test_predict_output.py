"""``sk-template predict`` gives one record per image whatever its name.

File and class names made here hold a tab, a newline, a carriage return, a
backslash, a Unicode line separator and bytes that are not UTF-8; each format
must keep them apart and give the exact names back.
"""

# SPDX-License-Identifier: BSD-3-Clause

import codecs
import csv
import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from sk_template import NearestMeanImageClassifier, save_model
from sk_template.cli import main

CLASSES = ["plain", "odd\tclass\nname\\"]
# Two images of each class, under names that break naive lines.
NAMES = [
    b"new\nline.png",
    b"tab\there.png",
    b"cr\rhere.png",
    b"back\\slash\\t.png",
    b"caf\xe9 not utf-8.png",
    "line\u2028sep é.png".encode(),
]


@pytest.fixture(autouse=True)
def _data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(tmp_path / "data_home"))


@pytest.fixture
def case(tmp_path):
    """A model of two classes with awkward names, and images to label:
    ``(model path, {path bytes: label})``."""
    rng = np.random.default_rng(0)
    X = rng.integers(0, 60, size=(20, 4, 4), dtype=np.uint8)
    y = np.array(CLASSES * 10)
    X[y == CLASSES[1], :2] += 190
    model = save_model(
        NearestMeanImageClassifier().fit(X.reshape(20, -1), y),
        tmp_path / "model.npz",
        image_shape=(4, 4),
    )
    folder = os.fsencode(tmp_path / "images")
    os.mkdir(folder)
    expected = {}
    for i, name in enumerate(NAMES):
        k = i % 2
        pixels = rng.integers(0, 60, size=(4, 4), dtype=np.uint8)
        if k:
            pixels[:2] += 190
        path = os.path.join(folder, name)
        with open(path, "wb") as f:
            Image.fromarray(pixels).save(f, format="PNG")
        expected[path] = CLASSES[k]
    return model, folder, expected


def _predict(capfdbinary, model, folder, *options):
    argv = ["predict", str(model), os.fsdecode(folder), "-q", *options]
    assert main(argv) == 0
    captured = capfdbinary.readouterr()
    assert captured.err == b""
    return captured.out


def test_tsv_is_one_escaped_line_per_image(case, capfdbinary):
    model, folder, expected = case
    out = _predict(capfdbinary, model, folder)
    lines = out.decode("utf-8").splitlines()  # splits at \r, \u2028 ... too
    assert len(lines) == len(NAMES) and out.endswith(b"\n")
    got = {}
    for line in lines:
        path, label, probability = line.split("\t")
        assert float(probability) > 0.5
        unescape = lambda field: codecs.escape_decode(field.encode())[0]  # noqa: E731
        got[unescape(path)] = os.fsdecode(unescape(label))
    assert got == expected


def test_jsonl_gives_the_names_back(case, capfdbinary):
    model, folder, expected = case
    out = _predict(capfdbinary, model, folder, "--format", "jsonl")
    assert out.isascii()
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert len(records) == len(NAMES)
    assert {os.fsencode(r["path"]): r["label"] for r in records} == expected
    assert all(0.5 < r["probability"] <= 1 for r in records)


def test_csv_written_by_a_real_writer(case, capfdbinary):
    model, folder, expected = case
    out = _predict(capfdbinary, model, folder, "--format", "csv")
    text = out.decode("utf-8", "surrogateescape")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    assert rows[0] == ["path", "label", "probability"]
    assert len(rows) == 1 + len(NAMES)
    assert {os.fsencode(path): label for path, label, _ in rows[1:]} == expected


def test_plain_names_are_unchanged(tmp_path, capfdbinary):
    X = np.array([[0] * 4, [250] * 4], dtype=np.uint8)
    model = save_model(
        NearestMeanImageClassifier().fit(X, [3, 7]),
        tmp_path / "m.npz",
        image_shape=(2, 2),
    )
    image = tmp_path / "an image.png"
    Image.fromarray(np.full((2, 2), 240, np.uint8)).save(image)
    out = _predict(capfdbinary, model, image)
    assert out == f"{image}\t7\t1.0000\n".encode()
    out = _predict(capfdbinary, model, image, "--format", "jsonl")
    assert json.loads(out) == {"path": str(image), "label": 7, "probability": 1.0}


def test_help_documents_the_escapes(capsys):
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert r"written \\, \t, \n and \r" in text and r"\xNN" in text
    assert "--format {tsv,jsonl,csv}" in text
