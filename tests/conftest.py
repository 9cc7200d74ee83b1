"""Shared test set-up."""

# SPDX-License-Identifier: BSD-3-Clause

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _private_data_home(tmp_path_factory):
    """Keep caches and downloads of the whole run out of ~/sk_template_data.

    Subprocesses the tests start inherit the variable too.
    """
    previous = os.environ.get("SK_TEMPLATE_DATA")
    os.environ["SK_TEMPLATE_DATA"] = str(tmp_path_factory.mktemp("sk_template_data"))
    yield
    if previous is None:
        del os.environ["SK_TEMPLATE_DATA"]
    else:
        os.environ["SK_TEMPLATE_DATA"] = previous
