"""On-disk cache of decoded image folders, as plain ``.npy`` files.

One folder per (image folder, loading options) under
``<data_home>/image_folder_cache/<key>/``::

    data.npy       uint8 (n_samples, n_features), rows in load order
    target.npy     int32 (n_samples,), index into target_names
    filenames.npy  str (n_samples,), paths relative to the class folders' parent
    meta.json      format version, fingerprint of the files, shapes, labels

Each entry is written under a temporary name and renamed into place, so a
reader sees a whole entry or none. ``meta.json`` holds a fingerprint of every
file's path, size, mtime, ctime and inode: any change to the folder rebuilds
the entry, even a same-size rewrite with the old mtime put back. An
entry that cannot be read back exactly as its metadata describes is rebuilt
with a :class:`CacheWarning`, never trusted. Whenever an entry is written,
entries of image folders that no longer exist are deleted.
"""

import hashlib
import json
import os
import shutil
import time
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ._atomic import building_dir, is_temp_name, remove_abandoned
from ._decode import decoder_id
from ._errors import CacheWarning
from ._home import get_data_home

FORMAT_VERSION = 1
CACHE_DIRNAME = "image_folder_cache"
# Hidden folders that are not temporaries of this version (see _atomic) are
# removed after this many seconds.
STALE_TMP_SECONDS = 3600


def cache_dir(data_home, key):
    """The folder that holds (or will hold) the cache entry ``key``."""
    return Path(get_data_home(data_home)) / CACHE_DIRNAME / key


def cache_key(base, options):
    """Name of the cache folder for ``base`` loaded with ``options`` (a dict).

    Besides the options, the decoders (:func:`._decode.decoder_id`) and
    ``PIL.Image.MAX_IMAGE_PIXELS``, which decides which files are skipped (or
    refused): raising it never serves a cache that skipped the larger images.
    """
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "decoder": decoder_id(),
            "max_image_pixels": Image.MAX_IMAGE_PIXELS,
            "base": os.path.realpath(base),
            **options,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _json_labels(target_names):
    return [x.item() if isinstance(x, np.generic) else x for x in target_names]


def read(path, fingerprint, *, mmap=False):
    """Return the cached ``(data, codes, relpaths, meta)``, or None.

    None means: no cache, or a cache of other files (both silent), or an
    unreadable cache (with a :class:`CacheWarning`). ``data`` is a read-only
    memory map when ``mmap`` is true.
    """
    path = Path(path)
    remove_abandoned(path.parent)  # temporaries of writers that died
    meta_path = path / "meta.json"
    if not meta_path.exists():
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT_VERSION:
            return None  # written by another version: rebuild quietly
        if meta["fingerprint"] != fingerprint:
            return None  # the folder changed since
        n = int(meta["n_samples"])
        n_features = int(np.prod(meta["image_shape"]))
        data = np.load(
            path / "data.npy", mmap_mode="r" if mmap else None, allow_pickle=False
        )
        codes = np.load(path / "target.npy", allow_pickle=False)
        relpaths = np.load(path / "filenames.npy", allow_pickle=False)
        n_classes = len(meta["target_names"])
        if data.dtype != np.uint8 or data.shape != (n, n_features):
            raise ValueError(f"data.npy is {data.dtype} {data.shape}")
        if codes.shape != (n,) or codes.dtype.kind not in "iu":
            raise ValueError(f"target.npy is {codes.dtype} {codes.shape}")
        if n and (codes.min() < 0 or codes.max() >= n_classes):
            raise ValueError("target.npy holds class indices out of range")
        if relpaths.shape != (n,) or relpaths.dtype.kind != "U":
            raise ValueError(f"filenames.npy is {relpaths.dtype} {relpaths.shape}")
        if mmap and n:
            data[-1, -1]  # touch the end: a short file fails here, not later
    except Exception as exc:
        warnings.warn(
            f"The image cache in {str(path)!r} is unreadable ({type(exc).__name__}: "
            f"{exc}); decoding the images again and rewriting it.",
            CacheWarning,
            stacklevel=3,
        )
        return None
    return data, codes, relpaths, meta


def write(path, data, codes, relpaths, meta):
    """Write a cache entry atomically; on failure warn and return False."""
    path = Path(path)
    meta = {
        **meta,
        "format": FORMAT_VERSION,
        "target_names": _json_labels(meta["target_names"]),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with building_dir(path) as tmp:
            np.save(tmp / "data.npy", np.ascontiguousarray(data), allow_pickle=False)
            np.save(tmp / "target.npy", codes.astype(np.int32), allow_pickle=False)
            np.save(tmp / "filenames.npy", np.asarray(relpaths, dtype=str))
            (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        prune(path.parent)
    except OSError as exc:
        warnings.warn(
            f"Could not write the image cache to {str(path)!r} ({exc}); the images "
            "were loaded but will be decoded again next time.",
            CacheWarning,
            stacklevel=3,
        )
        return False
    return True


def prune(cache_root):
    """Delete entries whose image folder is gone, and abandoned temporary folders.

    Keeps the cache from filling up with entries of deleted (e.g. temporary)
    folders, and with the temporary folders of writers that died (removed as
    soon as their writer is gone, see :func:`._atomic.remove_abandoned`).
    Never raises: pruning is housekeeping.
    """
    remove_abandoned(cache_root)
    now = time.time()
    try:
        entries = list(os.scandir(cache_root))
    except OSError:
        return
    for entry in entries:
        try:
            if entry.name.startswith("."):
                if (
                    not is_temp_name(entry.name)
                    and now - entry.stat().st_mtime > STALE_TMP_SECONDS
                ):
                    shutil.rmtree(entry.path, ignore_errors=True)
                continue
            meta = json.loads(Path(entry.path, "meta.json").read_text("utf-8"))
            if not os.path.isdir(meta["root"]):
                shutil.rmtree(entry.path, ignore_errors=True)
        except (OSError, ValueError, KeyError, TypeError):
            continue
