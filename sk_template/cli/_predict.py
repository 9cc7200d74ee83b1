"""``sk-template predict``: label image files, one line each."""

# SPDX-License-Identifier: BSD-3-Clause

import os
import warnings
from pathlib import Path

import numpy as np

from ._common import (
    add_device_option,
    add_loading_options,
    add_storage_options,
    check_shape,
    load_model_file,
    recorded_pixels,
    shape_text,
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
        help="image files, or folders searched recursively for images; paths or "
        "URLs such as s3://bucket/prefix",
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
    add_storage_options(p)


def _image_files(inputs, storage_options=None):
    """Image files of ``inputs`` in order, and the ``(path, reason)`` of those
    never to be opened (FIFOs, devices, sockets).

    Files are taken as given; folders are searched as ``load_image_folder``
    searches a class folder (the same walker: symbolic links to folders
    followed, hidden entries and ``__MACOSX`` left out), in natural order.
    An input may be a URL (``s3://bucket/prefix/x.png``, a folder too), read
    with ``storage_options``. Returns the files as runs ``(store, names,
    sizes)`` of consecutive files of one store, and the special files.
    """
    from ..datasets._discover import IMAGE_EXTENSIONS, natural_sorted, special_file
    from ..datasets._store import LOCAL, open_store

    runs, special = [], []

    def add(store, names, sizes):
        key = getattr(store, "fs", store)
        if runs and getattr(runs[-1][0], "fs", runs[-1][0]) is key:
            runs[-1][1].extend(names)
            if sizes is not None:
                runs[-1][2].extend(sizes)
        else:
            runs.append((store, list(names), None if sizes is None else list(sizes)))

    for item in inputs:
        if "://" in item:
            store, path = open_store(item, storage_options)
            if store is not LOCAL:
                size = store.file_size(path)
                if size is not None:
                    add(store, [item], [size])
                    continue
                if not store.is_dir(path):
                    raise FileNotFoundError(f"no such image file or folder: {item}")
                rels, _, _ = store.scan(path, IMAGE_EXTENSIONS, False)
                if not rels:
                    raise ValueError(f"no image files in the folder {item}.")
                names = [f"{store.display(path)}/{rel}" for rel in natural_sorted(rels)]
                add(store, names, store.sizes(names))
                continue
            item = str(path)
        path = Path(item)
        if path.is_dir():
            rels, _, odd = LOCAL.scan(str(path), IMAGE_EXTENSIONS, False)
            if not rels and not odd:
                raise ValueError(f"no image files in the folder {path}.")
            add(LOCAL, [os.path.join(path, rel) for rel in natural_sorted(rels)], None)
            special.extend((os.path.join(path, rel), why) for rel, why in odd)
        elif path.exists():
            if reason := special_file(path):  # opening a FIFO would block
                special.append((str(path), reason))
            else:
                add(LOCAL, [str(path)], None)
        else:
            raise FileNotFoundError(f"no such image file or folder: {path}")
    return runs, special


# Decoded pixels held at once, at most: batches shrink for large images.
_BATCH_BYTES = 1 << 26
_BATCH_FILES = 4096


def _mismatch(model, image_shape, reference, got):
    """Why an image of shape ``got`` is not predicted: the model does not take
    it, or the first image, ``reference = (path, shape)``, set another."""
    try:
        check_shape(model, image_shape, got, "it")
    except ValueError as exc:
        return str(exc)
    return (
        f"it has {shape_text(got)} pixels, but the first image, {reference[0]}, "
        f"has {shape_text(reference[1])}: the images must all have one size; "
        "pass --size HxW to resize every image to one size"
    )


class _Images:
    """The loader's decoder (:class:`~sk_template.datasets._batches.
    BatchDecoder`) with the command's words: every row returned is an image
    read whole and of the model's shape; an unreadable image, or one of
    another shape, stops the command, or with ``--on-error skip`` is left
    out with a warning."""

    def __init__(self, args, model, image_shape, pixels):
        from ..datasets._batches import BatchDecoder

        self.model, self.image_shape = model, image_shape
        self.stop = args.on_error == "raise"
        self.decoder = BatchDecoder(
            **pixels,
            on_error=args.on_error,
            on_mismatch=args.on_error,
            n_jobs=args.n_jobs,
            shape=image_shape,  # recorded in the model file, else the first image's
            check_first=lambda shape, path: check_shape(model, None, shape, path),
        )

    def skip(self, name, reason, *, read=False):
        """Leave ``name`` out with a warning, or (``--on-error raise``) stop:
        ``read`` says that the file itself could not be read."""
        from ..datasets import ImageDecodeError

        if self.stop and not read:
            raise ValueError(
                f"cannot predict {name}: {reason}. Fix or delete the file, or "
                "pass --on-error skip to leave such files out with a warning."
            )
        if self.stop:
            raise unreadable(ImageDecodeError(name, reason))
        warnings.warn(f"skipped {name}: {reason}", UserWarning, stacklevel=3)

    def decode(self, store, names, sizes=None):
        """The images of ``names`` (in ``store``, listed at ``sizes``) as
        rows, and the names kept."""
        from ..datasets import ImageDecodeError
        from ..datasets._batches import ImageSizeMismatch

        decoder = self.decoder
        decoder.store = store
        try:
            rows, keep, skipped, mismatched = decoder.decode(names, sizes=sizes)
        except ImageDecodeError as exc:
            raise unreadable(exc) from exc
        except ImageSizeMismatch as exc:  # the first stops the command
            rows, keep, skipped, mismatched = None, None, [], exc.mismatched[:1]
        reference = (decoder.reference, decoder.shape)
        for name, reason in skipped:
            self.skip(name, reason, read=True)
        for name, got in mismatched:
            why = _mismatch(self.model, self.image_shape, reference, got)
            self.skip(name, why)
        if rows is None or not len(rows):
            return None, []
        if keep is None:  # every row read: no copy
            return rows.reshape(len(names), -1), names
        kept = [name for name, k in zip(names, keep, strict=True) if k]
        return rows.reshape(len(kept), -1), kept


def run(args, console):
    from ..datasets._progress import Progress

    model, meta = load_model_file(args, console)
    image_shape = meta["image_shape"]
    pixels = recorded_pixels(args, meta)
    runs, special = _image_files(args.inputs, args.storage_options)
    n_files = sum(len(names) for _, names, _ in runs)
    images = _Images(args, model, image_shape, pixels)
    for name, reason in special:  # never opened
        images.skip(name, reason, read=True)
    batch = max(1, min(_BATCH_FILES, _BATCH_BYTES // model.n_features_in_))
    progress = Progress(n_files, "Predicting", verbose=console.progress)
    n_done = n_seen = 0
    writer = ResultWriter(args.format, console)
    try:
        for store, files, sizes in runs:
            for start in range(0, len(files), batch):
                stop = start + batch
                rows, names = images.decode(
                    store,
                    files[start:stop],
                    None if sizes is None else sizes[start:stop],
                )
                n_seen += len(files[start:stop])
                progress.update(n_seen)
                if not names:
                    continue
                proba = model.predict_proba(rows)
                best = np.argmax(proba, axis=1)
                for name, k, p in zip(names, best, proba, strict=True):
                    writer.write(name, model.classes_[k], p[k])
                n_done += len(names)
    finally:
        progress.close()
    if not n_done:
        raise ValueError(
            f"none of the {n_files + len(special)} image files could be read "
            "(see the warnings above)."
        )
    return 0
