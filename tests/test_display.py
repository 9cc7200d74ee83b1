"""Pictures in Python: ClassMeansDisplay (scikit-learn's Display idiom) and
scikit-learn's own ConfusionMatrixDisplay with our estimator."""

# SPDX-License-Identifier: BSD-3-Clause

import sys

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import NearestCentroid
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from sk_template import ClassMeansDisplay, NearestMeanImageClassifier
from sk_template.cli import _pictures

pytest.importorskip("matplotlib")
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# scikit-learn's 8x8 digits as stored images are: uint8, 0..255.
DIGITS = load_digits()
X = np.rint(DIGITS.data * (255 / 16)).astype(np.uint8)
y = DIGITS.target


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def clf():
    return NearestMeanImageClassifier().fit(X, y)


def shown_grey(image):
    """The grey level (0 black .. 1 white) matplotlib paints for each pixel."""
    rgba = image.to_rgba(image.get_array(), norm=True)
    return rgba[..., 0]


def test_from_estimator_draws_one_captioned_tile_per_class(clf):
    disp = ClassMeansDisplay.from_estimator(clf, image_shape=(8, 8))
    assert isinstance(disp, ClassMeansDisplay)
    assert disp.axes_.shape == (2, 5)  # 10 classes: two even rows, not 6 + 4
    assert len(disp.images_) == 10
    labels = [ax.get_xlabel() for ax in disp.axes_.flat]
    assert labels == [f"ideal {k}" for k in range(10)]
    assert disp.figure_ is disp.axes_[0, 0].figure
    assert disp.bounding_ax_ is not None and not disp.bounding_ax_.axison
    for k, image in enumerate(disp.images_):
        mean = clf.centroids_[k].reshape(8, 8)
        grey = shown_grey(image)
        # The book's "Greys": 255 (ink) is black, 0 (paper) is white.
        np.testing.assert_allclose(grey, 1 - mean / 255, atol=0.5 / 255 + 1e-9)
        assert grey.min() < 0.15 and grey.max() == 1.0


def test_python_and_cli_pictures_look_alike(clf):
    """The tiles of the CLI's PNG are the Display's tiles, pixel for pixel."""
    png = np.asarray(_pictures.render_means(clf, (8, 8), scale=1))
    disp = ClassMeansDisplay.from_estimator(clf, image_shape=(8, 8))
    n_cols = disp.axes_.shape[1]
    for k, image in enumerate(disp.images_):
        row, col = divmod(k, n_cols)
        x = _pictures._PAD + col * (8 + _pictures._PAD)
        y0 = _pictures._PAD + row * (8 + _pictures._LABEL_HEIGHT + _pictures._PAD)
        cli_tile = png[y0 : y0 + 8, x : x + 8, 0] / 255
        np.testing.assert_allclose(shown_grey(image), cli_tile, atol=1e-6)


def test_gray_keeps_values_as_stored(clf):
    disp = ClassMeansDisplay.from_estimator(clf, image_shape=(8, 8), cmap="gray")
    mean = clf.centroids_[0].reshape(8, 8)
    grey = shown_grey(disp.images_[0])
    np.testing.assert_allclose(grey, mean / 255, atol=0.5 / 255 + 1e-9)


def test_differences(clf):
    disp = ClassMeansDisplay.from_estimator(
        clf, image_shape=(8, 8), differences=[(3, 7), (7, 3)]
    )
    assert len(disp.images_) == 12
    assert disp.axes_.shape == (2, 6)
    assert [ax.get_xlabel() for ax in disp.axes_.flat][10:] == ["3 - 7", "7 - 3"]
    diff = disp.images_[10].get_array()
    expected = (clf.centroids_[3] - clf.centroids_[7]).reshape(8, 8)
    np.testing.assert_allclose(diff, expected)
    np.testing.assert_allclose(disp.images_[11].get_array(), -expected)
    vmin, vmax = disp.images_[10].get_clim()
    assert vmin == -vmax == -np.abs(expected).max()  # white where they agree
    with pytest.raises(ValueError, match=r"class 4\.5.*not one of the classes"):
        ClassMeansDisplay.from_estimator(clf, differences=[(3, 4.5)])


def test_a_single_ax_is_divided_and_an_array_is_used(clf):
    fig, (left, right) = plt.subplots(1, 2)
    disp = ClassMeansDisplay.from_estimator(clf, ax=right, columns=5)
    assert disp.bounding_ax_ is right and not right.axison
    assert disp.figure_ is fig and disp.axes_.shape == (2, 5)
    assert left.axison  # untouched

    fig, axes = plt.subplots(3, 4)
    disp = ClassMeansDisplay.from_estimator(clf, ax=axes)
    assert disp.bounding_ax_ is None and disp.axes_ is not None
    assert disp.axes_.shape == (3, 4)
    assert [ax.axison for ax in axes.flat] == [True] * 10 + [False] * 2
    with pytest.raises(ValueError, match="ax holds 4 Axes, but there are 10 tiles"):
        ClassMeansDisplay.from_estimator(clf, ax=axes[0])


def test_scaled_and_uint8_pixels_draw_the_same(clf):
    scaled = NearestMeanImageClassifier().fit(X / 255, y)
    a = ClassMeansDisplay.from_estimator(clf)
    b = ClassMeansDisplay.from_estimator(scaled)
    for ia, ib in zip(a.images_, b.images_, strict=True):
        np.testing.assert_array_equal(ia.get_array(), ib.get_array())


def test_colour_means_are_drawn_in_colour():
    rng = np.random.default_rng(0)
    red = np.zeros((20, 4, 5, 3), np.uint8)
    red[..., 0] = rng.integers(200, 256, size=(20, 4, 5))
    blue = np.zeros((20, 4, 5, 3), np.uint8)
    blue[..., 2] = 250
    Xc = np.concatenate([red, blue]).reshape(40, -1)
    model = NearestMeanImageClassifier().fit(Xc, ["red"] * 20 + ["blue"] * 20)
    disp = ClassMeansDisplay.from_estimator(model, image_shape=(4, 5, 3))
    blue_tile, red_tile = (im.get_array() for im in disp.images_)  # sorted labels
    assert blue_tile.shape == (4, 5, 3)
    assert np.all(blue_tile[..., 2] == 250) and np.all(blue_tile[..., :2] == 0)
    assert np.all(red_tile[..., 0] >= 200) and np.all(red_tile[..., 1:] == 0)


@pytest.mark.filterwarnings("ignore:self.within_class_std_dev_:UserWarning")
def test_nearest_centroid_works_too():
    nc = NearestCentroid().fit(X, y)
    disp = ClassMeansDisplay.from_estimator(nc)
    assert len(disp.images_) == 10


def test_errors_name_the_fix(clf, monkeypatch):
    with pytest.raises(NotFittedError):
        ClassMeansDisplay.from_estimator(NearestMeanImageClassifier())
    pipe = make_pipeline(StandardScaler(), NearestMeanImageClassifier()).fit(X, y)
    with pytest.raises(TypeError, match=r"got Pipeline.*pipe\[-1\]"):
        ClassMeansDisplay.from_estimator(pipe)
    odd = NearestMeanImageClassifier().fit(X[:, :60], y)
    with pytest.raises(ValueError, match="60 features, not a square.*image_shape"):
        ClassMeansDisplay.from_estimator(odd)
    with pytest.raises(ValueError, match="image shape 4x4 holds 16 pixel values"):
        ClassMeansDisplay.from_estimator(clf, image_shape=(4, 4))
    with pytest.raises(ValueError, match="cmap must be 'greys' or 'gray'"):
        ClassMeansDisplay.from_estimator(clf, cmap="viridis")
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"sk_template\[plot\]"):
        ClassMeansDisplay.from_estimator(clf)


def test_confusion_matrix_display_works_with_the_estimator():
    """scikit-learn's own ConfusionMatrixDisplay needs nothing from us."""
    from sklearn.metrics import ConfusionMatrixDisplay, confusion_matrix

    names = np.array(["zero", "one", "two"])[y[y < 3]]
    model = NearestMeanImageClassifier().fit(X[y < 3][::2], names[::2])
    X_test, y_test = X[y < 3][1::2], names[1::2]
    disp = ConfusionMatrixDisplay.from_estimator(model, X_test, y_test)
    np.testing.assert_array_equal(disp.display_labels, model.classes_)
    np.testing.assert_array_equal(
        disp.confusion_matrix,
        confusion_matrix(y_test, model.predict(X_test), labels=model.classes_),
    )
    assert disp.confusion_matrix.sum() == len(y_test)
    assert [t.get_text() for t in disp.ax_.get_xticklabels()] == ["one", "two", "zero"]


def test_one_grey_scale_for_all_classes_of_a_model():
    """A nearly blank class of a 0..255 model (every mean value at most 1)
    is drawn nearly black, not stretched to 0..255 on its own; the CLI's
    picture draws it alike."""
    means = np.array([[0.0, 1.0, 0.5, 0.0], [255.0, 200.0, 0.0, 255.0]])
    disp = ClassMeansDisplay(means, image_shape=(2, 2), display_labels=["a", "b"])
    disp.plot(cmap="gray", differences=[("a", "b")])
    np.testing.assert_array_equal(disp.images_[0].get_array().ravel(), [0, 1, 0, 0])
    np.testing.assert_array_equal(disp.images_[1].get_array().ravel(), means[1])
    np.testing.assert_allclose(disp.images_[2].get_array().ravel(), means[0] - means[1])
    model = NearestCentroid().fit(np.vstack([means, means]), [0, 1, 0, 1])
    png = np.asarray(_pictures.render_means(model, (2, 2), scale=1, cmap="gray"))
    x, y0 = _pictures._PAD, _pictures._PAD
    np.testing.assert_array_equal(png[y0 : y0 + 2, x : x + 2, 0].ravel(), [0, 1, 0, 0])


def test_an_ax_placed_by_hand_is_divided(clf):
    # figure.add_axes gives an Axes without a subplot spec.
    fig = plt.figure()
    ax = fig.add_axes((0.1, 0.2, 0.6, 0.5))
    disp = ClassMeansDisplay.from_estimator(clf, ax=ax, columns=5)
    assert disp.bounding_ax_ is ax and disp.axes_.shape == (2, 5)
    box = ax.get_position()
    for tile in disp.axes_.flat:
        inner = tile.get_position()
        assert box.x0 - 1e-9 <= inner.x0 < inner.x1 <= box.x1 + 1e-9
        assert box.y0 - 1e-9 <= inner.y0 < inner.y1 <= box.y1 + 1e-9
