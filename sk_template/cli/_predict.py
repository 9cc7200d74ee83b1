"""``sk-template predict``: label image files, one line each."""

# SPDX-License-Identifier: BSD-3-Clause

import os
import warnings
from pathlib import Path

import numpy as np

from ._common import (
    add_device_option,
    add_loading_options,
    check_shape,
    load_model_file,
    recorded_pixels,
    unreadable,
)
from ._output import FORMATS, ResultWriter

NAME = "predict"
HELP = "label images: one line per image, path<TAB>label<TAB>probability"
DESCRIPTION = (
    "Label images: one line per image, path<TAB>label<TAB>probability. In the "
    "path and the label a backslash, tab, newline and carriage return are "
    "written \\\\, \\t, \\n and \\r, and any other control character "
    "and any byte that is not UTF-8 as \\xNN (one per byte), so that every "
    "image is one line. --format jsonl writes one JSON object per line, "
    "--format csv a CSV file with a header row."
)


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="a model file from fit or demo")
    p.add_argument(
        "inputs",
        metavar="IMAGE_OR_FOLDER",
        nargs="+",
        help="image files, or folders searched recursively for images",
    )
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="tsv",
        help="tsv: path<TAB>label<TAB>probability with names escaped; jsonl: a "
        "JSON object per line; csv: CSV with a header row (default: %(default)s)",
    )
    add_loading_options(p, recorded=True)
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


# Decoded pixels held at once, at most: batches shrink for large images.
_BATCH_BYTES = 1 << 26
_BATCH_FILES = 4096


def _decoded(args, model, image_shape, pixels, names):
    """The images of ``names`` as rows, and the names kept: an unreadable file
    stops the command, or with ``--on-error skip`` is left out with a warning
    line."""
    from ..datasets import ImageDecodeError
    from ..datasets._decode import decode_files, reference_shape

    stop = args.on_error == "raise"
    shape, errors = image_shape, []
    if shape is None:  # the file does not record it: the first image sets it
        try:
            shape, errors = reference_shape(names, **pixels, stop_on_error=stop)
        except ImageDecodeError as exc:
            raise unreadable(exc) from exc
        if shape is not None:
            check_shape(model, None, shape, names[len(errors)])
    if shape is not None:
        out, errors, mismatched = decode_files(
            names, **pixels, shape=tuple(shape), stop_on_error=stop, n_jobs=args.n_jobs
        )
        if errors and stop:
            raise unreadable(ImageDecodeError(names[errors[0][0]], errors[0][1]))
        if mismatched:
            i, got = mismatched[0]
            check_shape(model, image_shape, got, names[i])
    for i, reason in errors:
        warnings.warn(f"skipped {names[i]}: {reason}", UserWarning, stacklevel=2)
    keep = np.ones(len(names), dtype=bool)
    keep[[i for i, _ in errors]] = False
    if not keep.any():
        return None, []
    kept = [name for name, k in zip(names, keep, strict=True) if k]
    return out[keep].reshape(len(kept), -1), kept


def run(args, console):
    from ..datasets._progress import Progress

    model, meta = load_model_file(args, console)
    image_shape = meta["image_shape"]
    pixels = recorded_pixels(args, meta)
    files = _image_files(args.inputs)
    batch = max(1, min(_BATCH_FILES, _BATCH_BYTES // model.n_features_in_))
    progress = Progress(len(files), "Predicting", verbose=console.progress)
    n_done = 0
    writer = ResultWriter(args.format, console)
    for start in range(0, len(files), batch):
        rows, names = _decoded(
            args, model, image_shape, pixels, files[start : start + batch]
        )
        progress.update(min(start + batch, len(files)))
        if not names:
            continue
        proba = model.predict_proba(rows)
        best = np.argmax(proba, axis=1)
        for name, k, p in zip(names, best, proba, strict=True):
            writer.write(name, model.classes_[k], p[k])
        n_done += len(names)
    progress.close()
    if not n_done:
        raise ValueError(
            f"none of the {len(files)} image files could be read (see the "
            "warnings above)."
        )
    return 0
