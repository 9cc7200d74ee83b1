"""Save and load fitted models in a file format that cannot run code when loaded.

A fitted :class:`~sk_template.NearestMeanImageClassifier` is a few numpy arrays
(per-class sums and weights, the labels) and its parameters, so it is stored
as a plain ``.npz`` archive of arrays, read back
with ``np.load(..., allow_pickle=False)``: loading a model file reads numbers
and text, never code.  A pickle (what ``joblib.dump`` writes) can run any code
when it is loaded; :func:`load_model` recognises one and refuses it.

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
import json
import math
import os
import warnings
import zipfile
import zlib
from numbers import Integral
from pathlib import Path

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._classifier import NearestMeanImageClassifier
from ._core import ClassStats, device_available
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

    Parameters
    ----------
    model : NearestMeanImageClassifier
        A fitted model.

    path : str or path-like
        The file to write, used exactly as given (``.npz`` is the usual
        extension but is not added).  An existing file is replaced.

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
    for field in dataclasses.fields(model._stats):
        value = getattr(model._stats, field.name)
        arrays[_STATS + field.name] = np.asarray(value, dtype=np.float64)
    medians = getattr(model, "_medians", None)
    if medians is not None:
        arrays["medians"] = np.asarray(medians[0], dtype=np.float64)
        arrays["median_scatter"] = np.asarray(medians[1], dtype=np.float64)
    if hasattr(model, "feature_names_in_"):
        arrays["feature_names_in"] = np.asarray(model.feature_names_in_).astype(np.str_)
    return write_atomic(path, lambda f: np.savez(f, **arrays))


def _sniff(path):
    """Raise a clear ValueError when ``path`` is not an ``.npz`` archive."""
    with open(path, "rb") as f:
        head = f.read(8)
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
    raise ValueError(
        f"{path} is not an sk_template model file (expected a .npz archive "
        "written by sk_template.save_model)."
    )


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


def _known(name):
    return name in _MEMBERS or name.startswith(_STATS)


def _read_archive(path):
    """The members of the archive at ``path`` as a dict of arrays."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            # Only the members a model file has are read: an unknown one (say,
            # a header claiming a huge shape) is never loaded.
            arrays = {name: npz[name] for name in npz.files if _known(name)}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, MemoryError) as exc:
        raise ValueError(
            f"{path} is a corrupt or truncated model file ({exc}); save the model "
            "again."
        ) from exc
    except ValueError as exc:
        # np.load refuses object arrays (which need pickle) with a ValueError.
        raise ValueError(
            f"{path} is not a valid sk_template model file: {exc}"
        ) from exc
    for name, value in arrays.items():
        if not isinstance(value, np.ndarray):  # a member not written by np.save
            raise ValueError(
                f"{path} is a corrupt model file: member {name!r} is not an array."
            )
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
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"{path} is a corrupt model file: {name!r} is not valid JSON ({exc})."
        ) from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} is a corrupt model file: {name!r} is not a mapping.")
    return value


def _flat(exc):
    return " ".join(str(exc).split())


def _check_shapes(path, arrays, n_classes, n_features):
    """Each array is float64 of shape (n_features,), (n_classes,) or both."""
    allowed = {(n_features,), (n_classes,), (n_classes, n_features)}
    for name, value in arrays.items():
        if value is None or value.dtype != np.float64 or value.shape not in allowed:
            what = "missing" if value is None else f"{value.dtype} {value.shape}"
            raise ValueError(
                f"{path} is a corrupt model file: the arrays do not fit together "
                f"({name} is {what}, with {n_classes} classes and {n_features} "
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
    _check_shapes(path, stored, n_classes, n_features)
    fixed = {"sums": (n_classes, n_features), "weights": (n_classes,)}
    for name, shape in fixed.items():
        if name in stored and stored[name].shape != shape:
            raise ValueError(
                f"{path} is a corrupt model file: the arrays do not fit together "
                f"({name} has shape {stored[name].shape}, with {n_classes} classes "
                f"and {n_features} features)."
            )
    return ClassStats(**stored)


def load_model(path, *, return_metadata=False):
    """Load a model written by :func:`save_model`, without running any code.

    The file is read with ``np.load(path, allow_pickle=False)``: only numbers
    and text come out of it.  A model fitted with a device this machine does
    not have (``device="cuda"`` on a machine without a GPU) loads with
    ``device="cpu"`` and a warning.

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
    ValueError
        If ``path`` is not a model file (a pickle, another archive, anything
        else), is truncated or corrupt, or was written by a newer sk_template
        with a newer format version.  The message names the file.

    See Also
    --------
    save_model : Write a model file.

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
    if not path.exists():
        raise FileNotFoundError(f"No such model file: {str(path)!r}.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder, not a model file.")
    _sniff(path)
    arrays = _read_archive(path)

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
    if (
        not all(np.isfinite(a).all() for a in vars(stats).values())
        or (stats.weights < 0).any()
    ):
        raise ValueError(
            f"{path} is a corrupt model file: its statistics hold non-finite "
            "values or negative weights."
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
            classes.shape[0],
            n_features,
        )

    device = params.get("device", "cpu")
    if not device_available(device):
        warnings.warn(
            f"The model in {path} was fitted with device={device!r}, which is not "
            "available here; it will run on the CPU (device='cpu').",
            UserWarning,
            stacklevel=2,
        )
        params["device"] = "cpu"
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
    try:
        model._set_state(classes, stats, medians)
    except ValueError as exc:
        raise ValueError(f"{path} is a corrupt model file: {_flat(exc)}") from None
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
