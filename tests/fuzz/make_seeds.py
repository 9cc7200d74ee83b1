"""Write the seed corpora of the fuzz harnesses (``tests/fuzz/corpus/``).

Small valid inputs that cover the formats' variants: model files of every
metric, centroid, label type and optional member; IDX files of every type,
plain and gzipped; PNGs and JPEGs of every mode the decoders handle, with
the four option bytes of ``fuzz_image_decode.py`` in front.  The committed
corpus is this script's output; run it again after a format changes::

    python tests/fuzz/make_seeds.py
"""

# SPDX-License-Identifier: BSD-3-Clause

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from sk_template import NearestMeanImageClassifier, save_model
from sk_template.datasets import write_idx

CORPUS = Path(__file__).resolve().parent / "corpus"


def _fresh(name):
    folder = CORPUS / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def model_files():
    folder = _fresh("model_file")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    y = np.arange(12) % 3
    cases = {
        "euclidean": (NearestMeanImageClassifier(), X, y, {"image_shape": (4, 4)}),
        "manhattan_median": (
            NearestMeanImageClassifier("manhattan", centroid="median"),
            X,
            y,
            {},
        ),
        "cosine_float": (NearestMeanImageClassifier("cosine"), X / 255.0, y, {}),
        "string_labels": (
            NearestMeanImageClassifier(priors="empirical"),
            X,
            np.array(["three", "seven", "one"])[y],
            {
                "image_shape": (4, 4),
                "load_params": {"mode": "L", "size": (4, 4), "resize": "crop"},
            },
        ),
        "shrunk_priors": (
            NearestMeanImageClassifier(shrink_threshold=0.5, priors=[0.2, 0.3, 0.5]),
            X,
            y,
            {},
        ),
        "two_classes_rgb": (
            NearestMeanImageClassifier(),
            rng.integers(0, 256, (6, 12), dtype=np.uint8),
            np.array([0, 1] * 3),
            {"image_shape": (2, 2, 3)},
        ),
    }
    for name, (clf, data, labels, extra) in cases.items():
        clf.fit(data, labels)
        save_model(clf, folder / f"{name}.npz", **extra)
    # Column names (a pandas frame): the optional feature_names_in member.
    import pandas as pd

    frame = pd.DataFrame(X[:, :4], columns=["a", "b", "c", "d"])
    save_model(NearestMeanImageClassifier().fit(frame, y), folder / "named.npz")


def idx_files():
    folder = _fresh("idx")
    rng = np.random.default_rng(1)
    arrays = {
        "images-idx3-ubyte": rng.integers(0, 256, (3, 4, 4), dtype=np.uint8),
        "labels-idx1-ubyte": np.array([3, 7, 1], np.uint8),
        "int8-idx1": np.array([-1, 0, 1], np.int8),
        "int16-idx2": rng.integers(-300, 300, (2, 3)).astype(np.int16),
        "int32-idx2": rng.integers(-(2**20), 2**20, (2, 2)).astype(np.int32),
        "float32-idx2": rng.normal(size=(2, 3)).astype(np.float32),
        "float64-idx1": rng.normal(size=3),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array)
        write_idx(folder / f"{name}.gz", array)


def _option_bytes(mode, fast, size=(0, 0), crop=False):
    modes = ["L", "RGB", "RGBA", None]
    opts = modes.index(mode) | (4 if crop else 0) | (8 if fast else 0)
    return bytes([opts, size[0], size[1], 0])


def image_files():
    folder = _fresh("image_decode")
    rng = np.random.default_rng(2)
    grey = rng.integers(0, 256, (8, 6), dtype=np.uint8)
    colour = rng.integers(0, 256, (8, 6, 3), dtype=np.uint8)
    images = {
        "grey.png": (Image.fromarray(grey), "PNG", {}),
        "grey_alpha.png": (Image.fromarray(grey).convert("LA"), "PNG", {}),
        "rgb.png": (Image.fromarray(colour), "PNG", {}),
        "rgba.png": (Image.fromarray(colour).convert("RGBA"), "PNG", {}),
        "palette.png": (Image.fromarray(colour).convert("P"), "PNG", {}),
        "palette_transparent.png": (
            Image.fromarray(colour).convert("P"),
            "PNG",
            {"transparency": 0},
        ),
        "one_bit.png": (Image.fromarray(grey).convert("1"), "PNG", {}),
        "sixteen_bit.png": (
            Image.fromarray(grey.astype(np.uint16) * 257),
            "PNG",
            {},
        ),
        "interlaced.png": (Image.fromarray(colour), "PNG", {"interlace": 1}),
        "grey.jpg": (Image.fromarray(grey), "JPEG", {"quality": 90}),
        "rgb.jpg": (Image.fromarray(colour), "JPEG", {"quality": 90}),
        "progressive.jpg": (
            Image.fromarray(colour),
            "JPEG",
            {"progressive": True},
        ),
        "cmyk.jpg": (Image.fromarray(colour).convert("CMYK"), "JPEG", {}),
    }
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    images["rotated.jpg"] = (Image.fromarray(colour), "JPEG", {"exif": exif})
    for name, (im, fmt, params) in images.items():
        buffer = io.BytesIO()
        im.save(buffer, fmt, **params)
        data = buffer.getvalue()
        for mode in ("L", "RGB", None):
            for fast in (True, False):
                prefix = _option_bytes(mode, fast)
                tag = f"{mode or 'stored'}_{'fast' if fast else 'pillow'}"
                (folder / f"{name}.{tag}").write_bytes(prefix + data)
        resized = _option_bytes("L", True, size=(3, 5), crop=True)
        (folder / f"{name}.resized").write_bytes(resized + data)


def main():
    model_files()
    idx_files()
    image_files()
    for folder in sorted(CORPUS.iterdir()):
        files = list(folder.iterdir())
        size = sum(f.stat().st_size for f in files)
        print(f"{folder.name}: {len(files)} files, {size:,} bytes")


if __name__ == "__main__":
    main()
