"""benchmarks/bench_load.py reuses its photo folder only when it is whole."""

# SPDX-License-Identifier: BSD-3-Clause

import importlib.util
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_load.py"


def _bench(monkeypatch):
    # As when run as a script: its folder is on the path (bench_estimator).
    monkeypatch.syspath_prepend(str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_half_made_photo_folder_is_rebuilt(tmp_path, monkeypatch):
    bench = _bench(monkeypatch)
    folder = bench.make_photos(tmp_path / "photos", 20, 1)
    photo = next((folder / "class0").iterdir())
    whole = photo.stat().st_size
    # As a run stopped half-way would leave it (an older version wrote in
    # place): every file there, one of them cut short, and no marker.
    photo.write_bytes(photo.read_bytes()[:10])
    (folder / bench.PHOTOS_MARKER).unlink(missing_ok=True)
    bench.make_photos(folder, 20, 1)
    assert photo.stat().st_size == whole
    # A whole folder is reused as it is.
    photo.touch()
    stamp = photo.stat().st_mtime_ns
    bench.make_photos(folder, 20, 1)
    assert photo.stat().st_mtime_ns == stamp
