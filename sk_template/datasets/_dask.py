"""An image folder as dask arrays whose blocks decode their own files."""

import logging
import math
import numbers
import warnings

import numpy as np

from ._batches import BatchDecoder
from ._decode import first_image
from ._discover import discover
from ._errors import ImageDecodeError, SkippedImagesWarning
from ._folder import _check_options, _special_files, _to_dtype
from ._store import open_store

__all__ = ["image_folder_to_dask"]

# Where the blocks say which files they left out: a worker's warnings are
# shown once per place in the code, and only in its own output, while a
# logger reports each block, in the logs dask collects (get_worker_logs).
logger = logging.getLogger("sk_template.datasets")

# Most files one block decodes, whatever their size: enough blocks for every
# worker of a cluster, and little to decode again when a worker is lost.
MAX_BLOCK_FILES = 4096


def _block_rows(chunk_size, row_bytes):
    """Files per block: ``chunk_size``, or for ``"auto"`` as many as fit in
    dask's ``array.chunk-size`` (128 MiB by default), at most
    :data:`MAX_BLOCK_FILES`."""
    if isinstance(chunk_size, str) and chunk_size == "auto":
        import dask
        from dask.utils import parse_bytes

        limit = parse_bytes(dask.config.get("array.chunk-size"))
        return max(1, min(MAX_BLOCK_FILES, limit // max(row_bytes, 1)))
    if (
        isinstance(chunk_size, numbers.Integral)
        and not isinstance(chunk_size, bool)
        and chunk_size >= 1
    ):
        return int(chunk_size)
    raise ValueError(
        f"chunk_size must be a positive int (images per block) or 'auto'; got "
        f"{chunk_size!r}."
    )


def _decode_block(store, paths, sizes, labels, pixels, shape, on_error, dtype):
    """One block: the rows of ``paths``, decoded where the task runs.

    With ``on_error="skip"``, the rows of unreadable files are left out (and
    logged, see ``logger``) and the block's labels are returned with its rows.
    """
    mode, size, resize = pixels
    decoder = BatchDecoder(
        mode=mode,
        size=size,
        resize=resize,
        on_error=on_error,
        shape=shape,
        reference="the first image",
        store=store,
    )
    u8, keep, skipped, _ = decoder.decode(list(paths), sizes=sizes)
    X = _to_dtype(u8.reshape(len(u8), -1), np.dtype(dtype))
    if on_error == "raise":
        return X
    if skipped:
        logger.warning(
            "Skipped %d unreadable image file(s) of a block: %s",
            len(skipped),
            "; ".join(f"{p} ({r})" for p, r in skipped),
        )
    return X, labels if keep is None else labels[keep]


def image_folder_to_dask(
    root,
    *,
    split=None,
    classes=None,
    mode="L",
    dtype="uint8",
    size=None,
    resize="stretch",
    chunk_size="auto",
    on_error="raise",
    allow_empty=False,
    extensions=None,
    storage_options=None,
):
    """An image folder as dask arrays ``(X, y)`` decoded block by block where
    the blocks are computed.

    The folder is listed here, once, and the first image is decoded here to
    learn the image shape; every other file is read and decoded by the task of
    its block, on the workers of a ``dask.distributed`` cluster when one is
    active (from a local folder every worker can see, or from a URL such as
    ``s3://bucket/prefix``). Rows follow the order of
    :func:`load_image_folder` (classes, then the natural order of the files),
    and the pixels are the same. The arrays feed :func:`~sk_template.fit_dask`,
    the estimator's methods (which then return dask arrays too), dask-ml, and
    anything else that takes dask arrays.

    Parameters
    ----------
    root : str or path-like
        The folder holding the class folders, or the split folders: a path, or
        a URL of any fsspec file system (``s3://bucket/prefix``,
        ``gs://bucket/prefix``, ``file://...``; a ``memory://`` folder is
        seen by this process only, so by threads but not by worker processes).
    split : str, default=None
        Name of the split folder to load when ``root`` holds splits.
    classes : list of str or int, default=None
        The classes to load, as in :func:`load_image_folder`.
    mode : {"L", "RGB", "RGBA"} or None, default="L"
        Pixel format, as in :func:`load_image_folder`.
    dtype : {"uint8", "float32", "float64"}, default="uint8"
        Pixel type of ``X``; float types are scaled to [0, 1].
    size : tuple of int (height, width), default=None
        Resize every image of another size to this one. ``None`` requires
        every image to have the size of the first.
    resize : {"stretch", "crop"}, default="stretch"
        How ``size`` treats another aspect ratio, as in
        :func:`load_image_folder`.
    chunk_size : int or "auto", default="auto"
        Images per block. ``"auto"`` fills dask's ``array.chunk-size`` (128
        MiB of pixels unless configured), with at most 4,096 images a block.
        A worker holds about one block per thread at a time.
    on_error : {"raise", "skip"}, default="raise"
        What a block does with a file it cannot decode: raise
        :class:`ImageDecodeError` naming it (the computation fails), or leave
        its row out, logged as a warning by the ``sk_template.datasets``
        logger (in the worker's log). With ``"skip"`` the number of rows of a
        block is known only once it is computed: the chunk sizes along the
        rows are NaN, as those of dask arrays from data-dependent filters
        are, which :func:`~sk_template.fit_dask` and the estimator's methods
        accept; ``compute_chunk_sizes()`` makes them known (cheaply after
        ``persist``).
    allow_empty : bool, default=False
        Skip class folders that contain no images instead of raising.
    extensions : list of str, default=None
        File extensions to treat as images, as in :func:`load_image_folder`.
    storage_options : dict, default=None
        Options for the fsspec file system of a URL ``root`` (credentials, an
        endpoint, ``anon=True``), as pandas and dask take them. They travel
        with the tasks to the workers.

    Returns
    -------
    X : dask.array.Array of shape (n_samples, n_features)
        One flattened image per row, in blocks of ``chunk_size`` rows (one
        chunk along the columns).
    y : dask.array.Array of shape (n_samples,)
        The labels, chunked as the rows of ``X``: ints when every class folder
        name is an integer, strings otherwise. With ``on_error="raise"``
        computing ``y`` reads no image.

    Raises
    ------
    FileNotFoundError, NotADirectoryError, ValueError
        As :func:`load_image_folder` does, for the folder and the options,
        before anything is computed.
    ImageDecodeError
        The first image cannot be decoded (``on_error="raise"``), or no image
        can (``on_error="skip"``); later files raise when their block is
        computed.

    See Also
    --------
    load_image_folder : The whole folder in memory, with a cache.
    iter_image_folder : The folder in batches, in this process.
    sk_template.fit_dask : Fit on the blocks where they are.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_template import NearestMeanImageClassifier, fit_dask
    >>> from sk_template.datasets import image_folder_to_dask, write_image_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> images = np.repeat([[[10]], [[200]]], 4, axis=0).repeat(3, 1).repeat(3, 2)
    >>> root = write_image_folder(images.astype(np.uint8), [3, 3, 3, 3, 7, 7, 7, 7],
    ...                           tmp.name + "/digits")
    >>> X, y = image_folder_to_dask(root, chunk_size=3)
    >>> X
    dask.array<concatenate, shape=(8, 9), dtype=uint8, chunksize=(3, 9), ...>
    >>> X.chunks[0]
    (3, 3, 2)
    >>> clf = fit_dask(NearestMeanImageClassifier(), X, y)
    >>> clf.predict(X)
    dask.array<_apply_method, shape=(8,), dtype=int64, chunksize=(3,), ...>
    >>> clf.predict(X).compute()
    array([3, 3, 3, 3, 7, 7, 7, 7])
    >>> tmp.cleanup()
    """
    import dask
    import dask.array as da

    dtype, size = _check_options(mode, dtype, size, on_error, resize)
    store, root = open_store(root, storage_options)
    listing = discover(
        root,
        split=split,
        classes=classes,
        allow_empty=allow_empty,
        extensions=extensions,
        stat=False,
        store=store,
    )
    special = _special_files(listing, on_error)  # never opened
    where = store.display(listing.base)
    relpaths, codes = listing.ordered()
    paths = [where + store.sep + p for p in relpaths]
    sizes = store.sizes(paths)
    target = listing.target_names[codes]
    stop = on_error == "raise"
    pixels, errors = first_image(paths, mode, size, resize, stop, store, sizes)
    if pixels is None:
        first = (special + [(paths[i], r) for i, r in errors])[0]
        raise ImageDecodeError(
            first[0],
            f"{first[1]}; and none of the {len(paths)} image files in {where!r} "
            "could be read",
        )
    if special:
        warnings.warn(
            f"Left out {len(special)} file(s) that are not regular files: "
            + "; ".join(f"{p} ({r})" for p, r in special),
            SkippedImagesWarning,
            stacklevel=2,
        )
    shape = pixels.shape
    n_features = math.prod(shape)
    rows = _block_rows(chunk_size, n_features * dtype.itemsize)
    bounds = [(a, min(a + rows, len(paths))) for a in range(0, len(paths), rows)]
    # The store (with the storage options) is one key of the graph, sent to
    # each worker once, not once per block.
    store_key = dask.delayed(store, pure=True)
    decode = dask.delayed(_decode_block, pure=True)
    options = ((mode, size, resize), shape, on_error, dtype.str)
    blocks, labels = [], []
    for a, b in bounds:
        part = decode(
            store_key,
            paths[a:b],
            None if sizes is None else sizes[a:b],
            target[a:b],
            *options,
        )
        if stop:
            blocks.append(da.from_delayed(part, (b - a, n_features), dtype=dtype))
        else:
            blocks.append(da.from_delayed(part[0], (np.nan, n_features), dtype=dtype))
            labels.append(da.from_delayed(part[1], (np.nan,), dtype=target.dtype))
    X = da.concatenate(blocks, axis=0)
    if stop:
        y = da.from_array(target, chunks=(X.chunks[0],))
    else:
        y = da.concatenate(labels, axis=0)
    return X, y
