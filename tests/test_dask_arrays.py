"""Dask arrays in and out, on dask's local (threaded) scheduler:
image_folder_to_dask, and the estimator's methods given dask arrays."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError

from sk_template import NearestMeanImageClassifier, fit_dask
from sk_template.datasets import (
    ImageDecodeError,
    SkippedImagesWarning,
    _decode,
    image_folder_to_dask,
    list_classes,
    load_image_folder,
    write_image_folder,
)

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

pytestmark = pytest.mark.usefixtures("quiet_local_home")

METHODS = ["predict", "predict_proba", "predict_log_proba", "decision_function"]
METHODS += ["transform"]


@pytest.fixture(autouse=True)
def _threads():
    """The local threaded scheduler, whatever client another test left."""
    with dask.config.set(scheduler="threads"):
        yield


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    return np.rint(d.images * (255 / 16)).astype(np.uint8), d.target


@pytest.fixture
def folder(tmp_path, digits):
    images, labels = digits
    return write_image_folder(images[:300], labels[:300], tmp_path / "digits")


def png(array):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, "PNG")
    return buf.getvalue()


# ------------------------------------------------------- image_folder_to_dask
def test_image_folder_to_dask_is_load_image_folder_in_blocks(folder):
    bunch = load_image_folder(folder, cache=False)
    X, y = image_folder_to_dask(folder, chunk_size=64)
    assert X.chunks == ((64, 64, 64, 64, 44), (64,))
    assert y.chunks == ((64, 64, 64, 64, 44),)
    assert X.dtype == np.uint8 and y.dtype == bunch.target.dtype
    np.testing.assert_array_equal(X.compute(), bunch.data)
    np.testing.assert_array_equal(y.compute(), bunch.target)
    X32, _ = image_folder_to_dask(folder, dtype="float32", mode="RGB", size=(4, 4))
    expected = load_image_folder(
        folder, dtype="float32", mode="RGB", size=(4, 4), cache=False
    ).data
    assert X32.chunks[0] == (300,)  # "auto": all of them fit in 128 MiB
    np.testing.assert_array_equal(X32.compute(), expected)


def test_blocks_decode_their_files_when_computed(folder, monkeypatch):
    decoded = []
    real = _decode.decode_bytes
    monkeypatch.setattr(
        _decode,
        "decode_bytes",
        lambda data, **k: decoded.append(k["path"]) or real(data, **k),
    )
    X, y = image_folder_to_dask(folder, chunk_size=100)
    assert len(decoded) == 1  # the first image, for the shape
    y.compute()
    assert len(decoded) == 1  # the labels come from the listing
    X.blocks[1].compute()
    assert len(decoded) == 101
    assert sorted(decoded[1:]) == sorted(
        load_image_folder(folder, cache=False).filenames[100:200]
    )


def test_a_bad_file_fails_its_block_or_is_left_out(folder, digits, caplog):
    images, labels = digits
    bad = folder / str(labels[250]) / "zz.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\ntruncated")
    X, y = image_folder_to_dask(folder, chunk_size=64)  # nothing decoded yet
    with pytest.raises(ImageDecodeError, match="zz.png"):
        X.compute()
    X, y = image_folder_to_dask(folder, chunk_size=64, on_error="skip")
    assert np.isnan(X.shape[0]) and all(np.isnan(c) for c in X.chunks[0])
    assert X.numblocks == (5, 1) and y.numblocks == (5,)
    with caplog.at_level("WARNING", logger="sk_template.datasets"):
        Xc, yc = dask.compute(X, y)
    (record,) = caplog.records  # one block skipped a file
    assert "Skipped 1 unreadable image file(s) of a block" in record.getMessage()
    assert "zz.png" in record.getMessage()
    with pytest.warns(SkippedImagesWarning):
        local = load_image_folder(folder, on_error="skip", cache=False)
    np.testing.assert_array_equal(Xc, local.data)
    np.testing.assert_array_equal(yc, local.target)
    # Blocks of unknown length still fit and score, paired with their labels.
    model = fit_dask(NearestMeanImageClassifier(), X, y, classes=list_classes(folder))
    reference = NearestMeanImageClassifier().fit(local.data, local.target)
    np.testing.assert_allclose(model.centroids_, reference.centroids_)
    assert model.score(X, y) == reference.score(local.data, local.target)
    with pytest.raises(ValueError, match="unknown chunk sizes"):
        model.score(X, local.target)
    # And once computed, the chunk sizes are known, as for any dask array.
    X, y = dask.persist(X, y)
    X.compute_chunk_sizes()
    y.compute_chunk_sizes()
    assert sum(X.chunks[0]) == len(local.data) and y.chunks == (X.chunks[0],)
    model = fit_dask(NearestMeanImageClassifier(), X, y)
    np.testing.assert_allclose(model.centroids_, reference.centroids_)
    assert model.score(X, local.target) == reference.score(local.data, local.target)


def test_image_folder_to_dask_refuses_what_it_cannot_do(folder, tmp_path):
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        image_folder_to_dask(folder, chunk_size=0)
    with pytest.raises(FileNotFoundError):
        image_folder_to_dask(tmp_path / "nowhere")
    for name in ("a", "b"):
        (tmp_path / "bad" / name).mkdir(parents=True)
        (tmp_path / "bad" / name / "0.png").write_bytes(b"nope")
    with pytest.raises(ImageDecodeError, match="0.png"):
        image_folder_to_dask(tmp_path / "bad")
    with pytest.raises(ImageDecodeError, match="none of the 2 image files"):
        image_folder_to_dask(tmp_path / "bad", on_error="skip")


def test_image_folder_to_dask_from_a_memory_folder(digits):
    fsspec = pytest.importorskip("fsspec")
    images, labels = digits
    fs = fsspec.filesystem("memory")
    for i in range(40):
        fs.pipe_file(f"/dask-digits/{labels[i]}/{i}.png", png(images[i]))
    try:
        X, y = image_folder_to_dask("memory://dask-digits", chunk_size=16)
        bunch = load_image_folder("memory://dask-digits", cache=False)
        np.testing.assert_array_equal(X.compute(), bunch.data)
        np.testing.assert_array_equal(y.compute(), bunch.target)
    finally:
        fs.rm("/dask-digits", recursive=True)


def test_dask_ml_takes_the_arrays(folder):
    pytest.importorskip("dask_ml")
    from dask_ml.metrics import accuracy_score
    from dask_ml.wrappers import Incremental

    X, y = image_folder_to_dask(folder, chunk_size=100)
    inc = Incremental(NearestMeanImageClassifier()).fit(
        X, y, classes=list_classes(folder)
    )
    bunch = load_image_folder(folder, cache=False)
    reference = NearestMeanImageClassifier().fit(bunch.data, bunch.target)
    np.testing.assert_allclose(inc.estimator_.centroids_, reference.centroids_)
    assert accuracy_score(y, inc.estimator_.predict(X)) == reference.score(
        bunch.data, bunch.target
    )


# ------------------------------------------------------- methods on dask arrays
@pytest.fixture(scope="module")
def fitted(digits):
    images, labels = digits
    X = images.reshape(len(images), -1)
    return X, labels, NearestMeanImageClassifier().fit(X, labels)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_methods_on_dask_arrays_equal_numpy(digits, method, metric):
    images, labels = digits
    X = images.reshape(len(images), -1)
    clf = NearestMeanImageClassifier(metric=metric).fit(
        X, labels % (2 + (metric == "cosine") * 8)
    )
    Xd = da.from_array(X, chunks=(250, 32))  # column chunks are merged
    out = getattr(clf, method)(Xd)
    expected = getattr(clf, method)(X)
    assert isinstance(out, da.Array) and isinstance(expected, np.ndarray)
    assert out.dtype == expected.dtype and out.shape == expected.shape
    assert out.chunks[0] == (250,) * 7 + (47,)
    assert out.numblocks[1:] == (1,) * (out.ndim - 1)
    result = out.compute()
    if expected.dtype.kind == "f":
        np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-9)
    else:
        np.testing.assert_array_equal(result, expected)


def test_the_model_is_one_key_of_the_graph(fitted):
    from dask.core import get_dependencies

    X, y, clf = fitted
    Xd = da.from_array(X, chunks=(100, -1))
    pred = clf.predict_proba(Xd)
    graph = dict(pred.__dask_graph__())
    models = [
        key
        for key, value in graph.items()
        if isinstance(getattr(value, "value", value), NearestMeanImageClassifier)
    ]
    assert len(models) == 1
    (model_key,) = models
    tasks = [key for key in graph if key[0] == pred.name]
    assert len(tasks) == Xd.numblocks[0] == 18
    for key in tasks:
        assert model_key in get_dependencies(graph, key)
    # And the tasks themselves hold no copy of the centroids: each is small.
    import pickle

    centroid_bytes = clf.centroids_.nbytes
    for key in tasks:
        assert len(pickle.dumps(graph[key])) < centroid_bytes / 4


def test_methods_are_lazy_and_use_the_model_as_it_was(fitted, digits):
    X, y, clf = fitted

    def explode(block):
        raise RuntimeError("computed")

    Xd = da.from_array(X, chunks=(600, -1))
    poisoned = Xd.map_blocks(explode, dtype=X.dtype)
    lazy = clf.predict(poisoned)  # nothing is computed
    with pytest.raises(RuntimeError, match="computed"):
        lazy.compute()
    model = NearestMeanImageClassifier().fit(X, y)
    before = model.predict(Xd)
    model.fit(X, (y + 1) % 10)  # refitted before the graph runs
    np.testing.assert_array_equal(before.compute(), clf.predict(X))


def test_wrong_input_on_dask_arrays(fitted):
    X, y, clf = fitted
    Xd = da.from_array(X, chunks=(600, -1))
    with pytest.raises(NotFittedError):
        NearestMeanImageClassifier().predict(Xd)
    with pytest.raises(ValueError, match="X has 32 features, but .* expecting 64"):
        clf.predict(Xd[:, :32])
    with pytest.raises(ValueError, match="Expected a 2D dask array"):
        clf.predict(Xd[:, 0])
    with pytest.raises(ValueError, match="must hold numbers"):
        clf.predict(Xd.astype(str))


def test_score_on_dask_arrays(fitted):
    X, y, clf = fitted
    Xd = da.from_array(X, chunks=(500, -1))
    w = np.arange(len(y)) % 4
    assert clf.score(Xd, y) == clf.score(X, y)
    assert clf.score(Xd, da.from_array(y, chunks=333)) == clf.score(X, y)
    assert clf.score(Xd, y, sample_weight=w) == pytest.approx(
        clf.score(X, y, sample_weight=w), abs=1e-15
    )
    assert clf.score(Xd, y, sample_weight=da.from_array(w, chunks=100)) == (
        pytest.approx(clf.score(X, y, sample_weight=w), abs=1e-15)
    )
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        clf.score(Xd, y[:-1])
    with pytest.raises(ValueError, match="sum to zero"):
        clf.score(Xd, y, sample_weight=np.zeros(len(y)))


def test_numpy_in_numpy_out(fitted):
    X, y, clf = fitted
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in METHODS:
            assert type(getattr(clf, method)(X)) is np.ndarray
