"""The evaluation report: accuracy overall and per class, the confusion
matrix, and its plain-text table."""

# SPDX-License-Identifier: BSD-3-Clause

import warnings

import numpy as np

from ._common import label_json


def evaluation(model, X, y):
    """Accuracy overall and per class, and the confusion matrix.

    Parameters
    ----------
    model : fitted classifier
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        The true labels.

    Returns
    -------
    report : dict
        ``accuracy``, ``n_samples``, ``classes`` (the model's classes, then
        any label of ``y`` the model does not know), ``per_class_n_samples``,
        ``per_class_accuracy`` (None for a class without samples) and
        ``confusion_matrix`` (rows: true class, columns: predicted class), all
        plain Python values ready for :func:`json.dumps`.
    """
    from sklearn.metrics import confusion_matrix

    y = np.asarray(y)
    known = np.asarray(model.classes_)
    if known.dtype.kind == "U" and y.dtype.kind in "iu":
        y = y.astype(str)  # folder names 3, 7 for a model fitted on "3", "7"
    unknown = np.setdiff1d(np.unique(y), known)
    if unknown.size == np.unique(y).size:
        raise ValueError(
            f"none of the labels of the data ({np.unique(y).tolist()!r}) is a class "
            f"of the model ({known.tolist()!r})."
        )
    if unknown.size:
        warnings.warn(
            f"the data has labels the model does not know, {unknown.tolist()!r}: "
            "their images are all counted as errors.",
            UserWarning,
            stacklevel=2,
        )
    y_pred = model.predict(X)
    labels = np.concatenate([known, unknown]) if unknown.size else known
    cm = confusion_matrix(y, y_pred, labels=labels)
    support = cm.sum(axis=1)
    correct = np.diag(cm)
    return {
        "accuracy": float(np.mean(y_pred == y)),
        "n_samples": int(len(y)),
        "classes": [label_json(c) for c in labels],
        "per_class_n_samples": support.tolist(),
        "per_class_accuracy": [
            float(c / n) if n else None for c, n in zip(correct, support, strict=True)
        ],
        "confusion_matrix": cm.tolist(),
    }


def format_report(report):
    """A plain-text table of an :func:`evaluation` report.

    Examples
    --------
    >>> report = {"accuracy": 0.75, "n_samples": 4, "classes": [3, 7],
    ...           "per_class_n_samples": [2, 2], "per_class_accuracy": [1.0, 0.5],
    ...           "confusion_matrix": [[2, 0], [1, 1]]}
    >>> print(format_report(report))
    Accuracy: 0.7500 (3 of 4 images)
    <BLANKLINE>
    class  images  accuracy
        3       2    1.0000
        7       2    0.5000
    <BLANKLINE>
    Confusion matrix (rows: true class, columns: predicted class)
          3  7
        3 2  0
        7 1  1
    """
    names = [str(c) for c in report["classes"]]
    n, acc = report["n_samples"], report["accuracy"]
    lines = [f"Accuracy: {acc:.4f} ({round(acc * n)} of {n} images)", ""]
    cw = max(5, *(len(s) for s in names))
    lines.append(f"{'class':>{cw}}  images  accuracy")
    for name, count, a in zip(
        names,
        report["per_class_n_samples"],
        report["per_class_accuracy"],
        strict=True,
    ):
        shown = "       -" if a is None else f"{a:8.4f}"
        lines.append(f"{name:>{cw}}  {count:>6}  {shown:>8}")
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class)"]
    cm = report["confusion_matrix"]
    width = max(len(str(v)) for row in cm for v in row)
    width = max(width, *(len(s) for s in names))
    lines.append(" " * (cw + 1) + " ".join(f"{s:>{width}}" for s in names))
    for name, row in zip(names, cm, strict=True):
        lines.append(f"{name:>{cw}} " + " ".join(f"{v:>{width}}" for v in row))
    return "\n".join(lines)
