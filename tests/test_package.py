"""The package's public surface and its import cost."""

# SPDX-License-Identifier: BSD-3-Clause

import subprocess
import sys

import sk_template
import sk_template.datasets


def test_public_names_resolve():
    for name in sk_template.__all__:
        assert getattr(sk_template, name) is not None
    for name in sk_template.datasets.__all__:
        assert getattr(sk_template.datasets, name) is not None
    estimator = sk_template.NearestMeanImageClassifier
    assert estimator.__module__ == "sk_template._classifier"


def test_unknown_attribute_is_an_attribute_error():
    try:
        sk_template.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_datasets_do_not_import_torch():
    # Image loading (and every joblib worker that decodes) stays light.
    code = "import sys, sk_template.datasets; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"
