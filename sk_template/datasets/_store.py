"""Where image files live: the local disk or any fsspec file system.

:func:`open_store` turns the ``root`` a user passes (a path, or a URL such as
``s3://bucket/prefix``, ``gs://...``, ``memory://...``, ``file://...``, with
fsspec's ``storage_options``) into a *store* and the store's path of it. A
store does two things, and nothing else: it lists folders (what
:mod:`._discover` makes classes, splits and files of) and reads files (what
:mod:`._decode` decodes). Discovery, decoding, the bad-file rules and the
cache are one code path over both kinds of store.

Two kinds, because fsspec's ``LocalFileSystem`` is much slower than the
operating system for what a cached load does most: listing every file with
its stat (``fs.find(detail=True)`` took 2.9 times, ``fs.ls(detail=True)`` per
folder 2.3 times the ``os.scandir`` + ``stat`` floor on MNIST's 60,000 files,
where our listing takes 1.07 times; a cached load must stay within 1.6
times) and reading small files (``fs.cat_file`` took 22 us per MNIST file,
``os.open``/``readv`` 9 us, against 7 us of decoding). fsspec's local
listing also reports symbolic links as ``"other"`` and does not follow linked
folders. So a URL is always resolved by fsspec (``fsspec.core.url_to_fs``:
its protocols, its options), and when the file system it names is the local
one (``file://`` URLs, and plain paths without importing fsspec at all), the
listing and the reads are done by the operating system calls in
:mod:`._discover` and :mod:`._decode`:

* :class:`LocalStore`: ``os.scandir`` / ``os.stat(dir_fd=...)`` listings
  stamped with size, mtime, ctime and inode (links followed, loops refused,
  FIFOs and devices never opened), reads by ``os.open`` + ``os.readv``.
* :class:`FsspecStore`: every other file system. A folder is listed once,
  with one recursive ``fs.find(detail=True)`` (for S3: ``ListObjectsV2``
  pages of 1,000 keys, whatever the nesting), and each file is stamped with
  what the store reports (size, ETag or version id or generation, modified
  time), which is what the cache checks. Files are read with bounded
  concurrency (``fs.cat_ranges``, :data:`FETCH_CONCURRENCY` requests at a time
  on an async file system such as s3fs or gcsfs) and bounded memory (groups
  of at most :data:`FETCH_FILES` files and :data:`FETCH_BYTES` bytes, by the
  listed sizes).

Object stores hold keys, not folders; what the listing makes of them:

* a key ending in ``/`` (a "folder" marker made by consoles and tools) is a
  folder, and never a file;
* a key with an empty segment (``a//b.png``) or a segment starting with "."
  (``.hidden``, ``.``, ``..``) is skipped, as hidden files are on a disk;
* a key is read as listed, up to one byte more than its listed size (so an
  object replaced by a larger one is never read whole), and one whose bytes
  are not its listed size (replaced or changed during the load) is a bad file;
* an object larger than :func:`._decode.max_file_bytes` is a bad file,
  refused from the listing before any byte is read.
"""

import os
from pathlib import Path

import numpy as np

from . import _discover
from ._decode import max_file_bytes, read_files, too_large
from ._errors import ImageDecodeError

__all__ = ["FsspecStore", "LocalStore", "open_store"]

# Requests in flight at once, per process, on an async file system.
FETCH_CONCURRENCY = 32
# Files and listed bytes fetched per group: the memory a reader holds at once
# (besides one image larger than this, read alone).
FETCH_FILES = 256
FETCH_BYTES = 64 << 20

# What a store's listing reports about a file, besides its size, that changes
# when the file is replaced: the first is S3's and most stores', the others
# version ids (S3 with versioning, GCS generations, Azure) and checksums.
_VERSION_KEYS = (
    "ETag",
    "etag",
    "VersionId",
    "version_id",
    "generation",
    "md5Hash",
    "crc32c",
    "content_md5",
)
_MTIME_KEYS = (
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "modified",
    "created",
    "timeCreated",
    "creation_time",
)
# storage_options keys never written into a cache key (credentials).
_SECRET_WORDS = ("key", "secret", "token", "password", "credential", "session")


def _is_url(root):
    return isinstance(root, str) and "://" in root


def open_store(root, storage_options=None):
    """Return ``(store, path)``: the store that holds ``root`` and its path there.

    Plain paths (str or path-like) are local and need no fsspec. A URL is
    resolved by :func:`fsspec.core.url_to_fs` with ``storage_options``; the
    library of its protocol (s3fs for ``s3://``, gcsfs for ``gs://``) is
    imported then, and only then.
    """
    if storage_options is not None and not isinstance(storage_options, dict):
        raise TypeError(
            "storage_options must be a dict of options for fsspec (e.g. "
            f"{{'anon': True}}) or None; got {storage_options!r}."
        )
    if not _is_url(root):
        if storage_options:
            raise ValueError(
                "storage_options are passed to fsspec for URLs such as "
                f"'s3://bucket/prefix'; {root!r} is a local path. Leave "
                "storage_options out, or pass a URL."
            )
        try:
            path = Path(os.fspath(root)).expanduser()
        except TypeError:
            raise TypeError(
                "root must be a str or path-like naming a folder, or a URL such as "
                f"'s3://bucket/prefix'; got {root!r}."
            ) from None
        return LOCAL, path.absolute()
    try:
        import fsspec.core
    except ImportError:  # pragma: no cover - fsspec is a dependency
        raise ImportError(
            f"Reading {root!r} needs fsspec: pip install fsspec."
        ) from None
    try:
        fs, path = fsspec.core.url_to_fs(root, **(storage_options or {}))
    except ImportError as exc:
        raise ImportError(
            f"Reading {root!r} needs the fsspec library of its protocol ({exc}). "
            "Install the cloud extra: pip install 'sk_template[cloud]'."
        ) from exc
    except ValueError as exc:
        if "Protocol not known" in str(exc):
            raise ValueError(
                f"{root!r} is not a URL fsspec knows ({exc}). Use a path, or a URL "
                "such as s3://bucket/prefix, gs://bucket/prefix or memory://name."
            ) from None
        raise
    from fsspec.implementations.local import LocalFileSystem

    if isinstance(fs, LocalFileSystem):
        return LOCAL, Path(path).absolute()
    return FsspecStore(fs, root, path, storage_options), path.rstrip("/")


class LocalStore:
    """The local file system, listed and read with the operating system's
    calls (see the module docstring for why not through fsspec)."""

    sep = os.sep
    #: Joblib's worker processes see the same files.
    shareable = True

    def __reduce__(self):
        return _local_store, ()

    def display(self, path):
        return str(path)

    def join(self, path, name):
        return Path(path) / name

    def check_dir(self, path):
        _discover.check_root(path)

    def is_dir(self, path):
        return Path(path).is_dir()

    def subdirs(self, path):
        return [name for name, _ in _discover._subdirs(path)]

    def has_images(self, path, exts):
        return _discover._has_images(path, exts)

    def scan(self, class_dir, exts, with_stat):
        return _discover._scan_class(class_dir, exts, with_stat)

    def identity(self, path):
        """What names ``path`` in cache keys: the real path, links resolved."""
        return os.path.realpath(path)

    def sizes(self, paths):
        return None

    def read(self, paths, sizes=None):
        return read_files(paths)


def _local_store():
    return LOCAL


LOCAL = LocalStore()


def _stamp(info, keys):
    """The values of ``keys`` that ``info`` holds, as one string."""
    return ";".join(f"{k}={info[k]}" for k in keys if info.get(k) is not None)


class _Folder:
    """A folder of a store's listing: sub-folders by name, and files as
    ``name -> (size, version, mtime)``."""

    __slots__ = ("dirs", "files")

    def __init__(self):
        self.dirs, self.files = {}, {}


class _File:
    """A file of a store's listing, where a folder was asked for."""

    __slots__ = ("size",)

    def __init__(self, size):
        self.size = size


def _size(info):
    size = info.get("size")
    return -1 if size is None else int(size)


def _visible_parts(rel):
    """The segments of a key relative to the listed folder, or None when the
    key is skipped (an empty segment, or one starting with ".")."""
    parts = rel.split("/")
    for part in parts:
        if not part or part[0] == "." or part in _discover._IGNORED_DIRS:
            return None
    return parts


def _build_tree(path, entries):
    """The folder tree of ``path`` from ``fs.find(path, withdirs=True,
    detail=True)``; None when nothing is under ``path``, and a :class:`_File`
    when ``path`` is itself a file."""
    top, prefix = _Folder(), path + "/"
    found = False
    for name, info in entries.items():
        name = info.get("name", name) or name
        if name.rstrip("/") == path:
            if info.get("type") != "directory" and not name.endswith("/"):
                if len(entries) == 1:
                    return _File(_size(info))
            found = True
            continue
        if not name.startswith(prefix):
            continue
        found = True
        rel = name[len(prefix) :]
        is_dir = info.get("type") == "directory" or rel.endswith("/")
        if is_dir:
            rel = rel.rstrip("/")
            if not rel:
                continue
        parts = _visible_parts(rel)
        if parts is None:
            continue
        folder = top
        for part in parts if is_dir else parts[:-1]:
            folder = folder.dirs.setdefault(part, _Folder())
        if not is_dir:
            folder.files[parts[-1]] = (
                _size(info),
                _stamp(info, _VERSION_KEYS),
                _stamp(info, _MTIME_KEYS),
            )
    return top if found else None


def _identity_options(options):
    """``storage_options`` without credentials: what else tells stores apart
    (an endpoint, a region) for cache keys."""
    if isinstance(options, dict):
        return {
            k: _identity_options(v)
            for k, v in sorted(options.items())
            if not any(word in str(k).lower() for word in _SECRET_WORDS)
        }
    return options if isinstance(options, str | int | float | bool) else str(options)


class FsspecStore:
    """Any fsspec file system other than the local one (see the module
    docstring): listed once per folder with ``fs.find``, read in bounded
    concurrent groups with ``fs.cat_ranges``.

    Paths given to :meth:`read` are the URLs :meth:`display` makes, so that
    every message and every ``filenames`` entry names the file as the user
    would.
    """

    sep = "/"

    def __init__(self, fs, url, path, storage_options=None):
        self.fs = fs
        self.path = path.rstrip("/")
        self.url = url.rstrip("/")
        if self.url.endswith(":"):  # the store's root itself: memory://
            self.url += "//"
        self.identity_options = _identity_options(storage_options or {})
        self._listings, self._sizes = {}, {}

    def __getstate__(self):
        # The listings stay with the process that listed: a worker is sent
        # the sizes of its own files along with their names.
        return {**self.__dict__, "_listings": {}, "_sizes": {}}

    @property
    def shareable(self):
        """Whether another process sees the same files: not so for
        ``memory://``, which lives in this process."""
        from fsspec.implementations.memory import MemoryFileSystem

        return not isinstance(self.fs, MemoryFileSystem)

    def display(self, path):
        """The URL of the store path ``path``, in the user's own spelling."""
        if path == self.path:
            return self.url
        if path.startswith(self.path + "/"):
            return self.url + path[len(self.path) :]
        return self.fs.unstrip_protocol(path)

    def _path(self, url):
        if url.startswith(self.url + "/"):
            return self.path + url[len(self.url) :]
        return url

    def join(self, path, name):
        return f"{path}/{name}"

    # ------------------------------------------------------------- listing
    def _bucket(self, path):
        return path.lstrip("/").split("/", 1)[0]

    def _list(self, path):
        """Every key under ``path``, from one ``fs.find``, as a tree.

        The file system's own cache of listings (s3fs keeps one) is dropped
        before and after: a listing is always the store's current one, never
        an earlier load's, and the store's is not held twice in memory.
        """
        try:
            self.fs.invalidate_cache(path)
            entries = self.fs.find(path, withdirs=True, detail=True)
            self.fs.invalidate_cache(path)
        except FileNotFoundError:
            entries = {}
        except PermissionError as exc:
            raise PermissionError(
                f"Access to {self.display(path)!r} was denied ({exc}). Check the "
                f"credentials for the bucket {self._bucket(path)!r}: pass them in "
                "storage_options (for s3://, key= and secret=, or profile=), or "
                "set them where the storage library looks (for S3, the "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY environment "
                "variables or ~/.aws/credentials)."
            ) from exc
        except Exception as exc:  # network errors of the storage library
            raise OSError(
                f"Cannot list {self.display(path)!r} ({type(exc).__name__}: {exc}). "
                "Check the URL, the endpoint in storage_options and the network."
            ) from exc
        return _build_tree(path, entries)

    def _node(self, path):
        """The listed node of ``path``: a :class:`_Folder`, a :class:`_File`
        or None. Listed once: from the listing of a folder above it when one
        was listed, else from a listing of ``path`` itself."""
        for listed, tree in self._listings.items():
            if path == listed or path.startswith(listed + "/"):
                node = tree
                rest = path[len(listed) :].strip("/")
                for part in rest.split("/") if rest else ():
                    if not isinstance(node, _Folder):
                        return None
                    if part in node.dirs:
                        node = node.dirs[part]
                    elif part in node.files:
                        node = _File(node.files[part][0])
                    else:
                        return None
                return node
        tree = self._listings[path] = self._list(path)
        return tree

    def check_dir(self, path):
        node = self._node(path)
        if node is None:
            raise FileNotFoundError(
                f"Image folder {self.display(path)!r} does not exist (no object "
                "has it as a prefix). Pass the folder that holds one sub-folder "
                "per class (root/<class>/<image>) or per split "
                "(root/<split>/<class>/<image>)."
            )
        if isinstance(node, _File):
            raise NotADirectoryError(
                f"{self.display(path)!r} is a file, not a folder. Pass the folder "
                "that holds the class folders (root/<class>/<image>), not an image "
                "or archive inside it."
            )

    def is_dir(self, path):
        return isinstance(self._node(path), _Folder)

    def file_size(self, path):
        """The listed size of ``path`` when it is a file, else None."""
        node = self._node(path)
        return node.size if isinstance(node, _File) else None

    def subdirs(self, path):
        node = self._node(path)
        return list(node.dirs) if isinstance(node, _Folder) else []

    def has_images(self, path, exts):
        node = self._node(path)
        suffixes = tuple(exts)
        return isinstance(node, _Folder) and any(
            name.lower().endswith(suffixes) for name in node.files
        )

    def scan(self, class_dir, exts, with_stat):
        """Image files under ``class_dir`` as :func:`._discover._scan_class`
        returns them: relative paths, stamps (sizes, versions, mtimes), and no
        special files (a store holds none)."""
        rels, sizes, versions, mtimes = [], [], [], []
        suffixes = tuple(exts)

        def walk(folder, prefix):
            for name, (size, version, mtime) in folder.files.items():
                if name.endswith(suffixes) or name.lower().endswith(suffixes):
                    rels.append(prefix + name)
                    sizes.append(size)
                    versions.append(version)
                    mtimes.append(mtime)
            for name, sub in folder.dirs.items():
                walk(sub, f"{prefix}{name}/")

        node = self._node(class_dir)
        if isinstance(node, _Folder):
            walk(node, "")
        url = self.display(class_dir)
        self._sizes.update(
            (f"{url}/{rel}", size) for rel, size in zip(rels, sizes, strict=True)
        )
        return rels, (sizes, versions, mtimes), []

    def identity(self, path):
        """What names ``path`` in cache keys: the URL and the options that
        tell stores apart (an endpoint), never credentials."""
        import json

        return json.dumps(
            {"url": self.display(path), "options": self.identity_options},
            sort_keys=True,
            default=str,
        )

    def sizes(self, urls):
        """The listed sizes of ``urls`` (files of a folder listed by
        :meth:`scan`), for :meth:`read`."""
        return np.array([self._sizes.get(u, -1) for u in urls], dtype=np.int64)

    # ------------------------------------------------------------- reading
    def read(self, urls, sizes):
        """Yield the bytes of each of ``urls`` in order, or the
        :class:`ImageDecodeError` saying why it cannot be read.

        ``sizes`` are the listed sizes; a file is read up to one byte more,
        and its bytes must be that many.
        """
        limit = max_file_bytes()
        group, group_bytes = [], 0
        for url, size in zip(urls, sizes, strict=True):
            size = int(size)
            fetched = size != 0 and (limit is None or size <= limit)
            cost = max(size, 0) if fetched else 0
            if group and (
                len(group) >= FETCH_FILES or group_bytes + cost > FETCH_BYTES
            ):
                yield from self._fetch(group, limit)
                group, group_bytes = [], 0
            group.append((url, size))
            group_bytes += cost
        if group:
            yield from self._fetch(group, limit)

    def _fetch(self, group, limit):
        wanted = [
            (url, size)
            for url, size in group
            if size != 0 and (limit is None or size <= limit)
        ]
        got = {}
        if wanted:
            paths = [self._path(u) for u, _ in wanted]
            # Up to one byte past the listed size: a larger object (replaced
            # since the listing) shows as one, and is never read whole. A size
            # the listing did not give (-1) reads up to one byte past the limit.
            unknown = None if limit is None else limit + 1
            ends = [s + 1 if s > 0 else unknown for _, s in wanted]
            kwargs = {"on_error": "return"}
            if getattr(self.fs, "async_impl", False):
                kwargs["batch_size"] = FETCH_CONCURRENCY
            try:
                results = self.fs.cat_ranges(paths, [0] * len(paths), ends, **kwargs)
            except Exception as exc:  # the whole group failed
                results = [exc] * len(paths)
            got = dict(zip([u for u, _ in wanted], results, strict=True))
        for url, size in group:
            if size == 0:
                yield b""  # decode_bytes names it an empty file
            elif url not in got:
                yield ImageDecodeError(url, too_large(size, limit))
            else:
                yield _checked(url, size, got[url], limit)


def _checked(url, size, data, limit):
    """``data`` read for ``url`` listed at ``size`` bytes (-1: not listed),
    or the error."""
    if isinstance(data, BaseException):
        if isinstance(data, FileNotFoundError):
            reason = "cannot read it: it was deleted since it was listed"
        else:
            reason = f"cannot read it ({type(data).__name__}: {data})"
        return ImageDecodeError(url, " ".join(reason.split()))
    if size < 0 and limit is not None and len(data) > limit:
        return ImageDecodeError(
            url,
            f"more than {limit:,} bytes, more than an image within twice "
            "PIL.Image.MAX_IMAGE_PIXELS can take: not read whole",
        )
    if size >= 0 and len(data) != size:
        return ImageDecodeError(
            url,
            f"it changed while the folder was being read: listed at {size:,} "
            f"bytes, {'more' if len(data) > size else f'{len(data):,}'} read; "
            "load again",
        )
    return data
