"""``sk-template predict``: label image files, one line each."""

# SPDX-License-Identifier: BSD-3-Clause

import os
from pathlib import Path

import numpy as np

from ._common import add_device_option, check_shape, load_model_file, mode_for

NAME = "predict"
HELP = "label images: one line per image, path<TAB>label<TAB>probability"


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument(
        "inputs",
        metavar="IMAGE_OR_FOLDER",
        nargs="+",
        help="image files, or folders searched recursively for images",
    )
    add_device_option(p)


def _image_files(inputs):
    """Image files of ``inputs``: files as given, folders searched recursively."""
    from ..datasets import ImageDecodeError
    from ..datasets._discover import IMAGE_EXTENSIONS, natural_key, special_file

    files = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = []
            for dirpath, dirnames, filenames in os.walk(path):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found.extend(
                    os.path.join(dirpath, name)
                    for name in filenames
                    if not name.startswith(".")
                    and os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS
                )
            if not found:
                raise ValueError(f"no image files in the folder {path}.")
            for name in found:  # a FIFO found in a folder would block the read
                if reason := special_file(name):
                    raise ImageDecodeError(name, reason)
            found.sort(key=lambda p: [natural_key(part) for part in Path(p).parts])
            files.extend(found)
        elif path.exists():
            files.append(str(path))
        else:
            raise FileNotFoundError(f"no such image file or folder: {path}")
    return files


def run(args, console):
    from ..datasets._decode import decode_file
    from ..datasets._progress import Progress

    model, meta = load_model_file(args, console)
    image_shape = meta["image_shape"]
    mode = mode_for(image_shape)
    files = _image_files(args.inputs)
    progress = Progress(len(files), "Predicting", verbose=not console.quiet)
    batch = 256
    for start in range(0, len(files), batch):
        names = files[start : start + batch]
        rows = []
        for name in names:
            pixels = decode_file(name, mode=mode)
            check_shape(model, image_shape, pixels.shape, name)
            rows.append(pixels.reshape(-1))
        proba = model.predict_proba(np.stack(rows))
        best = np.argmax(proba, axis=1)
        for name, k, p in zip(names, best, proba, strict=True):
            console.out(f"{name}\t{model.classes_[k]}\t{p[k]:.4f}")
        progress.update(start + len(names))
    progress.close()
    return 0
