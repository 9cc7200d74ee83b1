"""
Your own folder of colour photos
================================

Any folder with one sub-folder per class is a data set:
:func:`~sk_template.datasets.load_image_folder` reads it into ``X`` and ``y``
and :class:`~sk_template.NearestMeanImageClassifier` learns an "ideal" image
per class. Here the folder is made from the two photos that ship with
scikit-learn (:func:`~sklearn.datasets.load_sample_images`): pieces of the
sky, the pagoda and the trees of one, and of the flower of the other, of many
sizes, as JPEG files. With your own photos, start at the second step.
"""

# %%
# 1. A folder of photos
# ---------------------
# ``photos/sky``, ``photos/pagoda``, ``photos/trees`` and ``photos/flower``,
# 40 JPEG files each, cut at random places and sizes (50 to 140 pixels a
# side).
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from sklearn.datasets import load_sample_images

china, flower = load_sample_images().images  # 427x640 RGB each
regions = {  # the part of a photo each class is cut from
    "sky": china[0:190, 340:640],
    "pagoda": china[40:400, 70:340],
    "trees": china[280:427, 330:640],
    "flower": flower,
}
rng = np.random.default_rng(0)
root = Path(tempfile.mkdtemp(prefix="sk_template_photos_")) / "photos"
for label, area in regions.items():
    (root / label).mkdir(parents=True)
    for i in range(40):
        side = int(rng.integers(50, min(140, *area.shape[:2]) + 1))
        top = rng.integers(0, area.shape[0] - side + 1)
        left = rng.integers(0, area.shape[1] - side + 1)
        piece = area[top : top + side, left : left + side]
        Image.fromarray(piece).save(root / label / f"{i}.jpg", quality=90)
print(sorted(p.name for p in root.iterdir()), "40 files each")

# %%
# 2. Load it
# ----------
# The files have many sizes: ``size=(32, 32)`` resizes each one on loading
# (without it, the error lists the odd files). ``mode="RGB"`` keeps the
# colours: each row of ``X`` holds 32 x 32 x 3 values.
from sk_template.datasets import load_image_folder

photos = load_image_folder(root, mode="RGB", size=(32, 32), cache=False)
print(photos.data.shape, photos.images.shape, photos.target_names)

# %%
# 3. Fit and evaluate
# -------------------
from sklearn.metrics import ConfusionMatrixDisplay
from sklearn.model_selection import train_test_split

from sk_template import ClassMeansDisplay, NearestMeanImageClassifier

X_train, X_test, y_train, y_test = train_test_split(
    photos.data, photos.target, test_size=0.3, stratify=photos.target, random_state=0
)
clf = NearestMeanImageClassifier().fit(X_train, y_train)
print(f"accuracy on the {len(y_test)} held-out photos: {clf.score(X_test, y_test):.3f}")
ConfusionMatrixDisplay.from_estimator(clf, X_test, y_test, colorbar=False)

# %%
# 4. Look at what it learned
# --------------------------
# The ideal sky, pagoda, trees and flower: the mean of every training photo of each
# class, in colour. A nearest-mean classifier sees little more than these
# average colours and their layout, which is enough here.
disp = ClassMeansDisplay.from_estimator(clf, image_shape=(32, 32, 3))

# %%
# Some of the photos it was fitted on, for comparison.
fig, axes = plt.subplots(4, 6, figsize=(7, 5), layout="constrained")
for ax, label in zip(axes, photos.target_names, strict=True):
    shown = photos.images[photos.target == label][:6]
    for a, image in zip(ax, shown, strict=True):
        a.imshow(image)
        a.set_axis_off()
    ax[0].set_title(label, loc="left", fontsize=10)

# %%
import shutil

shutil.rmtree(root.parent)  # the example's temporary files
