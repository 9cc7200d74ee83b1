"""The README's runnable examples run (```python blocks; ```py blocks need
data or a cluster and are shown, not run)."""

# SPDX-License-Identifier: BSD-3-Clause

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the examples write model.joblib
    namespace = {"__name__": "__readme__"}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    printed = capsys.readouterr().out.split("\n")
    # The numbers the README quotes next to the code.
    assert printed[0].startswith("0.90")
    assert printed[1] == "(10, 64)"
    assert (tmp_path / "model.joblib").exists()
