"""MNIST for people who have none: download the IDX files, write PNG folders."""

import gzip
import hashlib
import http.client
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from numbers import Real
from pathlib import Path

import numpy as np

from ._atomic import building_dir, open_temp, remove_abandoned
from ._home import get_data_home
from ._idx import read_idx
from ._write import write_image_folder

__all__ = ["fetch_mnist"]

# Tried in order until one serves all four files.
MNIST_MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
# md5 of each file *after* gunzip (tests swap this table for their own files).
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte.gz": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte.gz": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte.gz": "27ae3e4e09519cfbb04c329615203637",
}
# Bytes of each file after gunzip.  A download is stopped once it is larger
# than ``_max_download_bytes`` of that: gzip never grows data by more than a
# few bytes per 64 KiB block, so a larger body is not this file (mirrors
# recompress: the compressed sizes differ from one to another).
MNIST_SIZE = {
    "train-images-idx3-ubyte.gz": 47_040_016,
    "train-labels-idx1-ubyte.gz": 60_008,
    "t10k-images-idx3-ubyte.gz": 7_840_016,
    "t10k-labels-idx1-ubyte.gz": 10_008,
}
_TRAIN = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
_TEST = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
_LAYOUTS = {"png": "mnist_png", "sample": "mnist_sample"}
_RAW_DIR = "mnist_idx"


def _md5_unzipped(path):
    digest = hashlib.md5(usedforsecurity=False)
    with gzip.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class _Deadline:
    """A deadline for one whole download: connection, headers and body.

    urllib's ``timeout`` bounds each socket operation, so a server that sends
    a few bytes at a time never times out.  Here each TCP connection is made
    with a timeout of the time left (so a connection begun after the deadline
    is never tried), and from the moment it is made (before a TLS handshake)
    it is watched: when the deadline passes, every watched connection is shut
    down, which ends any operation blocked on it, and :meth:`check` raises
    :class:`TimeoutError`.  The host name lookup (DNS) before connecting is
    the system resolver's and is not bounded by the deadline.
    """

    def __init__(self, url, timeout):
        self.url = url
        self.timeout = timeout
        self.end = None if timeout is None else time.monotonic() + timeout
        self.expired = False
        self._socks = []
        self._lock = threading.Lock()
        self._timer = None
        if timeout is not None:
            self._timer = threading.Timer(timeout, self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _shut_down(self):
        """Shut every watched connection down; the caller holds the lock
        (which keeps :meth:`close` from closing a socket meanwhile)."""
        for sock in self._socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _expire(self):
        with self._lock:
            self.expired = True
            self._shut_down()

    def watch(self, sock):
        """Shut ``sock``'s connection down at the deadline (through a
        duplicate, so that a socket closed and reused meanwhile is safe);
        at once when the deadline has already passed."""
        if self._timer is None or sock is None:
            return
        dup = socket.socket(fileno=os.dup(sock.fileno()))
        with self._lock:
            self._socks.append(dup)
            if self.expired:
                self._shut_down()

    def remaining(self):
        """Seconds left before the deadline (None: no deadline); raises
        :class:`TimeoutError` (see :meth:`check`) when none are left."""
        if self.end is None:
            return None
        self.check()
        return max(self.end - time.monotonic(), 1e-3)

    def connection(self, http_class):
        """``http_class`` whose connections are bounded by the deadline and
        watched from the moment they are made."""

        def make(*args, **kwargs):
            conn = http_class(*args, **kwargs)
            create = conn._create_connection  # socket.create_connection

            def watched_create(address, timeout=None, *rest, **kw):
                left = self.remaining()
                if left is not None and (timeout is None or timeout > left):
                    timeout = left
                sock = create(address, timeout, *rest, **kw)
                self.watch(sock)
                return sock

            conn._create_connection = watched_create
            return conn

        return make

    def check(self):
        if self.expired or (self.end is not None and time.monotonic() > self.end):
            self.expired = True
            raise TimeoutError(
                f"Downloading {self.url} took longer than timeout={self.timeout} "
                "s, the time allowed for each whole file; pass a larger timeout "
                "(--timeout on the command line) on a slow network."
            )

    def close(self):
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            for sock in self._socks:
                sock.close()
            self._socks.clear()


class _Watched:
    """A urllib handler whose connections a :class:`_Deadline` watches."""

    def __init__(self, deadline):
        super().__init__()
        self._deadline = deadline

    def do_open(self, http_class, req, **kwargs):
        return super().do_open(self._deadline.connection(http_class), req, **kwargs)


class _WatchedHTTPHandler(_Watched, urllib.request.HTTPHandler):
    pass


class _WatchedHTTPSHandler(_Watched, urllib.request.HTTPSHandler):
    pass


def _max_download_bytes(name):
    """The most bytes a download of ``name`` may have (see MNIST_SIZE)."""
    size = MNIST_SIZE[name]
    return size + size // 100 + 4096


def _announced_length(response):
    """The response's Content-Length, or None where it has none (or a
    malformed one: then only the body's own size counts)."""
    value = response.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _fetch(url, f, timeout, max_bytes):
    """Copy ``url`` into the file ``f`` within ``timeout`` seconds in all,
    and at most ``max_bytes``: a larger announced or actual body is stopped
    (``OSError``), as is a body shorter than its Content-Length."""
    deadline = _Deadline(url, timeout)
    opener = urllib.request.build_opener(
        _WatchedHTTPHandler(deadline), _WatchedHTTPSHandler(deadline)
    )
    try:
        with opener.open(url, timeout=timeout) as response:
            length = _announced_length(response)
            if length is not None and length > max_bytes:
                raise OSError(
                    f"{url} announces {length} bytes (Content-Length), more than "
                    f"the {max_bytes} this file can have; not downloaded"
                )
            total = 0
            while chunk := response.read(1 << 16):
                deadline.check()
                total += len(chunk)
                if total > max_bytes:
                    raise OSError(
                        f"{url} sent more than the {max_bytes} bytes this file "
                        "can have; the download was stopped"
                    )
                f.write(chunk)
            if length is not None and total < length:
                # http.client's read(n) returns what came before the server
                # closed the connection, without an error.
                raise OSError(
                    f"incomplete download of {url}: the body ended after "
                    f"{total} of the {length} bytes its Content-Length announced"
                )
        deadline.check()
    except (OSError, http.client.HTTPException) as exc:
        deadline.check()  # a connection shut at the deadline: say so
        if isinstance(exc, http.client.HTTPException):
            raise OSError(f"{url}: {type(exc).__name__}: {exc}") from exc
        raise
    finally:
        deadline.close()


def _download(name, mirrors, raw_dir, timeout):
    """Fetch ``name`` into ``raw_dir``, checking its md5; return its path."""
    final = raw_dir / name
    expected = MNIST_MD5[name]
    failures = []
    remove_abandoned(raw_dir, name)  # .part files of downloads that died
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            with open_temp(final, "part") as (tmp, f):
                _fetch(url, f, timeout, _max_download_bytes(name))
                f.close()
                try:
                    got = _md5_unzipped(tmp)
                except (OSError, EOFError) as exc:
                    got = f"(not a gzip file: {exc})"
                if got == expected:
                    os.replace(tmp, final)
                    return final
                tmp.unlink()
        except OSError as exc:
            failures.append(exc)
            continue
        failures.append(
            ValueError(
                f"Checksum mismatch for {name} downloaded from {url}: the "
                f"unzipped file should have md5 {expected} but has {got}. "
                "The download is corrupt or not MNIST; it was deleted."
            )
        )
    mismatches = [f for f in failures if isinstance(f, ValueError)]
    if mismatches:
        raise mismatches[0]
    raise OSError(
        f"Could not download {name} from any of {list(mirrors)}: "
        + "; ".join(str(f).rstrip(".") for f in failures)
        + ". Check the network, or pass base_url= a mirror you can reach (a "
        "file:// URL of a folder holding the four .gz files works too)."
    )


def _load_pair(raw_dir, names):
    images, labels = (read_idx(raw_dir / n) for n in names)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{names[0]} and {names[1]} do not match: images {images.shape}, "
            f"labels {labels.shape}."
        )
    return images, labels


def _write_png_tree(tmp, raw_dir, n_jobs):
    for split, names in (("training", _TRAIN), ("testing", _TEST)):
        images, labels = _load_pair(raw_dir, names)
        write_image_folder(images, labels, tmp, split=split, n_jobs=n_jobs)


def _write_sample_tree(tmp, raw_dir, n_jobs):
    rows = ["name,label"]
    for split, names in (("train", _TRAIN), ("valid", _TEST)):
        images, labels = _load_pair(raw_dir, names)
        idx = np.flatnonzero((labels == 3) | (labels == 7))
        write_image_folder(
            images[idx], labels[idx], tmp, split=split, index=idx, n_jobs=n_jobs
        )
        for digit in (3, 7):
            rows.extend(
                f"{split}/{digit}/{i}.png,{int(digit == 7)}"
                for i in idx[labels[idx] == digit]
            )
    (tmp / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")


def fetch_mnist(
    data_home=None,
    *,
    layout="png",
    base_url=MNIST_MIRRORS,
    download_if_missing=True,
    n_jobs=None,
    timeout=60,
):
    """Download MNIST and write it as a folder of PNG images.

    The four IDX files are downloaded once into ``<data_home>/mnist_idx`` and
    their checksums checked; then the folder tree is written:

    * ``layout="png"``: ``<data_home>/mnist_png/{training,testing}/{0..9}/`` with
      all 70,000 images;
    * ``layout="sample"``: fastai's ``mnist_sample``, the 3s and 7s only:
      ``<data_home>/mnist_sample/{train,valid}/{3,7}/`` (all 6,131 + 6,265
      training and 1,010 + 1,028 test images) and a ``labels.csv`` with columns
      ``name,label`` (label 0 for a 3 and 1 for a 7).

    Each image is named by its index in the original IDX file
    (``training/5/0.png`` is the first training image). Trees are written
    under a temporary name and renamed into place; a tree already present is
    returned without downloading anything.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Where to put the files; see :func:`get_data_home`.
    layout : {"png", "sample"} or list of them, default="png"
        Which tree to write. A list writes several and returns their paths.
    base_url : str or sequence of str, default=MNIST_MIRRORS
        URL of a folder holding the four ``.gz`` files, or several tried in
        order. ``file://`` URLs work, for machines without a network.
    download_if_missing : bool, default=True
        If False, raise ``OSError`` instead of downloading missing files.
    n_jobs : int, default=None
        Number of joblib workers writing the PNG files.
    timeout : float or None, default=60
        Seconds allowed for each file's whole download from one mirror
        (connecting, TLS handshake, headers and body together); a mirror that
        takes longer is given up on and the next one tried.  The host name
        lookup (DNS) is left to the system resolver's own timeouts.  ``None``
        waits for ever.

    Returns
    -------
    path : pathlib.Path or list of pathlib.Path
        The folder tree written (one per layout when ``layout`` is a list).

    Raises
    ------
    ValueError
        A downloaded file's checksum does not match (the message names the
        file and both checksums; nothing is kept), or ``layout`` is unknown.
    OSError
        The files could not be downloaded from any mirror: unreachable, too
        slow (``timeout``), a body larger than the file can be (stopped as
        soon as it is, or refused on its Content-Length), or an incomplete
        download (the body ended before its Content-Length).

    See Also
    --------
    load_image_folder : Load the folders written here.
    read_idx : Read the IDX files themselves.

    Examples
    --------
    A folder that is already there is returned as it is, without a download:

    >>> import os, tempfile
    >>> from sk_template.datasets import fetch_mnist
    >>> tmp = tempfile.TemporaryDirectory()
    >>> os.makedirs(os.path.join(tmp.name, "mnist_sample", "train", "3"))
    >>> fetch_mnist(tmp.name, layout="sample").name
    'mnist_sample'
    >>> tmp.cleanup()
    """
    if isinstance(layout, str):
        layouts, single = [layout], True
    else:
        layouts, single = list(layout), False
    for lay in layouts:
        if lay not in _LAYOUTS:
            raise ValueError(
                f"layout must be 'png', 'sample' or a list of them; got {lay!r}."
            )
    if timeout is not None and (
        isinstance(timeout, bool)
        or not isinstance(timeout, Real)
        or not (timeout > 0 and math.isfinite(timeout))
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds or None; got {timeout!r}."
        )
    mirrors = [base_url] if isinstance(base_url, str) else list(base_url)
    home = Path(get_data_home(data_home))
    # Temporary trees and downloads of runs that were killed.
    remove_abandoned(home)
    remove_abandoned(home / _RAW_DIR)
    paths = []
    for lay in layouts:
        target = home / _LAYOUTS[lay]
        if not target.is_dir():
            raw_dir = home / _RAW_DIR
            raw_dir.mkdir(exist_ok=True)
            for name in MNIST_MD5:
                if not (raw_dir / name).exists():
                    if not download_if_missing:
                        raise OSError(
                            f"{raw_dir / name} is missing and download_if_missing="
                            "False."
                        )
                    _download(name, mirrors, raw_dir, timeout)
            with building_dir(target) as tmp:
                if lay == "png":
                    _write_png_tree(tmp, raw_dir, n_jobs)
                else:
                    _write_sample_tree(tmp, raw_dir, n_jobs)
        paths.append(target)
    return paths[0] if single else paths
