"""On-disk cache of decoded image folders, as plain ``.npy`` files.

One folder per (image folder, loading options) under
``<data_home>/image_folder_cache/<key>/``::

    data.npy       uint8 (n_samples, n_features), rows in load order
    target.npy     int32 (n_samples,), index into target_names
    filenames.npy  str (n_samples,), paths relative to the class folders' parent
    meta.json      format version, fingerprint of the files, shapes, labels

Each entry is written under a temporary name and renamed into place, so a
reader sees a whole entry or none. ``meta.json`` holds a fingerprint of every
file's path, size, mtime, ctime and inode (for a folder in an object store:
path, size, ETag or version, modified time, as the store lists them): any
change to the folder rebuilds the entry, even a same-size rewrite with the
old mtime put back. It also
holds a CRC-32 of the contents of each array and one of the metadata
itself, verified on every read: an entry whose shapes, dtypes, class
indices or contents are not exactly what was written (a flipped byte in the
pixels, an edited file name, reordered ``target_names``) is rebuilt with a
:class:`CacheWarning`, never trusted. CRC-32 detects every error of up to 32
consecutive bits and all but 2**-32 of the others; it is a check against
damage, not against someone who can write to the cache (they can as well
write a consistent entry). Whenever an entry is written,
entries of image folders that no longer exist are deleted.
"""

import hashlib
import json
import os
import shutil
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from ._atomic import building_dir, is_temp_name, remove_abandoned
from ._decode import decoder_id
from ._errors import CacheWarning
from ._home import get_data_home

# 2: CRC-32 checksums of the arrays and the metadata.
FORMAT_VERSION = 2
CACHE_DIRNAME = "image_folder_cache"
# Hidden folders that are not temporaries of this version (see _atomic) are
# removed after this many seconds.
STALE_TMP_SECONDS = 3600


def cache_dir(data_home, key):
    """The folder that holds (or will hold) the cache entry ``key``."""
    return Path(get_data_home(data_home)) / CACHE_DIRNAME / key


def cache_key(identity, options):
    """Name of the cache folder for the folder ``identity`` names (its real
    path, or its URL: see ``identity`` in :mod:`._store`) loaded with
    ``options`` (a dict).

    Besides the options, the decoders (:func:`._decode.decoder_id`) and
    ``PIL.Image.MAX_IMAGE_PIXELS``, which decides which files are skipped (or
    refused): raising it never serves a cache that skipped the larger images.
    """
    blob = json.dumps(
        {
            "format": FORMAT_VERSION,
            "decoder": decoder_id(),
            "max_image_pixels": Image.MAX_IMAGE_PIXELS,
            "base": identity,
            **options,
        },
        sort_keys=True,
        default=str,
    )
    # json.dumps escapes the undecodable bytes of a path (os.fsdecode's lone
    # surrogates) as ASCII: the key is defined for every file name.
    return hashlib.blake2b(blob.encode(), digest_size=16).hexdigest()


def _json_labels(target_names):
    return [x.item() if isinstance(x, np.generic) else x for x in target_names]


def _crc(array):
    """CRC-32 of an array's bytes in memory (a memory map is read through).

    zlib's CRC-32 over the pixels takes about 24 ms for all of MNIST
    (55 MB, 2-core AMD EPYC), a tenth of the cached load, which is mostly
    a stat of every image; a cryptographic hash took 2-3 times as long for
    no gain against damage (see the module docstring)."""
    return zlib.crc32(np.ascontiguousarray(array).reshape(-1).view(np.uint8))


def _meta_crc(meta):
    """CRC-32 of the metadata, its own checksum left out."""
    rest = {k: v for k, v in meta.items() if k != "meta_crc32"}
    return zlib.crc32(json.dumps(rest, sort_keys=True).encode())


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
        if meta.get("meta_crc32") != _meta_crc(meta):
            raise ValueError("meta.json does not match its checksum")
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
        # (Also reads a memory-mapped file through: a short file fails here.)
        for name, array in (
            ("data.npy", data),
            ("target.npy", codes),
            ("filenames.npy", relpaths),
        ):
            if _crc(array) != meta["crc32"][name]:
                raise ValueError(f"{name} does not match its checksum")
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
    arrays = {
        "data.npy": np.ascontiguousarray(data),
        "target.npy": codes.astype(np.int32),
        "filenames.npy": np.asarray(relpaths, dtype=str),
    }
    meta["crc32"] = {name: _crc(array) for name, array in arrays.items()}
    meta["meta_crc32"] = _meta_crc(meta)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with building_dir(path) as tmp:
            for name, array in arrays.items():
                np.save(tmp / name, array, allow_pickle=False)
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
    Entries of folders elsewhere than on this disk (URLs) are kept: telling
    whether they are gone would take a request, and credentials. Never
    raises: pruning is housekeeping.
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
            if meta.get("local", True) and not os.path.isdir(meta["root"]):
                shutil.rmtree(entry.path, ignore_errors=True)
        except (OSError, ValueError, KeyError, TypeError):
            continue
