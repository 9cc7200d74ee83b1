"""What a package index shows: the type marker is shipped, and the README
(the long description) shows its pictures by addresses that resolve there."""

# SPDX-License-Identifier: BSD-3-Clause

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_type_marker_exists_and_is_package_data():
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["sk_template"]
    assert (ROOT / "sk_template" / "py.typed").is_file()


def test_readme_pictures_are_absolute_and_point_into_the_repository():
    repository = PYPROJECT["project"]["urls"]["Repository"]
    owner_name = repository.removeprefix("https://github.com/")
    raw = f"https://raw.githubusercontent.com/{owner_name}/main/"
    readme = (ROOT / PYPROJECT["project"]["readme"]).read_text()
    pictures = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", readme)
    assert pictures
    for address in pictures:
        assert address.startswith(raw), address  # resolves on a package index
        assert (ROOT / address.removeprefix(raw)).is_file(), address
