"""Collection rules for the doctests in sk_template/ (tests/ has its own
conftest.py for the tests)."""

# SPDX-License-Identifier: BSD-3-Clause

import importlib.util

import pytest

# Modules whose docstring examples need an optional extra.
_DOCTEST_NEEDS = {"sk_template/datasets/_dask.py": "dask"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        path = item.path.as_posix()
        for module, package in _DOCTEST_NEEDS.items():
            if path.endswith(module) and importlib.util.find_spec(package) is None:
                item.add_marker(pytest.mark.skip(reason=f"the example needs {package}"))
