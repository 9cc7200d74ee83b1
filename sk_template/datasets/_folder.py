"""Image folders into ``X`` / ``y``: discover, decode, cache, and return a Bunch."""

import numbers
import os
import warnings

import numpy as np

from . import _cache
from ._batches import BatchDecoder, fmt_shape
from ._decode import RESIZE_POLICIES
from ._discover import discover, list_class_names, normalize_extensions
from ._errors import CacheWarning, ImageDecodeError, SkippedImagesWarning
from ._progress import Progress
from ._store import LOCAL, open_store

__all__ = ["iter_image_folder", "list_classes", "load_image_folder"]

_MODES = (None, "L", "RGB", "RGBA")
_DTYPES = (np.dtype(np.uint8), np.dtype(np.float32), np.dtype(np.float64))
_SHOWN_SKIPPED = 10


def check_pixel_options(mode, size, resize):
    """Validate the options that decide the pixels; return ``size`` as a tuple.

    ``mode``, ``size`` and ``resize`` of :func:`load_image_folder`, checked
    once here for the loaders and for the model files that record them.
    """
    if mode not in _MODES:
        raise ValueError(
            f"mode must be one of 'L', 'RGB', 'RGBA' or None; got {mode!r}."
        )
    if size is not None:
        ok = (
            isinstance(size, tuple | list)
            and len(size) == 2
            and all(
                isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0
                for s in size
            )
        )
        if not ok:
            raise ValueError(
                f"size must be None or a pair of positive ints (height, width); "
                f"got {size!r}."
            )
        size = (int(size[0]), int(size[1]))
    if not isinstance(resize, str) or resize not in RESIZE_POLICIES:
        raise ValueError(
            "resize must be 'stretch' (scale to size, aspect ratio not kept) or "
            f"'crop' (scale the shorter side, then crop the centre); got {resize!r}."
        )
    return size


def _check_options(mode, dtype, size, on_error, resize):
    size = check_pixel_options(mode, size, resize)
    try:
        # np.dtype(None) is float64: refuse None rather than guess.
        dtype = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dtype = None
    if dtype is None or dtype not in _DTYPES:
        raise ValueError(
            "dtype must be 'uint8' (pixels 0..255), 'float32' or 'float64' (pixels "
            f"scaled to [0, 1]); got {dtype!r}."
        )
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip'; got {on_error!r}.")
    return dtype, size


def _random_permutation(n, random_state):
    # sklearn is imported here, not at module level: joblib's decoding workers
    # import this package, and should not pay for importing sklearn.
    from sklearn.utils import check_random_state

    return check_random_state(random_state).permutation(n)


def _to_dtype(u8, dtype):
    if dtype == np.uint8:
        return u8
    # Same float arithmetic as torch's ``t.float() / 255``.
    return np.divide(u8, dtype.type(255), dtype=dtype)


def _warn_skipped(skipped, stacklevel=3):
    shown = "; ".join(f"{p} ({r})" for p, r in skipped[:_SHOWN_SKIPPED])
    more = (
        f"; and {len(skipped) - _SHOWN_SKIPPED} more"
        if len(skipped) > _SHOWN_SKIPPED
        else ""
    )
    warnings.warn(
        f"Skipped {len(skipped)} unreadable image file(s): {shown}{more}.",
        SkippedImagesWarning,
        stacklevel=stacklevel,
    )


def _special_files(listing, on_error):
    """The listed entries that are not regular files (FIFOs, devices), as
    skipped files; the first one is an :class:`ImageDecodeError` under
    ``on_error="raise"``.  They are never opened: opening a FIFO blocks.
    (Only local folders have them.)"""
    special = [(os.path.join(listing.base, r), why) for r, why in listing.special]
    if special and on_error == "raise":
        raise ImageDecodeError(*special[0])
    return special


def _describe(where, split, target_names, counts, shape, mode, dtype):
    per_class = ", ".join(
        f"{name!s}: {c}" for name, c in zip(target_names, counts, strict=True)
    )
    return (
        f"Image folder {where!r}{f' (split {split!r})' if split else ''}\n"
        f"{'=' * 40}\n\n"
        f"Samples: {sum(counts)}\n"
        f"Classes: {len(target_names)} ({per_class})\n"
        f"Image shape: {fmt_shape(shape)} (mode {mode!r})\n"
        f"Features: {int(np.prod(shape))}, dtype {np.dtype(dtype).name}"
        f"{' scaled to [0, 1]' if np.dtype(dtype).kind == 'f' else ''}\n\n"
        "Loaded by sk_template.datasets.load_image_folder: labels are the class "
        "folder names, rows are in class then natural file order unless "
        "shuffled.\n"
    )


def load_image_folder(
    root,
    *,
    split=None,
    classes=None,
    mode="L",
    dtype="uint8",
    size=None,
    resize="stretch",
    shuffle=False,
    random_state=None,
    return_X_y=False,
    on_error="raise",
    allow_empty=False,
    extensions=None,
    cache=True,
    data_home=None,
    mmap=False,
    n_jobs=None,
    verbose=None,
    storage_options=None,
):
    """Load a folder of images, one sub-folder per class, as ``X`` and ``y``.

    The folder is ``root/<class>/<image>``, or ``root/<split>/<class>/<image>``
    with ``split`` naming the split (``"train"``, ``"valid"``, ...). Images in
    folders nested inside a class folder belong to that class. Hidden files and
    folders (names starting with "."), ``__MACOSX`` folders and files that are
    not images (by extension, case-insensitive) are ignored, so a
    ``labels.csv`` or ``.DS_Store`` never becomes a class or a sample.

    The decoded pixels are cached on disk under ``data_home``; the cache is
    keyed by the loading options and checked against every file's path, size,
    modification time, inode and change time (as git's index is), so any
    change to the folder rebuilds it, even a same-size rewrite whose
    modification time was put back (``cp -p``, ``rsync -t``, ``tar x``). The
    cache's own folder, ``image_folder_cache``, is never taken for a class.

    A folder in a bucket (``root`` a URL) is loaded the same way: it is listed
    once, its files are read with bounded concurrency, and the cache is
    checked against what the store lists for each file (size, ETag or version,
    modified time), so a replaced object is never served from it. Object
    "folder" markers (keys ending in "/") are folders; keys with an empty or
    hidden segment are skipped; an object that changes while the folder is
    read is a bad file.

    Files from anyone: an entry named like an image that is not a regular file
    (a FIFO, a device, a socket) is never opened, and is a bad file. An image
    larger than ``PIL.Image.MAX_IMAGE_PIXELS`` (Pillow's guard against
    decompression bombs, about 89 million pixels) is decoded with Pillow's
    ``DecompressionBombWarning``; one over twice that is a bad file, refused
    from its header before any pixel is decoded. Raise the limit (or set it
    to None) to load larger images; a file larger than any image within it
    can be is a bad file, never read. A load whose pixels would not fit in
    the machine's memory is refused before anything is allocated.

    Parameters
    ----------
    root : str or path-like
        The folder holding the class folders, or the split folders: a path,
        or a URL of any fsspec file system (``s3://bucket/prefix``,
        ``gs://bucket/prefix``, ``memory://name``, ``file://...``; see
        ``storage_options``).
    split : str, default=None
        Name of the split folder to load when ``root`` holds splits. Required
        then; the error lists the splits found.
    classes : list of str or int, default=None
        The classes to load, in the order of ``target_names``: folder names, or
        labels when the folder names are integers. ``None`` loads every class
        folder, integer names in numeric order and other names in natural
        order ("img2" before "img10").
    mode : {"L", "RGB", "RGBA"} or None, default="L"
        Pixel format: grayscale, colour, or colour with alpha, converted as
        Pillow's ``Image.convert`` does (alpha is dropped, not composited).
        ``None`` keeps the stored format ("L", "LA", "RGB" or "RGBA"; palette
        images become "RGB" or "RGBA"). Samples of 16-bit images keep their
        high byte.
    dtype : {"uint8", "float32", "float64"}, default="uint8"
        ``uint8`` keeps pixels 0..255; a float type scales them to [0, 1]
        (``pixel / 255``), as the fastai book does.
    size : tuple of int (height, width), default=None
        Resize every image of another size to this one, as ``resize`` says.
        ``None`` requires every image to have one size: an error lists a few
        files that differ. The filter is Pillow's antialiased bilinear (as
        torchvision's ``Resize``): JPEGs larger than ``size`` are first
        decoded at 1/2, 1/4 or 1/8 scale by libjpeg (``Image.draft``), never
        below ``size``, so the filter bridges less than a factor of two, where
        it is as good as bicubic and faster. Images already of this size are
        not resampled.
    resize : {"stretch", "crop"}, default="stretch"
        How an image of another aspect ratio fits ``size``: ``"stretch"``
        scales it to ``size`` (circles become ellipses); ``"crop"`` keeps its
        aspect ratio, scaling the shorter side to fit and cutting the centre
        out of the longer one, as torchvision's ``Resize`` followed by
        ``CenterCrop`` does (timm's "center" crop). Use ``"crop"`` for photos.
    shuffle : bool, default=False
        Shuffle the samples. Without it, rows follow the classes and, inside a
        class, the natural order of the file paths ("2.png" before "10.png").
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.
    on_error : {"raise", "skip"}, default="raise"
        What to do with a file that cannot be decoded (empty, truncated,
        corrupt, not an image, over twice ``PIL.Image.MAX_IMAGE_PIXELS``, not
        a regular file): raise :class:`ImageDecodeError` naming it, or leave
        it out and issue one :class:`SkippedImagesWarning` listing every such
        file.
    allow_empty : bool, default=False
        Skip class folders that contain no images instead of raising.
    extensions : list of str, default=None
        File extensions to treat as images. ``None`` means png, jpg, jpeg, bmp,
        gif, tif, tiff, webp, pgm and ppm.
    cache : bool, default=True
        Read and write the cache of decoded pixels.
    data_home : str or path-like, default=None
        Folder of the cache; see :func:`get_data_home` (argument, else the
        ``SK_TEMPLATE_DATA`` environment variable, else ``~/sk_template_data``).
    mmap : bool, default=False
        Return ``data`` as a read-only memory map of the cache file instead of
        an array in memory. Requires ``cache=True``, ``dtype="uint8"`` and
        ``shuffle=False``.
    n_jobs : int, default=None
        Number of joblib workers decoding the files. ``None`` means 1 unless in
        a :func:`joblib.parallel_config` context; ``-1`` means all processors.
        Small folders are always decoded in one process. The result does not
        depend on it.
    verbose : bool or None, default=None
        Show a progress bar (tqdm's; a widget in a notebook) once decoding has
        taken a second. ``None`` shows it on a terminal or in a notebook but
        not in a log file or a pipe, ``True`` shows it everywhere, ``False``
        never.
    storage_options : dict, default=None
        Options for the fsspec file system of a URL ``root`` (credentials, an
        endpoint, ``anon=True``, ...), as pandas and dask take them. ``s3://``
        needs s3fs and ``gs://`` gcsfs (``pip install sk_template[cloud]``).

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object, with the following attributes.

        data : ndarray of shape (n_samples, n_features)
            One flattened image per row: ``n_features`` is ``h * w`` (times
            the number of channels in colour modes).
        target : ndarray of shape (n_samples,)
            The label of each image: ints when every class folder name is an
            integer, strings otherwise.
        target_names : ndarray of shape (n_classes,)
            The labels of the classes, in order.
        images : ndarray of shape (n_samples, h, w) or (n_samples, h, w, c)
            The same pixels as ``data`` (a view of the same memory).
        filenames : ndarray of shape (n_samples,)
            The path of each image file.
        DESCR : str
            A description of what was loaded.

    (data, target) : tuple if ``return_X_y`` is True

    Raises
    ------
    FileNotFoundError
        ``root`` does not exist.
    PermissionError
        The store of a URL ``root`` refused the credentials; the message
        names the bucket.
    NotADirectoryError
        ``root`` is a file.
    ImageDecodeError
        A file cannot be decoded and ``on_error="raise"``.
    ValueError
        No classes or images found, a class folder without images, a split
        that does not exist (or is needed), images of different sizes, or an
        invalid parameter.
    MemoryError
        The decoded pixels would take more than the machine's memory (say,
        thousands of photos at full size); the error says how much, and that
        ``size=`` resizes.

    See Also
    --------
    iter_image_folder : The same images in batches, for data larger than memory.
    list_classes : The class labels of a folder, without loading it.
    write_image_folder : Write arrays out as such a folder.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_template.datasets import load_image_folder, write_image_folder
    >>> tmp = tempfile.TemporaryDirectory()
    >>> rng = np.random.default_rng(0)
    >>> images = rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8)
    >>> root = write_image_folder(images, [3, 7, 3, 7, 3, 7], tmp.name + "/digits")
    >>> bunch = load_image_folder(root, data_home=tmp.name + "/cache")
    >>> bunch.data.shape, bunch.images.shape
    ((6, 16), (6, 4, 4))
    >>> bunch.target
    array([3, 3, 3, 7, 7, 7])
    >>> bunch.target_names
    array([3, 7])
    >>> X, y = load_image_folder(root, dtype="float32", cache=False, return_X_y=True)
    >>> float(X.max()) <= 1.0
    True
    >>> tmp.cleanup()
    """
    dtype, size = _check_options(mode, dtype, size, on_error, resize)
    if mmap and not cache:
        raise ValueError("mmap=True maps the cache file into memory; set cache=True.")
    if mmap and dtype != np.uint8:
        raise ValueError(
            "mmap=True maps the cached uint8 pixels; use dtype='uint8' and scale "
            "them in your pipeline (e.g. FunctionTransformer(lambda X: X / 255))."
        )
    if mmap and shuffle:
        raise ValueError(
            "shuffle=True would copy the memory-mapped data into memory; use "
            "shuffle=False and shuffle indices yourself (e.g. KFold(shuffle=True))."
        )
    store, root = open_store(root, storage_options)
    listing = discover(
        root,
        split=split,
        classes=classes,
        allow_empty=allow_empty,
        extensions=extensions,
        stat=cache,
        store=store,
    )
    base = listing.base
    where = store.display(base)
    prefix = where + store.sep
    special = _special_files(listing, on_error)
    cached = entry = fingerprint = None
    if cache:
        options = {
            "split": split,
            "classes": None if classes is None else [str(c) for c in classes],
            "mode": mode,
            "size": size,
            "resize": resize,
            "on_error": on_error,
            "allow_empty": allow_empty,
            "extensions": sorted(normalize_extensions(extensions)),
        }
        try:
            entry = _cache.cache_dir(
                data_home, _cache.cache_key(store.identity(base), options)
            )
        except OSError as exc:
            if mmap or isinstance(exc, NotADirectoryError):
                raise
            # e.g. a read-only home folder: load without the cache.
            warnings.warn(
                f"The image cache is unavailable ({exc}); loading without it. "
                "Pass data_home= a writable folder, or cache=False.",
                CacheWarning,
                stacklevel=2,
            )
            cache = False
        else:
            fingerprint = listing.fingerprint()
            cached = _cache.read(entry, fingerprint, mmap=mmap)

    if cached is not None:
        data, codes, relpaths, meta = cached
        target_names = np.asarray(meta["target_names"])
        shape = tuple(meta["image_shape"])
        skipped = [(prefix + p, r) for p, r in meta["skipped"]]
    else:
        relpaths, codes = listing.ordered()
        target_names = listing.target_names
        paths = [prefix + p for p in relpaths]
        if not paths:  # every file is special
            raise ValueError(
                f"None of the {len(special)} image files in {where!r} could be "
                f"read; the first is {special[0][0]} ({special[0][1]})."
            )
        decoder = BatchDecoder(
            mode=mode,
            size=size,
            resize=resize,
            on_error=on_error,
            n_jobs=n_jobs,
            where=where,
            store=store,
        )
        progress = Progress(len(paths), "Decoding images", verbose=verbose)
        try:
            u8, keep, skipped, _ = decoder.decode(paths, progress, store.sizes(paths))
        finally:  # an error or Ctrl-C must not leave the bar drawn
            progress.close()
        if u8 is None:
            raise ValueError(
                f"None of the {len(paths)} image files in {where!r} could be "
                f"read; the first is {paths[0]} ({skipped[0][1]})."
            )
        shape = decoder.shape
        skipped = special + skipped
        if keep is not None:
            codes = codes[keep]
            relpaths = [p for p, k in zip(relpaths, keep, strict=True) if k]
        data = u8.reshape(len(u8), -1)
        relpaths = np.asarray(relpaths, dtype=str)
        if cache:
            meta = {
                "root": where,
                "local": store is LOCAL,
                "fingerprint": fingerprint,
                "n_samples": len(data),
                "image_shape": list(shape),
                "target_names": list(target_names),
                "skipped": [(p[len(prefix) :], r) for p, r in skipped],
            }
            written = _cache.write(entry, data, codes, relpaths, meta)
            if mmap:
                if not written:
                    raise OSError(
                        f"mmap=True needs the cache, which could not be written to "
                        f"{str(entry)!r}; see the warning above."
                    )
                cached = _cache.read(entry, fingerprint, mmap=True)
                if cached is None:  # replaced by another process meanwhile
                    raise OSError(
                        f"The cache {str(entry)!r} changed while it was being "
                        "written; load again."
                    )
                data = cached[0]
    if skipped:
        _warn_skipped(skipped)

    target = target_names[codes]
    filenames = np.char.add(prefix, relpaths)
    if shuffle:
        order = _random_permutation(len(target), random_state)
        data, target, filenames = data[order], target[order], filenames[order]
    data = _to_dtype(data, dtype)
    if return_X_y:
        return data, target
    from sklearn.utils import Bunch  # see _random_permutation

    counts = np.bincount(codes, minlength=len(target_names))
    return Bunch(
        data=data,
        target=target,
        target_names=target_names,
        images=data.reshape(len(data), *shape),
        filenames=filenames,
        DESCR=_describe(where, split, target_names, counts, shape, mode, dtype),
    )


def iter_image_folder(
    root,
    *,
    split=None,
    batch_size=1024,
    classes=None,
    mode="L",
    dtype="uint8",
    size=None,
    resize="stretch",
    shuffle=False,
    random_state=None,
    on_error="raise",
    allow_empty=False,
    extensions=None,
    n_jobs=None,
    storage_options=None,
):
    """Yield an image folder in ``(X_batch, y_batch)`` batches, for big data.

    Finds and decodes the files exactly as :func:`load_image_folder` does,
    without loading them all at once and without the cache: concatenating the
    batches gives the ``data`` and ``target`` that :func:`load_image_folder`
    returns with the same arguments (shuffled the same way too, as long as no
    file is skipped). The classes are fixed before the first batch, so the
    batches can feed ``partial_fit(X, y, classes=...)``.

    Parameters
    ----------
    root : str or path-like
        The folder holding the class folders, or the split folders: a path,
        or a URL of any fsspec file system (``s3://bucket/prefix``,
        ``gs://bucket/prefix``, ``memory://name``, ``file://...``; see
        ``storage_options``).
    split : str, default=None
        Name of the split folder to load when ``root`` holds splits.
    batch_size : int, default=1024
        Number of images per batch; the last batch may be smaller.
    classes : list of str or int, default=None
        The classes to load, as in :func:`load_image_folder`. Pass the result
        of :func:`list_classes` to ``partial_fit`` as the full class list.
    mode : {"L", "RGB", "RGBA"} or None, default="L"
        Pixel format, as in :func:`load_image_folder`.
    dtype : {"uint8", "float32", "float64"}, default="uint8"
        Pixel type; float types are scaled to [0, 1].
    size : tuple of int (height, width), default=None
        Resize every image of another size to this one.
    resize : {"stretch", "crop"}, default="stretch"
        Stretch images of another aspect ratio to ``size``, or scale their
        shorter side and crop the centre, as in :func:`load_image_folder`.
    shuffle : bool, default=False
        Shuffle the files (across classes) before batching.
    random_state : int, RandomState instance or None, default=None
        Seeds the shuffle.
    on_error : {"raise", "skip"}, default="raise"
        Raise :class:`ImageDecodeError` on an unreadable file, or skip it; the
        skipped files are listed in one :class:`SkippedImagesWarning` after
        the last batch.
    allow_empty : bool, default=False
        Skip class folders that contain no images instead of raising.
    extensions : list of str, default=None
        File extensions to treat as images, as in :func:`load_image_folder`.
    n_jobs : int, default=None
        Number of joblib workers decoding each batch.
    storage_options : dict, default=None
        Options for the fsspec file system of a URL ``root`` (credentials, an
        endpoint, ``anon=True``, ...), as pandas and dask take them. ``s3://``
        needs s3fs and ``gs://`` gcsfs (``pip install sk_template[cloud]``).

    Yields
    ------
    X_batch : ndarray of shape (n_batch, n_features)
        Flattened images.
    y_batch : ndarray of shape (n_batch,)
        Their labels.

    See Also
    --------
    load_image_folder : Load the whole folder at once, with a cache.
    list_classes : The class labels of a folder.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sk_template.datasets import (
    ...     iter_image_folder, list_classes, write_image_folder)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> images = np.zeros((5, 2, 3), dtype=np.uint8)
    >>> root = write_image_folder(images, ["a", "b", "a", "b", "a"], tmp.name + "/ab")
    >>> list_classes(root)
    array(['a', 'b'], dtype='<U1')
    >>> for X, y in iter_image_folder(root, batch_size=2):
    ...     print(X.shape, y)
    (2, 6) ['a' 'a']
    (2, 6) ['a' 'b']
    (1, 6) ['b']
    >>> tmp.cleanup()
    """
    dtype, size = _check_options(mode, dtype, size, on_error, resize)
    if (
        not isinstance(batch_size, numbers.Integral)
        or isinstance(batch_size, bool)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
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
    return _iter_batches(
        store,
        listing,
        batch_size,
        (mode, size, resize),
        dtype,
        shuffle,
        random_state,
        on_error,
        n_jobs,
    )


def _iter_batches(
    store, listing, batch_size, pixels, dtype, shuffle, random_state, on_error, n_jobs
):
    mode, size, resize = pixels
    where = store.display(listing.base)
    relpaths, codes = listing.ordered()
    paths = [where + store.sep + p for p in relpaths]
    if shuffle:
        order = _random_permutation(len(paths), random_state)
        paths = [paths[i] for i in order]
        codes = codes[order]
    sizes = store.sizes(paths)
    target = listing.target_names[codes]
    decoder = BatchDecoder(
        mode=mode,
        size=size,
        resize=resize,
        on_error=on_error,
        n_jobs=n_jobs,
        where=where,
        store=store,
    )
    all_skipped = _special_files(listing, on_error)
    for a in range(0, len(paths), batch_size):
        batch_sizes = None if sizes is None else sizes[a : a + batch_size]
        u8, keep, skipped, _ = decoder.decode(
            paths[a : a + batch_size], sizes=batch_sizes
        )
        all_skipped.extend(skipped)
        y = target[a : a + batch_size]
        if keep is not None:
            y = y[keep]
        if len(y):
            yield _to_dtype(u8.reshape(len(u8), -1), dtype), y
    if all_skipped:
        _warn_skipped(all_skipped, stacklevel=2)


def list_classes(root, *, split=None, extensions=None, storage_options=None):
    """Return the class labels of an image folder, in load order.

    The same labels, in the same order, as the ``target_names`` that
    :func:`load_image_folder` returns for the whole folder (as long as no
    class folder is empty): pass them to ``partial_fit(X, y, classes=...)``
    when streaming with :func:`iter_image_folder`.

    Parameters
    ----------
    root : str or path-like
        The folder holding the class folders, or the split folders: a path,
        or a URL of any fsspec file system (``s3://bucket/prefix``,
        ``gs://bucket/prefix``, ``memory://name``, ``file://...``; see
        ``storage_options``).
    split : str, default=None
        Name of the split folder when ``root`` holds splits.
    extensions : list of str, default=None
        File extensions to treat as images (used to tell class folders from
        split folders).
    storage_options : dict, default=None
        Options for the fsspec file system of a URL ``root`` (credentials, an
        endpoint, ``anon=True``, ...), as pandas and dask take them. ``s3://``
        needs s3fs and ``gs://`` gcsfs (``pip install sk_template[cloud]``).

    Returns
    -------
    classes : ndarray of shape (n_classes,)
        Ints when every class folder name is an integer, else strings.

    Examples
    --------
    >>> import os, tempfile
    >>> from sk_template.datasets import list_classes
    >>> tmp = tempfile.TemporaryDirectory()
    >>> for name in ["10", "2", "7"]:
    ...     os.makedirs(os.path.join(tmp.name, name))
    >>> list_classes(tmp.name)
    array([ 2,  7, 10])
    >>> tmp.cleanup()
    """
    store, root = open_store(root, storage_options)
    return list_class_names(root, split=split, extensions=extensions, store=store)
