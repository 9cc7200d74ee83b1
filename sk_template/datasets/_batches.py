"""Lists of image files into rows of one shape, batch after batch: the one
decoder behind :func:`load_image_folder`, :func:`iter_image_folder` and
``sk-template predict``.

The shape every image must have is given (a model that records it), or set
by the first readable image and kept for every later batch.  What happens to
a file that cannot be read (``on_error``) and to an image of another shape
(``on_mismatch``) is a policy: ``"raise"`` stops at the first such file in
order, ``"skip"`` leaves it out and reports it.  The rows kept are compacted
into one array, copied only when some were left out.
"""

import os
from typing import NamedTuple

import numpy as np

from ._decode import decode_files, first_image
from ._errors import ImageDecodeError

POLICIES = ("raise", "skip")


def fmt_shape(shape):
    return "x".join(str(s) for s in shape)


class ImageSizeMismatch(ValueError):
    """Images that differ in size from the first one (``size=`` not given).

    ``reference`` is the first image, of shape ``shape``; ``mismatched``
    lists ``(path, shape)`` of the images that differ.  A ValueError: the
    command line words its hint in its own flags.
    """

    def __init__(self, message, reference, shape, mismatched):
        super().__init__(message)
        self.reference, self.shape, self.mismatched = reference, shape, mismatched


def _total_memory():
    """Bytes of physical memory of this machine, or None where unknown."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):  # e.g. Windows
        return None


def _fmt_bytes(n):
    for unit, size in (("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n:,} bytes"


def _check_memory(n, shape, reference):
    """Refuse, before allocating it, a pixel array larger than the memory."""
    need = n * int(np.prod(shape))
    total = _total_memory()
    if total is not None and need > total:
        raise MemoryError(
            f"{n:,} images of {fmt_shape(shape)} pixels (the size of the first, "
            f"{reference}) take {_fmt_bytes(need)} of memory, more than this "
            f"machine has ({_fmt_bytes(total)}). Pass size=(height, width) to "
            "resize every image to a smaller size as it is decoded, or load fewer "
            "at a time (iter_image_folder with a smaller batch_size)."
        )


class Decoded(NamedTuple):
    """One batch: ``images`` (kept rows, ``(n_kept, *shape)`` uint8; None
    when no file of the batch could be read and no shape is known yet),
    ``keep`` (a boolean mask over the batch's files, None when all were
    kept), ``skipped`` ``(path, reason)`` of unreadable files and
    ``mismatched`` ``(path, shape)`` of images of another shape."""

    images: np.ndarray | None
    keep: np.ndarray | None
    skipped: list
    mismatched: list


class BatchDecoder:
    """Decodes batches of image files into rows of one shape.

    Parameters
    ----------
    mode, size, resize
        As :func:`load_image_folder` takes them.
    on_error, on_mismatch : {"raise", "skip"}
        What to do with an unreadable file and with an image whose shape is
        not the one every image must have: raise (an
        :class:`ImageDecodeError`, an :class:`ImageSizeMismatch`) for the first
        such file in order, or leave it out and report it.
    n_jobs : int or None
        Decoding processes (joblib's convention).
    shape : tuple, optional
        The shape every image must have; by default the first readable
        image's.  ``reference`` names where it came from, for messages.
    where : str, optional
        What the files are (a folder), for the mismatch message.
    check_first : callable, optional
        ``check_first(shape, path)`` is called when the first readable image
        sets the shape, before the rest of its batch is decoded: it raises to
        refuse that shape (a model fitted on other images).
    store : optional
        Where the files are (see :mod:`._store`); by default the local disk.
    """

    def __init__(
        self,
        *,
        mode,
        size,
        resize,
        on_error,
        on_mismatch="raise",
        n_jobs=None,
        shape=None,
        reference=None,
        where=None,
        check_first=None,
        store=None,
    ):
        for name, value in (("on_error", on_error), ("on_mismatch", on_mismatch)):
            if value not in POLICIES:
                raise ValueError(f"{name} must be one of {POLICIES}; got {value!r}.")
        self.mode, self.size, self.resize = mode, size, resize
        self.on_error, self.on_mismatch, self.n_jobs = on_error, on_mismatch, n_jobs
        self.shape = None if shape is None else tuple(shape)
        self.reference, self.where = reference, where
        self.check_first = check_first
        self.store = store

    def decode(self, paths, progress=None, sizes=None):
        """Decode ``paths`` (a list of file names; with a store, their listed
        ``sizes`` too); return :class:`Decoded`."""
        stop = self.on_error == "raise"
        first = None
        if self.shape is None:
            first = first_image(
                paths, self.mode, self.size, self.resize, stop, self.store, sizes
            )
            if first[0] is None:  # nothing readable here: no shape yet
                skipped = [(paths[i], reason) for i, reason in first[1]]
                return Decoded(None, np.zeros(len(paths), bool), skipped, [])
            reference = paths[len(first[1])]
            if self.check_first is not None:
                self.check_first(first[0].shape, reference)
            self.shape, self.reference = first[0].shape, reference
        _check_memory(len(paths), self.shape, self.reference)
        out, errors, mismatched = decode_files(
            paths,
            mode=self.mode,
            size=self.size,
            resize=self.resize,
            shape=self.shape,
            stop_on_error=stop,
            n_jobs=self.n_jobs,
            progress=progress,
            first=first,
            store=self.store,
            sizes=sizes,
        )
        self._apply_policies(paths, errors, mismatched)
        if not errors and not mismatched:
            return Decoded(out, None, [], [])
        keep = np.ones(len(paths), dtype=bool)
        keep[[i for i, _ in errors]] = False
        keep[[i for i, _ in mismatched]] = False
        return Decoded(
            out[keep],
            keep,
            [(paths[i], reason) for i, reason in errors],
            [(paths[i], shape) for i, shape in mismatched],
        )

    def _apply_policies(self, paths, errors, mismatched):
        """Raise for the first file, in order, whose policy is "raise"."""
        first_error = errors[0][0] if errors and self.on_error == "raise" else None
        if mismatched and self.on_mismatch == "raise":
            if first_error is None or mismatched[0][0] < first_error:
                self._raise_mismatch(paths, mismatched)
        if first_error is not None:
            raise ImageDecodeError(paths[first_error], errors[0][1])

    def _raise_mismatch(self, paths, mismatched):
        shown = "; ".join(f"{paths[i]} is {fmt_shape(s)}" for i, s in mismatched[:5])
        more = f" (and {len(mismatched) - 5} more)" if len(mismatched) > 5 else ""
        where = f" in {self.where!r}" if self.where is not None else ""
        raise ImageSizeMismatch(
            f"The images{where} do not all have the same size: the first, "
            f"{self.reference}, is {fmt_shape(self.shape)}, but {len(mismatched)} "
            f"differ: {shown}{more}. Pass size=(height, width) (on the command "
            "line: --size HxW) to resize every image to one size, adding "
            "resize='crop' (--resize crop) to keep their aspect ratio, or remove "
            "the odd files.",
            self.reference,
            self.shape,
            [(paths[i], s) for i, s in mismatched],
        )
