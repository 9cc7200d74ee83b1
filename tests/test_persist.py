"""Tests of save_model / load_model: round trips and every way a file can be bad."""

# SPDX-License-Identifier: BSD-3-Clause

import bz2
import gzip
import io
import json
import os
import pickle
import warnings
import zipfile

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from sk_template import NearestMeanImageClassifier
from sk_template._persist import FORMAT_VERSION, load_model, save_model

METRICS = ["euclidean", "manhattan", "cosine"]
NAMES = np.array(list("0123456789"))


@pytest.fixture(scope="module")
def digits():
    """sklearn's 8x8 digits as uint8 images: a training and a test part."""
    X, y = load_digits(return_X_y=True)
    X = (X * 16).clip(0, 255).astype(np.uint8)
    return X[:1200], y[:1200], X[1200:], y[1200:]


@pytest.fixture
def model_file(tmp_path, digits):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    return save_model(clf, tmp_path / "model.npz", image_shape=(8, 8))


def _rewrite(path, **changes):
    """Rewrite the archive at ``path`` with some members replaced or removed."""
    with np.load(path, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    for name, value in changes.items():
        if value is None:
            arrays.pop(name)
        else:
            arrays[name] = value
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


# ----------------------------------------------------------------- round trips
@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("labels", ["int", "str"])
def test_round_trip_predicts_identically(tmp_path, digits, metric, labels):
    X, y, X_test, _ = digits
    if labels == "str":
        y = NAMES[y]
    clf = NearestMeanImageClassifier(metric=metric, batch_size=100).fit(X, y)
    path = save_model(clf, tmp_path / "model.npz")
    assert path == tmp_path / "model.npz"

    loaded = load_model(path)
    assert type(loaded) is NearestMeanImageClassifier
    assert loaded.get_params() == clf.get_params()
    assert_array_equal(loaded.classes_, clf.classes_)
    assert loaded.classes_.dtype == clf.classes_.dtype
    assert loaded.n_features_in_ == clf.n_features_in_ == 64
    assert_array_equal(loaded.centroids_, clf.centroids_)
    assert_array_equal(loaded.class_count_, clf.class_count_)
    assert loaded.within_class_std_ == clf.within_class_std_
    assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def test_every_parameter_round_trips(tmp_path, digits):
    X, y, X_test, _ = digits
    clf = NearestMeanImageClassifier(
        metric="manhattan",
        centroid="median",
        shrink_threshold=0.5,
        priors=[0.05] * 8 + [0.3, 0.3],
        batch_size=77,
    ).fit(X, y)
    loaded = load_model(save_model(clf, tmp_path / "model.npz"))
    assert loaded.get_params() == clf.get_params()
    assert_array_equal(loaded.centroids_, clf.centroids_)
    assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))
    # A median cannot be updated, before saving or after.
    assert not hasattr(loaded, "partial_fit")


def test_numpy_parameter_values_are_saved_as_lists(tmp_path, digits):
    X, y, X_test, _ = digits
    clf = NearestMeanImageClassifier(priors=np.full(10, 0.1)).fit(X, y)
    loaded = load_model(save_model(clf, tmp_path / "model.npz"))
    assert loaded.priors == [0.1] * 10
    assert_array_equal(loaded.predict_proba(X_test), clf.predict_proba(X_test))


def test_partial_fit_after_load_equals_fit_on_everything(tmp_path, digits):
    X, y, X_test, y_test = digits
    first = NearestMeanImageClassifier().partial_fit(X, y, classes=np.arange(10))
    loaded = load_model(save_model(first, tmp_path / "model.npz"))
    loaded.partial_fit(X_test, y_test)
    whole = NearestMeanImageClassifier().fit(
        np.concatenate([X, X_test]), np.concatenate([y, y_test])
    )
    np.testing.assert_allclose(loaded.centroids_, whole.centroids_, rtol=1e-12)
    assert_array_equal(loaded.class_count_, whole.class_count_)


def test_class_declared_but_not_seen_survives(tmp_path, digits):
    X, y, X_test, _ = digits
    keep = y < 9
    clf = NearestMeanImageClassifier().partial_fit(
        X[keep], y[keep], classes=np.arange(10)
    )
    loaded = load_model(save_model(clf, tmp_path / "model.npz"))
    assert np.isnan(loaded.centroids_[9]).all()
    assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def test_feature_names_and_metadata_round_trip(tmp_path, digits):
    X, y, X_test, _ = digits
    columns = [f"px{i}" for i in range(64)]
    clf = NearestMeanImageClassifier().fit(pd.DataFrame(X, columns=columns), y)
    path = save_model(clf, str(tmp_path / "model.npz"), image_shape=(8, 8))
    loaded, meta = load_model(path, return_metadata=True)
    assert_array_equal(loaded.feature_names_in_, columns)
    assert loaded.feature_names_in_.dtype == object
    assert meta == {
        "format_version": FORMAT_VERSION,
        "sk_template_version": __import__("sk_template").__version__,
        "image_shape": (8, 8),
        "load_params": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no feature-name warning
        assert_array_equal(
            loaded.predict(pd.DataFrame(X_test, columns=columns)),
            clf.predict(pd.DataFrame(X_test, columns=columns)),
        )
    _, meta = load_model(save_model(clf, path), return_metadata=True)
    assert meta["image_shape"] is None


def test_object_labels_that_are_all_strings_are_stored_as_text(tmp_path, digits):
    X, y, X_test, _ = digits
    clf = NearestMeanImageClassifier().fit(X, pd.Series(NAMES[y], dtype=object))
    assert clf.classes_.dtype == object
    loaded = load_model(save_model(clf, tmp_path / "model.npz"))
    assert loaded.classes_.dtype.kind == "U"
    assert_array_equal(loaded.predict(X_test), clf.predict(X_test))


def test_save_is_atomic_and_replaces(tmp_path, digits, monkeypatch):
    X, y, _, _ = digits
    path = tmp_path / "model.npz"
    path.write_bytes(b"old")
    save_model(NearestMeanImageClassifier().fit(X, y), path)
    assert load_model(path).n_features_in_ == 64
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_model(NearestMeanImageClassifier().fit(X, y), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_model_saved_for_cuda_loads_on_cpu_with_a_warning(model_file):
    params = json.dumps({"metric": "cosine", "device": "cuda", "batch_size": "auto"})
    _rewrite(model_file, params=np.array(params))
    with pytest.warns(UserWarning, match="device='cuda', which is not available"):
        loaded = load_model(model_file)
    assert loaded.device == "cpu"
    assert loaded.metric == "cosine"
    assert loaded.predict(np.zeros((1, 64), dtype=np.uint8)).shape == (1,)


def test_torch_device_parameter_is_saved_as_text(tmp_path, digits):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier(device=torch.device("cpu")).fit(X, y)
    assert load_model(save_model(clf, tmp_path / "m.npz")).device == "cpu"


# ------------------------------------------------------------ refusing to save
def test_save_refuses_unfitted_and_foreign_models(tmp_path):
    with pytest.raises(NotFittedError):
        save_model(NearestMeanImageClassifier(), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="NearestMeanImageClassifier; got dict"):
        save_model({}, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


def test_save_refuses_object_labels(tmp_path):
    X = np.array([[0, 0], [1, 1], [9, 9]], dtype=np.uint8)
    clf = NearestMeanImageClassifier().fit(X, [0, 1, 1])
    clf.classes_ = np.array([(0,), (1,)] + [None], dtype=object)[:2]
    with pytest.raises(ValueError, match=r"objects of type\(s\) \['tuple'\]"):
        save_model(clf, tmp_path / "m.npz")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    "shape, match",
    [
        ((8, 9), r"image_shape=\(8, 9\) holds 72 pixel values.*n_features_in_=64"),
        ((64,), "tuple of 2 or 3 positive integers"),
        ((8.0, 8.0), "tuple of 2 or 3 positive integers"),
        ("8x8", "tuple of 2 or 3 positive integers"),
        ((0, 8, 8), "tuple of 2 or 3 positive integers"),
    ],
)
def test_save_checks_image_shape(tmp_path, digits, shape, match):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    with pytest.raises(ValueError, match=match):
        save_model(clf, tmp_path / "m.npz", image_shape=shape)


# ------------------------------------------------------------------- bad files
def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such model file.*nope.npz"):
        load_model(tmp_path / "nope.npz")
    with pytest.raises(IsADirectoryError, match="is a folder, not a model file"):
        load_model(tmp_path)


@pytest.mark.parametrize("dump", ["pickle", "joblib", "joblib-compressed"])
def test_pickles_are_refused_and_explained(tmp_path, digits, dump):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    path = tmp_path / "model.pkl"
    if dump == "pickle":
        path.write_bytes(pickle.dumps(clf))
    else:
        joblib.dump(clf, path, compress=3 if dump == "joblib-compressed" else 0)
    with pytest.raises(ValueError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message
    assert "can run code when loaded" in message
    assert "joblib.load only if you trust it" in message
    assert "sk_template.save_model" in message
    # ...and joblib itself still loads it, for those who trust it.
    assert_array_equal(joblib.load(path).centroids_, clf.centroids_)


@pytest.mark.parametrize(
    "content, match",
    [
        (b"", "it is empty"),
        (b"hello, world\n", r"not an sk_template model file \(expected a .npz"),
        (gzip.compress(b"data"), "gzip-compressed data"),
        (bz2.compress(b"data"), "bz2-compressed data"),
        (b"\x93NUMPY\x01\x00" + b" " * 100, r"single numpy array \(.npy\)"),
    ],
)
def test_not_a_model_file(tmp_path, content, match):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as info:
        load_model(path)
    assert str(path) in str(info.value)


def test_other_npz_archive(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, a=np.arange(3))
    with pytest.raises(ValueError, match="not an sk_template model file .no format"):
        load_model(path)


@pytest.mark.parametrize("keep", [0.5, 0.9, 0.99])
def test_truncated_file(model_file, keep):
    data = model_file.read_bytes()
    model_file.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(ValueError, match="corrupt or truncated model file") as info:
        load_model(model_file)
    assert str(model_file) in str(info.value)


def test_corrupt_member_fails_its_checksum(model_file):
    data = bytearray(model_file.read_bytes())
    # Flip a byte inside the stored "sums" member's data.
    start = data.find(b"stats_sums.npy") + 200
    data[start] ^= 0xFF
    model_file.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupt or truncated model file"):
        load_model(model_file)


def test_newer_format_version_is_refused(model_file):
    _rewrite(model_file, format_version=np.array(FORMAT_VERSION + 1))
    with pytest.raises(
        ValueError,
        match=(
            rf"written by a newer sk_template \(format {FORMAT_VERSION + 1} > "
            rf"{FORMAT_VERSION}\); upgrade sk_template"
        ),
    ):
        load_model(model_file)


def test_object_array_member_is_refused_without_unpickling(model_file):
    _rewrite(model_file, classes=np.array([object()], dtype=object))
    with pytest.raises(ValueError, match="not a valid sk_template model file"):
        load_model(model_file)


@pytest.mark.parametrize("name", ["classes.npy", "classes"])
def test_duplicate_member_names_are_refused(model_file, name):
    """A second ``classes`` (zipfile reads the last, other tools the first):
    refused, whichever copy a reader would have taken."""
    buffer = io.BytesIO()
    np.save(buffer, np.arange(10) + 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name
        with zipfile.ZipFile(model_file, "a") as archive:
            archive.writestr(name, buffer.getvalue())
    with pytest.raises(ValueError, match="more than one member named 'classes'"):
        load_model(model_file)


@pytest.mark.parametrize(
    "changes, match",
    [
        (
            {"stats_sums": None},
            r"holds the statistics \['shift', 'sq_sums', 'weights'\]",
        ),
        ({"stats_extra": np.ones(10)}, "but this sk_template needs"),
        ({"format": np.array("something.else")}, "format 'something.else'"),
        ({"format_version": np.array("1")}, "'format_version' has dtype"),
        ({"format_version": np.array(0)}, "format_version=0"),
        ({"params": np.array("{not json")}, "'params' is not valid JSON"),
        ({"params": np.array("[1, 2]")}, "'params' is not a mapping"),
        ({"params": np.array('{"colour": 1}')}, "parameters this sk_template can"),
        ({"params": np.array('{"metric": "bogus"}')}, "'metric' parameter"),
        ({"stats_weights": np.ones(3)}, "the arrays do not fit together"),
        ({"stats_weights": np.ones(64)}, r"weights has shape \(64,\)"),
        ({"stats_sums": np.ones((10, 64), dtype=np.float32)}, "do not fit together"),
        ({"stats_weights": np.zeros(10)}, "corrupt model file: sample_weight is zero"),
        ({"medians": np.ones((10, 64))}, r"median_scatter is missing"),
        (
            {"classes": np.ones((10, 2))},
            r"classes has dtype float64 and shape \(10, 2\)",
        ),
        ({"feature_names_in": np.array(["a"])}, "feature_names_in has shape"),
    ],
)
def test_inconsistent_archive(model_file, changes, match):
    _rewrite(model_file, **changes)
    with pytest.raises(ValueError, match=match) as info:
        load_model(model_file)
    assert str(model_file) in str(info.value)


def test_huge_integer_in_params_names_the_file(model_file):
    _rewrite(model_file, params=np.array('{"batch_size": ' + "9" * 5000 + "}"))
    with pytest.raises(ValueError, match="number too long to read") as info:
        load_model(model_file)
    assert str(model_file) in str(info.value)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_save_to_a_full_device_names_it(digits):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    with pytest.raises(OSError, match="No space left on device: '/dev/full'"):
        save_model(clf, "/dev/full")


def test_full_disk_names_the_file(tmp_path, digits, monkeypatch):
    """ENOSPC while writing the temporary file: the error names the file
    asked for, and neither it nor a temporary is left."""
    import errno

    from sk_template.datasets import _atomic

    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    real_fsync = os.fsync

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_atomic.os, "fsync", full)
    target = tmp_path / "model.npz"
    with pytest.raises(OSError, match="No space left on device") as info:
        save_model(clf, target)
    assert info.value.filename == str(target)
    monkeypatch.setattr(_atomic.os, "fsync", real_fsync)
    assert os.listdir(tmp_path) == []


def test_path_type_is_checked():
    with pytest.raises(TypeError, match="path must be a str or path-like"):
        load_model(3.5)


def test_member_that_is_not_an_array_is_a_clear_error(model_file):
    with np.load(model_file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files if name != "format"}
    with open(model_file, "wb") as f:
        np.savez(f, **arrays)
    with zipfile.ZipFile(model_file, "a") as archive:
        archive.writestr("format", b"not an npy member")
    with pytest.raises(ValueError, match="member 'format' is not an array"):
        load_model(model_file)


def test_unknown_member_is_never_read(model_file):
    # An .npy header claiming 10**11 float64 (745 GiB): reading it would fail.
    member = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        member, {"descr": "<f8", "fortran_order": False, "shape": (10**11,)}
    )
    with zipfile.ZipFile(model_file, "a") as archive:
        archive.writestr("huge.npy", member.getvalue())
    model = load_model(model_file)
    assert model.n_features_in_ == 64


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"classes": np.arange(10)[::-1].copy()}, "not sorted and unique"),
        ({"metadata": np.array(json.dumps({"image_shape": 5}))}, "image_shape"),
        ({"metadata": np.array(json.dumps({"image_shape": [7, 7]}))}, "49 pixel"),
    ],
)
def test_inconsistent_labels_and_metadata_are_refused(model_file, changes, match):
    _rewrite(model_file, **changes)
    with pytest.raises(ValueError, match=match):
        load_model(model_file)


# ------------------------------------------------- how the images were loaded
def test_load_params_round_trip(tmp_path, digits):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    params = {"mode": "L", "size": (8, 8), "resize": "crop"}
    path = save_model(clf, tmp_path / "m.npz", image_shape=(8, 8), load_params=params)
    _, meta = load_model(path, return_metadata=True)
    assert meta["load_params"] == params
    assert isinstance(meta["load_params"]["size"], tuple)
    unsized = {"mode": "L", "size": None, "resize": "stretch"}
    path = save_model(clf, path, image_shape=(8, 8), load_params=unsized)
    assert load_model(path, return_metadata=True)[1]["load_params"] == unsized


def test_files_without_load_params_still_load(model_file):
    """Files written before load_params existed: metadata has image_shape only."""
    _rewrite(model_file, metadata=np.array(json.dumps({"image_shape": [8, 8]})))
    _, meta = load_model(model_file, return_metadata=True)
    assert meta["load_params"] is None and meta["image_shape"] == (8, 8)


@pytest.mark.parametrize(
    "params, match",
    [
        ({"mode": "RGB", "size": (8, 8), "resize": "crop"}, "cannot give images"),
        ({"mode": "L", "size": (4, 16), "resize": "crop"}, "cannot give images"),
        ({"mode": "L", "size": (8, 8), "resize": "squash"}, "resize must be"),
        ({"mode": "HSV", "size": None, "resize": "crop"}, "mode must be"),
        ({"mode": "L", "size": (8, 8.0), "resize": "crop"}, "size must be"),
        ({"mode": "L", "size": None}, "the keys 'mode', 'size' and 'resize'"),
        ("L", "the keys 'mode', 'size' and 'resize'"),
    ],
)
def test_bad_load_params_are_refused_on_save_and_load(
    tmp_path, digits, model_file, params, match
):
    X, y, _, _ = digits
    clf = NearestMeanImageClassifier().fit(X, y)
    with pytest.raises(ValueError, match=match):
        save_model(clf, tmp_path / "m.npz", image_shape=(8, 8), load_params=params)
    assert not (tmp_path / "m.npz").exists()
    metadata = {"image_shape": [8, 8], "load_params": params}
    _rewrite(model_file, metadata=np.array(json.dumps(metadata)))
    with pytest.raises(ValueError, match=f"corrupt model file: .*{match}"):
        load_model(model_file)
