"""Save and load fitted models in a file format that cannot run code when loaded.

A fitted :class:`~sk_template.NearestMeanImageClassifier` is a few numpy arrays
(per-class sums and weights, the labels) and its parameters, so it is stored
as a plain ``.npz`` archive of arrays, read back member by member with pickles
refused (as ``np.load(..., allow_pickle=False)`` does) and every size checked
before anything is decompressed: loading a model file reads numbers and text,
never code, in memory bounded by the file (see :func:`load_model`).  A pickle
(what ``joblib.dump`` writes) can run any code when it is loaded;
:func:`load_model` recognises one and refuses it.

Layout of the archive (format version 1), every member a plain array:

``format``
    The marker ``"sk_template.NearestMeanImageClassifier"``.
``format_version``
    An integer, :data:`FORMAT_VERSION` of the writer.
``sk_template_version``
    The ``sk_template.__version__`` that wrote the file.
``params``
    ``get_params()`` as JSON text.
``metadata``
    JSON text: ``{"image_shape": [h, w] or [h, w, c] or null,
    "load_params": {"mode": ..., "size": [h, w] or null, "resize": ...} or
    null}`` (``load_params`` may be absent: files written before it existed).
``classes``, ``n_features_in``, ``feature_names_in`` (optional)
    The fitted attributes of the same names.
``stats_<field>``
    The class statistics, one member per field of
    :class:`sk_template._core.ClassStats` (``stats_sums``, ``stats_weights``,
    ...): the sums every fitted attribute is derived from.
``medians``, ``median_scatter`` (only for ``centroid="median"``)
    The class medians and the scatter about them.
"""

# SPDX-License-Identifier: BSD-3-Clause

import dataclasses
import io
import json
import math
import os
import pickletools
import stat
import sys
import warnings
import zipfile
import zlib
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._classifier import (
    NearestMeanImageClassifier,
    runnable_device,
    stats_out_of_range,
)
from ._core import ClassStats
from .datasets._atomic import write_atomic

__all__ = ["FORMAT_VERSION", "load_model", "save_model"]

#: Version of the model file format this sk_template writes; it reads this
#: version and every older one.
FORMAT_VERSION = 1

_MARKER = "sk_template.NearestMeanImageClassifier"
_REQUIRED = ("format", "format_version", "params", "classes", "n_features_in")
_STATS = "stats_"
_LOAD_PARAMS = {"mode", "size", "resize"}
# Leading bytes of files that are not model files but are easily mistaken for
# one.  A pickle of protocol 2 or later starts with PROTO (0x80) and the
# protocol number; joblib.dump writes such a pickle, or a compressed one.
_ZIP_MAGIC = b"PK\x03\x04"
_NPY_MAGIC = b"\x93NUMPY"
_COMPRESSED_MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x04\x22\x4d\x18": "lz4",
}
_PICKLE_HINT = (
    "which can run code when loaded; load it with joblib.load only if you trust "
    "it, or re-save it with sk_template.save_model"
)


def _version():
    from . import __version__

    return __version__


def _check_path(path, name="path"):
    try:
        return Path(os.fspath(path)).expanduser()
    except TypeError:
        raise TypeError(
            f"{name} must be a str or path-like naming a file; got {path!r}."
        ) from None


def _text(value):
    """A JSON-able string as a 0-d unicode array (no pickle needed to read)."""
    return np.array(value, dtype=np.str_)


def _label_array(classes):
    """``classes`` as an array ``np.load`` reads without pickle, or an error."""
    classes = np.asarray(classes)
    if classes.dtype == object:
        if all(isinstance(c, str) for c in classes):
            return classes.astype(np.str_)
        kinds = sorted({type(c).__name__ for c in classes})
        raise ValueError(
            "save_model stores class labels that are integers, floats, booleans "
            f"or strings; this model's classes_ holds objects of type(s) {kinds}. "
            "Refit it with labels of one of those types, or save it with joblib "
            "(a pickle)."
        )
    if classes.dtype.kind not in "biufUS":
        raise ValueError(
            "save_model stores class labels that are integers, floats, booleans "
            f"or strings; this model's classes_ has dtype {classes.dtype}."
        )
    return classes


def _image_shape(image_shape, n_features):
    if image_shape is None:
        return None
    try:
        shape = tuple(int(s) for s in image_shape)
        ok = all(isinstance(s, Integral) for s in image_shape)
    except (TypeError, ValueError):
        ok = False
    if not ok or len(shape) not in (2, 3) or min(shape) < 1:
        raise ValueError(
            "image_shape must be a tuple of 2 or 3 positive integers, (height, "
            f"width) or (height, width, channels); got {image_shape!r}."
        )
    if math.prod(shape) != n_features:
        raise ValueError(
            f"image_shape={shape} holds {math.prod(shape)} pixel values, but the "
            f"model has n_features_in_={n_features}."
        )
    return shape


def _plain(value):
    """``value`` with numpy arrays, numpy scalars and devices made JSON-able."""
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, np.ndarray | np.generic):
        return value.tolist()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _json_params(model):
    params = {key: _plain(value) for key, value in model.get_params(deep=False).items()}
    try:
        return json.dumps(params, sort_keys=True)
    except TypeError as exc:
        raise ValueError(
            f"save_model stores parameters as JSON; {exc}. Set the parameter to "
            "a string or number before saving."
        ) from None


def _gives(mode, size, image_shape):
    """Whether loading with ``mode`` and ``size`` gives images of this shape."""
    if size is not None and tuple(image_shape[:2]) != size:
        return False
    if mode == "L":
        return len(image_shape) == 2
    if mode in ("RGB", "RGBA"):
        return len(image_shape) == 3 and image_shape[2] == len(mode)
    return True  # mode=None keeps what the files hold


def _load_params(load_params, image_shape):
    """``load_params`` checked, with ``size`` a tuple (or None), or None."""
    if load_params is None:
        return None
    from .datasets._folder import check_pixel_options

    if not isinstance(load_params, dict) or set(load_params) != _LOAD_PARAMS:
        raise ValueError(
            "load_params must be a dict with the keys 'mode', 'size' and 'resize' "
            f"(the load_image_folder arguments); got {load_params!r}."
        )
    mode, size, resize = (load_params[k] for k in ("mode", "size", "resize"))
    size = check_pixel_options(mode, size, resize)
    if image_shape is not None and not _gives(mode, size, image_shape):
        raise ValueError(
            f"load_params={load_params!r} cannot give images of shape "
            f"{tuple(image_shape)}."
        )
    return {"mode": mode, "size": size, "resize": resize}


def save_model(model, path, *, image_shape=None, load_params=None):
    """Save a fitted model to a file that cannot run code when loaded.

    The file is a numpy ``.npz`` archive holding the model's parameters, its
    labels and its per-class sums (see the module docstring).  It is written to
    a temporary file in the same folder and then renamed over ``path``, so
    ``path`` is never left half-written.  Read it back with :func:`load_model`.
    Only a regular file is ever replaced: a symbolic link is written through
    (the file it names is replaced, the link kept), and a FIFO or character
    device (``/dev/stdout``, ``/dev/null``) is written into, as ``cp`` does.

    Parameters
    ----------
    model : NearestMeanImageClassifier
        A fitted model.

    path : str or path-like
        The file to write, used exactly as given (``.npz`` is the usual
        extension but is not added).  An existing file is replaced; a folder
        is an error (``IsADirectoryError`` naming ``path``).

    image_shape : tuple of int, default=None
        The shape of one image, ``(height, width)`` or ``(height, width,
        channels)``, stored so that tools can show the class means as images
        (``sk-template means``).  Its product must be ``n_features_in_``.

    load_params : dict, default=None
        How the training images were loaded: the ``mode``, ``size`` and
        ``resize`` arguments of
        :func:`~sk_template.datasets.load_image_folder`, e.g. ``{"mode":
        "RGB", "size": (64, 64), "resize": "crop"}``.  ``sk-template
        evaluate`` and ``predict`` load new images the same way.

    Returns
    -------
    path : pathlib.Path
        The file written.

    Raises
    ------
    TypeError
        If ``model`` is not a :class:`~sk_template.NearestMeanImageClassifier`.
    sklearn.exceptions.NotFittedError
        If ``model`` is not fitted.
    ValueError
        If the labels are not integers, floats, booleans or strings, or
        ``image_shape`` or ``load_params`` does not match the model.

    See Also
    --------
    load_model : Read the file back.

    Notes
    -----
    ``joblib.dump`` / ``pickle`` keep working for the estimator, as for any
    scikit-learn estimator, but a pickle runs code when it is loaded: load
    pickles only from sources you trust.  Files from this function are safe to
    load from anywhere.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sk_template import NearestMeanImageClassifier, load_model, save_model
    >>> X = np.array([[0, 0], [0, 10], [250, 250], [240, 255]], dtype=np.uint8)
    >>> y = ["three", "three", "seven", "seven"]
    >>> clf = NearestMeanImageClassifier().fit(X, y)
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = save_model(clf, os.path.join(folder.name, "model.npz"))
    >>> load_model(path).predict(np.array([[5, 5]], dtype=np.uint8))
    array(['three'], dtype='<U5')
    >>> folder.cleanup()
    """
    if not isinstance(model, NearestMeanImageClassifier):
        raise TypeError(
            "save_model saves a fitted NearestMeanImageClassifier; got "
            f"{type(model).__name__}. Use joblib.dump for other estimators."
        )
    check_is_fitted(model)
    path = _check_path(path)
    n_features = int(model.n_features_in_)
    image_shape = _image_shape(image_shape, n_features)
    metadata = {
        "image_shape": image_shape,
        "load_params": _load_params(load_params, image_shape),
    }
    arrays = {
        "format": _text(_MARKER),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "sk_template_version": _text(_version()),
        "params": _text(_json_params(model)),
        "metadata": _text(json.dumps(metadata)),
        "classes": _label_array(model.classes_),
        "n_features_in": np.array(n_features, dtype=np.int64),
    }
    for name, value in model._stats.items():
        arrays[_STATS + name] = np.asarray(value, dtype=np.float64)
    medians = getattr(model, "_medians", None)
    if medians is not None:
        arrays["medians"] = np.asarray(medians[0], dtype=np.float64)
        arrays["median_scatter"] = np.asarray(medians[1], dtype=np.float64)
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(model.feature_names_in_).astype(np.str_)
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def _open_model_file(path):
    """``path`` open for binary reading, refused unless it is a regular file.

    A FIFO would block ``open`` for ever, and a device could be read for ever:
    both are refused from ``stat`` (after following symbolic links), before
    opening, and the opened file is checked again.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(f"No such model file: {str(path)!r}.") from None
    _check_regular(path, mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        _check_regular(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return open(fd, "rb")


_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _check_regular(path, mode):
    """Refuse anything but a regular file; a folder as IsADirectoryError."""
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a model file.")
    if not stat.S_ISREG(mode):
        kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise ValueError(
            f"{path} is {kind}, not a model file: sk_template reads model files "
            "from regular files only."
        )


def _sniff(f, path):
    """Raise a clear ValueError when the file ``f`` is not an ``.npz`` archive."""
    head = f.read(1 << 16)
    f.seek(0)
    if head.startswith(_ZIP_MAGIC):
        return
    if not head:
        raise ValueError(f"{path} is not an sk_template model file: it is empty.")
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        raise ValueError(f"{path} is a pickle, {_PICKLE_HINT}.")
    kinds = [
        kind for magic, kind in _COMPRESSED_MAGIC.items() if head.startswith(magic)
    ]
    if kinds or _is_zlib(head):
        kind = kinds[0] if kinds else "zlib"
        raise ValueError(
            f"{path} is {kind}-compressed data, not an sk_template model file. "
            f"If it is a compressed joblib pickle: it is a pickle, {_PICKLE_HINT}."
        )
    if head.startswith(_NPY_MAGIC):
        raise ValueError(
            f"{path} is a single numpy array (.npy), not an sk_template model "
            "file; write model files with sk_template.save_model."
        )
    if _is_old_pickle(head):
        raise ValueError(f"{path} is a pickle (protocol 0 or 1), {_PICKLE_HINT}.")
    raise ValueError(
        f"{path} is not an sk_template model file (expected a .npz archive "
        "written by sk_template.save_model)."
    )


def _dotted(name):
    return all(part.isidentifier() for part in name.split("."))


def _is_old_pickle(head):
    """Whether ``head`` starts like a pickle of protocol 0 or 1.

    Those have no PROTO opcode to recognise them by.  ``head`` is parsed as
    pickle opcodes (``pickletools.genops`` reads, it never runs anything): a
    pickle of an object soon names its class (GLOBAL/INST ``module name``),
    and a small one ends with STOP; other bytes soon fail to parse.
    """
    count = 0
    try:
        for opcode, arg, _ in pickletools.genops(io.BytesIO(head)):
            count += 1
            if opcode.name in ("GLOBAL", "INST"):
                module, _, name = str(arg).partition(" ")
                return _dotted(module) and _dotted(name)
            if opcode.name == "STOP":
                return count > 1
    except Exception:  # not opcodes, or cut off by the end of ``head``
        return False
    return False


def _is_zlib(head):
    # A zlib stream: CMF byte 0x78 and a header checksum divisible by 31.
    return len(head) >= 2 and head[0] == 0x78 and (head[0] * 256 + head[1]) % 31 == 0


_MEMBERS = {
    "format",
    "format_version",
    "sk_template_version",
    "params",
    "metadata",
    "classes",
    "n_features_in",
    "feature_names_in",
    "medians",
    "median_scatter",
}
# Limits that keep a crafted archive from taking much memory or time (see
# load_model's Notes).  numpy writes members stored or deflated, never
# with another method.
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
_METHOD_NAMES = {
    zipfile.ZIP_BZIP2: "bzip2",
    zipfile.ZIP_LZMA: "lzma",
    getattr(zipfile, "ZIP_ZSTANDARD", 93): "zstandard",
}
_MAX_ENTRIES = 10_000
_MAX_HEADER = 10_000  # bytes of one .npy header, numpy's own default limit
_MAX_TEXT_BYTES = 16 << 20  # one text member (params, metadata, versions)
# Deflated members may declare in all this many bytes more than ...
_DEFLATE_ALLOWANCE = 16 << 20
# ... plus this many times their compressed size.  (Deflate itself cannot
# expand more than 1032-fold; save_model stores members uncompressed.)
_MAX_DEFLATE_RATIO = 20
_CHUNK = 1 << 20


def _known(name):
    return name in _MEMBERS or name.startswith(_STATS)


class _Corrupt(ValueError):
    """A corrupt or truncated archive (reported with that wording)."""


class _Counting:
    """A reader that counts the bytes read from it (for the .npy header)."""

    def __init__(self, f):
        self.f, self.n = f, 0

    def read(self, n=-1):
        data = self.f.read(n)
        self.n += len(data)
        return data


def _entries(zf, path):
    """The model members of ``zf``: ``{name: ZipInfo or None}``.

    A name a model file uses that is not a ``.npy`` member maps to None (an
    error later).  Two members of the same name (``x`` and ``x.npy``
    included) are refused.
    """
    infos = zf.infolist()
    if len(infos) > _MAX_ENTRIES:
        raise ValueError(
            f"{path} is not an sk_template model file: it has {len(infos)} members."
        )
    names = [info.filename for info in infos]
    stems = [name.removesuffix(".npy") for name in names]
    if len(set(stems)) < len(stems):
        # Two members of one name: readers disagree on which one counts
        # (zipfile takes the last, others the first), the classic way to show
        # a checker one file and a loader another.
        twice = sorted({s for s in stems if stems.count(s) > 1})
        raise ValueError(
            f"{path} is not a valid sk_template model file: it has more than one "
            f"member named {', '.join(map(repr, twice))} (or with and without "
            ".npy); save_model never writes such a file. Refused."
        )
    members, raw = {}, {}
    for info in infos:
        if info.filename.endswith(".npy") and _known(info.filename[:-4]):
            members[info.filename[:-4]] = info
        elif _known(info.filename):
            raw[info.filename] = None
    members.update(raw)
    return members


def _check_entry(info, name, path, size):
    """Refuse a member before anything of it is decompressed."""
    if info.compress_type not in _METHODS:
        method = _METHOD_NAMES.get(info.compress_type, f"method {info.compress_type}")
        raise ValueError(
            f"{path} is not a valid sk_template model file: member {name!r} is "
            f"compressed with {method}, which numpy never writes (only stored and "
            "deflate). Refused without decompressing it."
        )
    if info.flag_bits & 0x1:
        raise ValueError(
            f"{path} is not a valid sk_template model file: member {name!r} is "
            "encrypted."
        )
    if info.header_offset + info.compress_size > size or (
        info.compress_type == zipfile.ZIP_STORED
        and info.compress_size != info.file_size
    ):
        raise _Corrupt(f"member {name!r} claims more bytes than the file holds")


def _read_header(zf, info, name, path):
    """``(shape, fortran_order, dtype, data_offset)`` of a ``.npy`` member."""
    with zf.open(info) as raw:
        fp = _Counting(raw)
        if fp.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
            raise ValueError(
                f"{path} is a corrupt model file: member {name!r} is not an array."
            )
        major = fp.read(2)[:1]
        try:
            if major == b"\x01":
                header = np.lib.format.read_array_header_1_0(
                    fp, max_header_size=_MAX_HEADER
                )
            elif major == b"\x02":
                header = np.lib.format.read_array_header_2_0(
                    fp, max_header_size=_MAX_HEADER
                )
            else:
                raise ValueError(f"unsupported .npy format version {major!r}")
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError):
            raise
        except Exception as exc:  # numpy parses the header as Python literals
            raise ValueError(
                f"{path} is not a valid sk_template model file: member {name!r} "
                f"has a bad header ({_flat(exc)})."
            ) from None
    shape, fortran, dtype = header
    if dtype.hasobject:
        raise ValueError(
            f"{path} is not a valid sk_template model file: member {name!r} holds "
            "Python objects (dtype object), which only a pickle can read; refused."
        )
    return shape, fortran, dtype, fp.n


# What each member may hold: (dtype kinds, number of dimensions); the
# statistics are float64 of any shape (checked once read).
_MEMBER_TYPES = {
    "format": ("U", 0),
    "sk_template_version": ("U", 0),
    "params": ("U", 0),
    "metadata": ("U", 0),
    "format_version": ("iu", 0),
    "n_features_in": ("iu", 0),
    "classes": ("biufUS", 1),
    "feature_names_in": ("U", 1),
}


def _check_member_type(name, shape, dtype, path):
    """Refuse a member whose header gives a dtype or shape that member never
    has, before anything is allocated.  A dtype of itemsize 0 (``S0``,
    ``U0``, ``V0``) is always refused: its declared size is 0 bytes whatever
    its shape, so the size checks could not bound what numpy allocates."""
    if dtype.itemsize == 0:
        raise ValueError(
            f"{path} is a corrupt model file: {name} has dtype {dtype}, whose "
            f"items are 0 bytes long (shape {shape}); no model file holds such "
            "an array. Save the model again with sk_template.save_model."
        )
    if name in _MEMBER_TYPES:
        kinds, ndim = _MEMBER_TYPES[name]
        if dtype.kind in kinds and len(shape) == ndim:
            return
        what = repr(name) if ndim == 0 else name
        raise ValueError(
            f"{path} is a corrupt model file: {what} has dtype {dtype} and shape "
            f"{shape}."
        )
    if dtype != np.float64:  # the statistics and medians
        raise ValueError(
            f"{path} is a corrupt model file: the arrays do not fit together "
            f"({name} is {dtype} {shape}; a model's statistics are float64)."
        )


def _plan(zf, members, path, size):
    """Check every member's header against its declared size and the limits;
    return ``{name: (info, shape, fortran, dtype, offset, nbytes)}``."""
    plan = {}
    deflated = declared = 0
    for name, info in members.items():
        if info is None:
            raise ValueError(
                f"{path} is a corrupt model file: member {name!r} is not an array."
            )
        _check_entry(info, name, path, size)
        shape, fortran, dtype, offset = _read_header(zf, info, name, path)
        _check_member_type(name, shape, dtype, path)
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != offset + nbytes:
            raise _Corrupt(
                f"member {name!r} declares {info.file_size} bytes, but its header "
                f"(shape {shape}, dtype {dtype}) makes {offset + nbytes}"
            )
        if shape == () and dtype.kind == "U" and nbytes > _MAX_TEXT_BYTES:
            raise ValueError(
                f"{path} is not a valid sk_template model file: its text member "
                f"{name!r} is {nbytes} bytes long."
            )
        if info.compress_type == zipfile.ZIP_DEFLATED:
            deflated += info.compress_size
            declared += info.file_size
        plan[name] = (info, shape, fortran, dtype, offset, nbytes)
    if declared > _DEFLATE_ALLOWANCE + _MAX_DEFLATE_RATIO * deflated:
        raise ValueError(
            f"{path} is not a valid sk_template model file: its compressed members "
            f"would expand from {deflated} to {declared} bytes, more than a model "
            "file ever does (a decompression bomb?). Refused without decompressing "
            "it."
        )
    return plan


def _read_member(zf, info, shape, fortran, dtype, offset, nbytes):
    """The array of one planned member, reading no more than it declares."""
    flat = np.empty(math.prod(shape), dtype=dtype)
    view = memoryview(flat).cast("B") if nbytes else None
    with zf.open(info) as fp:
        fp.read(offset)  # the header, read and checked before
        done = 0
        while done < nbytes:
            chunk = fp.read(min(_CHUNK, nbytes - done))
            if not chunk:
                raise _Corrupt(f"member {info.filename!r} ends early")
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
        if fp.read(1):  # the end, which also checks the CRC
            raise _Corrupt(f"member {info.filename!r} is longer than declared")
    if flat.dtype.kind == "U" and flat.size:
        # numpy stores text as UTF-32 code units and reads back any 32-bit
        # value; one past U+10FFFF is no character, and turning it into a
        # Python str raises SystemError.
        units = flat.view(flat.dtype.byteorder.replace("|", "=") + "u4")
        if units.max(initial=0) > sys.maxunicode:
            raise _Corrupt(f"member {info.filename!r} holds text that is not Unicode")
    if fortran:
        return flat.reshape(shape[::-1]).T
    return flat.reshape(shape)


def _read_archive(f, path):
    """The members of the model archive ``f`` as a dict of arrays.

    Only the members a model file has are read: an unknown one (say, a header
    claiming a huge shape) is never looked at.  Every member is checked
    before any of it is decompressed (see :func:`_plan`).
    """
    size = os.fstat(f.fileno()).st_size
    try:
        with zipfile.ZipFile(f) as zf:
            members = _entries(zf, path)
            plan = _plan(zf, members, path, size)
            arrays = {name: _read_member(zf, *spec) for name, spec in plan.items()}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, _Corrupt) as exc:
        raise ValueError(
            f"{path} is a corrupt or truncated model file ({exc}); save the model "
            "again."
        ) from exc
    except (NotImplementedError, RuntimeError) as exc:  # zipfile's own refusals
        raise ValueError(
            f"{path} is not a valid sk_template model file: {exc}"
        ) from exc
    marker = arrays.get("format")
    if marker is None or marker.shape != () or str(marker) != _MARKER:
        what = "no format marker" if marker is None else f"format {str(marker)!r}"
        raise ValueError(
            f"{path} is a .npz archive but not an sk_template model file ({what})."
        )
    missing = [name for name in _REQUIRED if name not in arrays]
    if missing:
        raise ValueError(
            f"{path} is a corrupt model file: it lacks {', '.join(missing)}."
        )
    return arrays


def _scalar(arrays, name, path, kind):
    value = arrays[name]
    if value.shape != () or value.dtype.kind not in kind:
        raise ValueError(
            f"{path} is a corrupt model file: {name!r} has dtype {value.dtype} "
            f"and shape {value.shape}."
        )
    return value.item()


def _json(arrays, name, path):
    try:
        value = json.loads(_scalar(arrays, name, path, "U"))
    except ValueError as exc:
        # JSONDecodeError, and Python's limit on the digits of an integer
        # (a 5,000-digit number), whose message names no file.
        raise ValueError(
            f"{path} is a corrupt model file: {name!r} is not valid JSON or "
            f"holds a number too long to read ({exc})."
        ) from None
    except RecursionError:
        raise ValueError(
            f"{path} is a corrupt model file: {name!r} is JSON nested too deeply "
            "to read."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is a corrupt model file: {name!r} is not a mapping.")
    for key, item in value.items():
        if not _finite_json(item):
            raise ValueError(
                f"{path} is a corrupt model file: {name}[{key!r}] holds a "
                "non-finite number (NaN or infinity)."
            )
    return value


def _finite_json(value):
    """Whether the JSON value holds only finite numbers."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return False
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def _check_fitted_numbers(model, params, path):
    """Refuse statistics that load but cannot predict (NaN probabilities).

    Every number prediction uses must be finite: the class priors, the means
    of the classes seen and their squared norms (distances), the pooled
    variance and, for the cosine model, the mean squared norm.
    """

    def refuse(field, what):
        raise ValueError(
            f"{path} is a corrupt model file: {field} {what}, so the model could "
            "not predict (its probabilities would be NaN). Save the model again "
            "from a model that was fitted on finite data."
        )

    prior = model.class_prior_
    if not (np.isfinite(prior).all() and (prior >= 0).all() and prior.sum() > 0):
        field = "stats_weights" if isinstance(params.get("priors"), str) else None
        refuse(
            field or "params['priors']", "gives class priors that are not probabilities"
        )
    seen = model.class_count_ > 0
    field = "medians" if model._medians is not None else "stats_sums"
    with np.errstate(all="ignore"):
        centres = model.centroids_[seen]
        norms = np.einsum("ij,ij->i", centres, centres)
        spread = np.concatenate(
            [model.within_class_std_dev_, [model.within_class_std_**2]]
        )
        mean_sq_norm = model._fitted_stats().mean_sq_norm()
    if not (np.isfinite(centres).all() and np.isfinite(norms).all()):
        refuse(field, "gives class means too large for distances in float64")
    if not np.isfinite(model.deviations_[seen]).all():
        refuse(field, "gives non-finite offsets of the class means")
    if not np.isfinite(spread).all():
        refuse("stats_sq_sums", "gives a non-finite within-class variance")
    if model.metric == "cosine" and not math.isfinite(mean_sq_norm):
        refuse("stats_sq_sums", "gives a non-finite mean squared norm")


def _flat(exc):
    return " ".join(str(exc).split())


def _check_shapes(path, arrays, shapes, n_classes, n_features):
    """Each array is float64 of its shape in ``shapes`` (one per name)."""
    for name, value in arrays.items():
        if value is None or value.dtype != np.float64 or value.shape != shapes[name]:
            what = (
                "is missing"
                if value is None
                else f"has shape {value.shape} and dtype {value.dtype}"
            )
            raise ValueError(
                f"{path} is a corrupt model file: the arrays do not fit together "
                f"({name} {what}, with {n_classes} classes and {n_features} "
                "features)."
            )


def _read_stats(arrays, path, n_classes, n_features):
    """The ClassStats stored in ``arrays``, checked against this sk_template."""
    stored = {
        name[len(_STATS) :]: value
        for name, value in arrays.items()
        if name.startswith(_STATS)
    }
    expected = [field.name for field in dataclasses.fields(ClassStats)]
    if sorted(stored) != sorted(expected):
        raise ValueError(
            f"{path} is a corrupt model file: it holds the statistics "
            f"{sorted(stored)}, but this sk_template needs {sorted(expected)}."
        )
    shapes = {
        "sums": (n_classes, n_features),
        "weights": (n_classes,),
        "sq_sums": (n_features,),
        "shift": (n_features,),
    }
    _check_shapes(path, stored, shapes, n_classes, n_features)
    return ClassStats(**stored)


def load_model(path, *, return_metadata=False):
    """Load a model written by :func:`save_model`, without running any code.

    The file is read as numpy's ``.npz`` format with pickles refused (as
    ``np.load(path, allow_pickle=False)`` would): only numbers and text come
    out of it.  A model fitted with a device this machine does not have
    (``device="cuda"`` on a machine without a GPU) loads with ``device="cpu"``
    and a warning.

    Parameters
    ----------
    path : str or path-like
        A file written by :func:`save_model`.

    return_metadata : bool, default=False
        Also return what the file says about itself.

    Returns
    -------
    model : NearestMeanImageClassifier
        The fitted model: it predicts exactly as the saved one did and can be
        updated with ``partial_fit``.

    metadata : dict
        Only when ``return_metadata`` is true: ``format_version`` (int),
        ``sk_template_version`` (str), ``image_shape`` (tuple of int, or
        None when it was not saved) and ``load_params`` (a dict of ``mode``,
        ``size`` (tuple or None) and ``resize``, or None when it was not
        saved).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If ``path`` is not a regular file (a FIFO, a device), is not a model
        file (a pickle of any protocol, another archive, anything else), is
        truncated or corrupt, holds numbers a model cannot predict with, or
        was written by a newer sk_template with a newer format version.  The
        message names the file and, for a bad number, the member.

    See Also
    --------
    save_model : Write a model file.

    Notes
    -----
    Files from anyone can be loaded: before any member is decompressed, its
    compression method must be one numpy writes (stored or deflate; bzip2,
    lzma and the rest are refused), its declared size must be what its
    ``.npy`` header's shape and dtype make, and deflated members may not
    expand to more than 20 times their compressed size plus 16 MiB in all.
    Reading a member stops at its declared size and checks its CRC.  Loading
    therefore takes memory in proportion to the file's size and its honest
    contents, and a crafted archive is refused in milliseconds.  Statistics
    that load but could not predict (infinite or NaN sums, sums so large the
    squared distances overflow float64, NaN or zero priors) are refused,
    naming the member; so are deeply nested or non-finite parameters, and
    anything that is not a regular file (checked after following symbolic
    links, before opening, so a FIFO cannot block).

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from sk_template import NearestMeanImageClassifier, load_model, save_model
    >>> X = np.array([[0, 0], [0, 10], [250, 250], [240, 255]], dtype=np.uint8)
    >>> clf = NearestMeanImageClassifier().fit(X, [3, 3, 7, 7])
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "model.npz")
    >>> path = save_model(clf, path, image_shape=(1, 2))
    >>> model, meta = load_model(path, return_metadata=True)
    >>> model.centroids_
    array([[  0. ,   5. ],
           [245. , 252.5]])
    >>> meta["image_shape"]
    (1, 2)
    >>> folder.cleanup()
    """
    path = _check_path(path)
    with _open_model_file(path) as f:
        _sniff(f, path)
        arrays = _read_archive(f, path)

    version = _scalar(arrays, "format_version", path, "iu")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} was written by a newer sk_template (format {version} > "
            f"{FORMAT_VERSION}); upgrade sk_template to load it."
        )
    if version < 1:
        raise ValueError(f"{path} is a corrupt model file: format_version={version}.")

    params = _json(arrays, "params", path)
    metadata = _json(arrays, "metadata", path) if "metadata" in arrays else {}
    classes = arrays["classes"]
    n_features = _scalar(arrays, "n_features_in", path, "iu")
    if classes.ndim != 1 or classes.dtype.kind not in "biufUS":
        raise ValueError(
            f"{path} is a corrupt model file: classes has dtype {classes.dtype} and "
            f"shape {classes.shape}."
        )
    if not np.array_equal(classes, np.unique(classes)):
        raise ValueError(
            f"{path} is a corrupt model file: its classes are not sorted and "
            "unique, so labels would be mixed up."
        )
    stats = _read_stats(arrays, path, classes.shape[0], n_features)
    for name, value in vars(stats).items():
        if not np.isfinite(value).all():
            raise ValueError(
                f"{path} is a corrupt model file: {_STATS}{name} holds non-finite "
                "values (inf or NaN)."
            )
    if (stats.weights < 0).any():
        raise ValueError(
            f"{path} is a corrupt model file: {_STATS}weights holds negative weights."
        )
    try:
        image_shape = _image_shape(metadata.get("image_shape"), int(n_features))
        load_params = _load_params(metadata.get("load_params"), image_shape)
    except ValueError as exc:
        raise ValueError(f"{path} is a corrupt model file: {_flat(exc)}") from None
    medians = None
    if "medians" in arrays:
        medians = (arrays["medians"], arrays.get("median_scatter"))
        _check_shapes(
            path,
            {"medians": medians[0], "median_scatter": medians[1]},
            {"medians": stats.sums.shape, "median_scatter": (n_features,)},
            classes.shape[0],
            n_features,
        )
        for name, value in zip(("medians", "median_scatter"), medians, strict=True):
            seen = value[stats.weights > 0] if value.ndim == 2 else value
            if not np.isfinite(seen).all():
                raise ValueError(
                    f"{path} is a corrupt model file: {name} holds non-finite "
                    "values (inf or NaN)."
                )

    params["device"] = runnable_device(
        params.get("device", "cpu"), f"The model in {path}"
    )
    try:
        model = NearestMeanImageClassifier(**params)
        model._validate_params()
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{path} has parameters this sk_template cannot use ({_flat(exc)})."
        ) from None
    model.n_features_in_ = int(n_features)
    if "feature_names_in" in arrays:
        names = arrays["feature_names_in"]
        if names.shape != (n_features,):
            raise ValueError(
                f"{path} is a corrupt model file: feature_names_in has shape "
                f"{names.shape}, expected ({n_features},)."
            )
        model.feature_names_in_ = names.astype(object)
    out = stats_out_of_range(stats)
    if out is not None:
        field, kind = out
        what = (
            f"{_STATS}{field} holds values past float64's range"
            if kind == "overflow"
            else f"{_STATS}sums and {_STATS}sq_sums disagree (a feature's "
            "deviations sum to non-zero, their squares to 0)"
        )
        raise ValueError(
            f"{path} is a corrupt model file: {what}, so the model could not "
            "predict. Save the model again from a model that was fitted on "
            "finite data."
        )
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            model._set_state(classes, stats, medians)
    except ValueError as exc:
        raise ValueError(f"{path} is a corrupt model file: {_flat(exc)}") from None
    _check_fitted_numbers(model, params, path)
    if not return_metadata:
        return model
    info = {
        "format_version": int(version),
        "sk_template_version": (
            _scalar(arrays, "sk_template_version", path, "U")
            if "sk_template_version" in arrays
            else None
        ),
        "image_shape": image_shape,
        "load_params": load_params,
    }
    return model, info
