"""Progress bars: tqdm's, on a terminal or in a notebook, never in a pipe
unless asked for."""

# SPDX-License-Identifier: BSD-3-Clause

import io

import pytest

from sk_template.datasets import _progress
from sk_template.datasets._progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


class Pipe(io.StringIO):
    def isatty(self):
        return False


def run(stream, verbose, n=8):
    bar = Progress(n, "Decoding images", verbose=verbose, stream=stream)
    for done in range(1, n + 1):
        bar.update(done)
    bar.close()
    return stream.getvalue()


@pytest.fixture
def no_delay(monkeypatch):
    monkeypatch.setattr(_progress, "DELAY", 0.0)


@pytest.mark.usefixtures("no_delay")
@pytest.mark.parametrize(
    "stream, verbose, shown",
    [
        (Terminal, None, True),  # the default: shown on a terminal...
        (Pipe, None, False),  # ...and not in a log or a pipe
        (Pipe, True, True),  # unless verbose=True asks for it
        (Terminal, False, False),
    ],
)
def test_where_a_bar_shows(stream, verbose, shown):
    out = run(stream(), verbose)
    if shown:
        assert "Decoding images" in out and "8/8" in out and out.endswith("\n")
    else:
        assert out == ""


def test_quick_jobs_stay_quiet():
    assert _progress.DELAY >= 1.0
    assert run(Terminal(), True) == ""  # done before the delay: nothing drawn


@pytest.mark.usefixtures("no_delay")
def test_running_totals():
    stream = Terminal()
    bar = Progress(10, "Predicting", verbose=True, stream=stream)
    bar.update(4)
    bar.update(4)  # no progress: no double count
    bar.update(10)
    assert bar._bar.n == 10
    bar.close()
    assert "10/10" in stream.getvalue()


def test_the_bar_is_tqdm_auto(monkeypatch):
    """tqdm.auto picks a widget in a notebook and a text bar elsewhere."""
    import tqdm.auto

    made = []

    class Recorder(tqdm.auto.tqdm):
        def __init__(self, *args, **kwargs):
            made.append(kwargs)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", Recorder)
    Progress(3, "Predicting", stream=Pipe()).close()
    assert made and made[0]["disable"] is None and made[0]["total"] == 3
    Progress(3, "Predicting", verbose=False).close()
    assert len(made) == 1  # verbose=False makes no bar at all
