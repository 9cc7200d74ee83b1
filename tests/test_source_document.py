"""The source document's result, reproduced on real MNIST from ../shared/data/mnist.

The source document (fastbook chapter 4) averages the training 3s and 7s of
fastai's ``mnist_sample`` and calls each validation image whichever average is
closer in mean absolute difference: 0.9168 of the 3s and 0.9854 of the 7s are
right. Here ``mnist_sample`` is built from the MNIST IDX files by
``fetch_mnist`` (through a ``file://`` URL, checksums checked), loaded by
``load_image_folder`` and classified by ``NearestMeanImageClassifier``.
Skipped when the MNIST files are absent.
"""

from pathlib import Path

import numpy as np
import pytest

from sk_template.datasets import _decode, fetch_mnist, load_image_folder, read_idx

MNIST = Path(__file__).parents[1].parent / "shared" / "data" / "mnist"
pytestmark = pytest.mark.skipif(
    not (MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason=f"real MNIST not found in {MNIST}",
)


@pytest.fixture(scope="session")
def mnist_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("mnist_home")
    fetch_mnist(home, layout="sample", base_url=MNIST.as_uri())
    return home


@pytest.fixture(scope="session")
def sample(mnist_home):
    root = mnist_home / "mnist_sample"
    kwargs = {"data_home": mnist_home, "verbose": False}
    return (
        load_image_folder(root, split="train", **kwargs),
        load_image_folder(root, split="valid", **kwargs),
    )


def scale(X):
    return X / 255


def test_mnist_sample_is_fastais(mnist_home, sample):
    train, valid = sample
    assert np.bincount(train.target).tolist()[3::4] == [6131, 6265]
    assert np.bincount(valid.target).tolist()[3::4] == [1010, 1028]
    assert train.data.shape == (12396, 784) and train.images.shape[1:] == (28, 28)
    np.testing.assert_array_equal(train.target_names, [3, 7])
    labels_csv = (mnist_home / "mnist_sample" / "labels.csv").read_text().splitlines()
    assert labels_csv[0] == "name,label" and len(labels_csv) == 1 + 12396 + 2038


def test_pixels_are_the_idx_files(sample):
    """PNG folders are lossless: the loaded pixels are the IDX pixels, in order."""
    train, valid = sample
    for bunch, prefix in ((train, "train"), (valid, "t10k")):
        images = read_idx(MNIST / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(MNIST / f"{prefix}-labels-idx1-ubyte.gz")
        expected = np.concatenate([images[labels == 3], images[labels == 7]])
        np.testing.assert_array_equal(bunch.images, expected)


@pytest.mark.parametrize("dtype", ["uint8", "float32"])
def test_source_document_accuracy(mnist_home, dtype):
    from sk_template import NearestMeanImageClassifier

    root = mnist_home / "mnist_sample"
    kwargs = {"data_home": mnist_home, "dtype": dtype, "verbose": False}
    train = load_image_folder(root, split="train", **kwargs)
    valid = load_image_folder(root, split="valid", **kwargs)
    clf = NearestMeanImageClassifier(metric="manhattan").fit(train.data, train.target)
    pred = clf.predict(valid.data)
    assert pred.dtype.kind == "i"  # predicts 3 and 7, not "3" or 0/1
    acc3 = np.mean(pred[valid.target == 3] == 3)
    acc7 = np.mean(pred[valid.target == 7] == 7)
    assert (round(acc3, 4), round(acc7, 4)) == (0.9168, 0.9854)


def test_source_document_in_a_pipeline(sample):
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    from sk_template import NearestMeanImageClassifier

    train, valid = sample
    X = np.concatenate([train.data, valid.data])
    y = np.concatenate([train.target, valid.target])
    pipe = make_pipeline(
        FunctionTransformer(scale), NearestMeanImageClassifier(metric="manhattan")
    )
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(pipe, X, y, cv=cv)
    # Measured: folds 0.943 to 0.948, mean 0.9456; the two classes are ~50/50.
    assert np.all((scores > 0.93) & (scores < 0.96)), scores
    assert scores.mean() == pytest.approx(0.9456, abs=1e-3)


def test_decoders_agree_on_real_mnist(mnist_home, monkeypatch):
    pytest.importorskip("pyspng")
    root = mnist_home / "mnist_sample"
    kwargs = {"split": "valid", "cache": False, "verbose": False}
    fast = load_image_folder(root, **kwargs)
    monkeypatch.setattr(_decode, "USE_PYSPNG", False)
    slow = load_image_folder(root, **kwargs)
    np.testing.assert_array_equal(fast.data, slow.data)
