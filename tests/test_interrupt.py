"""Ctrl-C at any moment: ``sk-template: interrupted``, exit 130, nothing half-written.

The command runs in a subprocess started as the console script starts it
(``from sk_template.cli import main; sys.exit(main())``), and gets SIGINT
after a sweep of delays: at once (while numpy and torch import), while it
loads and fits, and while it writes.  Whenever the signal arrives, the
outcome is one of two: the command finished (exit 0, the model complete) or
it was interrupted (exit 130, the one line on stderr, no traceback, no model
file and no temporary left).
"""

# SPDX-License-Identifier: BSD-3-Clause

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sk_template._persist import load_model
from sk_template.datasets import write_image_folder

REPO = Path(__file__).resolve().parents[1]
# What the console script runs.
SCRIPT = "import sys\nfrom sk_template.cli import main\nsys.exit(main())\n"
DELAYS = [0.0, 0.01, 0.03, 0.1, 0.3, 0.7, 1.5, 3.0]
needs_proc = pytest.mark.skipif(
    not Path("/proc/self/maps").exists(), reason="needs /proc to see the imports"
)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(60, 12, 12), dtype=np.uint8)
    return write_image_folder(
        images, np.arange(60) % 3, tmp_path_factory.mktemp("t") / "pics"
    )


def _env(home):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    env["SK_TEMPLATE_DATA"] = str(home)
    return env


def _default_signals():
    """Run in the child before it starts: the default disposition for the
    signals the tests send.  A shell's background job (``pytest &``) starts
    with SIGINT ignored, ``nohup`` with SIGHUP, and the command rightly
    leaves an ignored signal ignored; the tests are about a terminal's
    Ctrl-C, whatever ran pytest."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_DFL)


def _hidden(folder):
    return [p.name for p in Path(folder).rglob(".*")] if folder.exists() else []


def _wait_for_numpy(child):
    """Wait until ``child`` loads numpy's C extension: from then on the
    command is sk_template's to handle (before it, the interpreter is still
    starting, and sk_template's package is imported)."""
    maps = Path(f"/proc/{child.pid}/maps")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and child.poll() is None:
        try:
            if "numpy" in maps.read_text():
                return
        except OSError:
            return
        time.sleep(0.002)


def _interrupt(argv, delay, env, cwd=None, sig=signal.SIGINT):
    child = subprocess.Popen(
        [sys.executable, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
        preexec_fn=_default_signals,
    )
    _wait_for_numpy(child)
    time.sleep(delay)
    child.send_signal(sig)
    out, err = child.communicate(timeout=300)
    return child.returncode, out, err


SAID = {
    signal.SIGINT: (130, "sk-template: interrupted\n"),
    signal.SIGTERM: (143, "sk-template: terminated (SIGTERM)\n"),
}


@needs_proc
@pytest.mark.parametrize("sig", list(SAID), ids=lambda s: signal.Signals(s).name)
def test_ctrl_c_or_sigterm_at_any_moment(tmp_path, tree, sig):
    home = tmp_path / "home"
    outcomes = []
    for i, delay in enumerate(DELAYS):
        model = tmp_path / "out" / f"model{i}.npz"
        model.parent.mkdir(exist_ok=True)
        argv = ["-c", SCRIPT, "fit", str(tree), "-o", str(model), "-q"]
        code, out, err = _interrupt(argv, delay, _env(home), sig=sig)
        outcomes.append(code)
        if code == 0:  # it finished before the signal came
            assert err == "" and load_model(model).n_features_in_ == 144
        else:
            assert (code, err, out) == (*SAID[sig], ""), delay
            # No model, or (interrupted just after writing it) a whole one.
            assert not model.exists() or load_model(model).n_features_in_ == 144
        assert _hidden(model.parent) == [] and _hidden(home) == [], delay
    assert outcomes[0] == SAID[sig][0]  # at once: in the middle of importing numpy


# The command as the console script runs it, its model write stopped halfway.
HANGING_WRITE = """
import sys, time
import numpy as np
real = np.savez
def savez(f, **arrays):
    real(f, **arrays)
    f.write(b"more bytes of a model file")
    print("writing", flush=True)
    time.sleep(600)
np.savez = savez
from sk_template.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize(
    "sig, code, said",
    [
        (signal.SIGTERM, 143, "terminated (SIGTERM)"),
        (signal.SIGHUP, 129, "hung up (SIGHUP)"),
        (signal.SIGINT, 130, "interrupted"),
    ],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_a_signal_in_the_middle_of_writing_leaves_no_file(
    tmp_path, tree, sig, code, said
):
    # Without a handler, SIGTERM and SIGHUP end the process where it stands
    # and the writer's temporary stays beside the model.
    out = tmp_path / "out"
    out.mkdir()
    model = out / "model.npz"
    child = subprocess.Popen(
        [sys.executable, "-c", HANGING_WRITE, "fit", str(tree), "-o", str(model), "-q"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path / "home"),
        preexec_fn=_default_signals,
    )
    try:
        assert child.stdout.readline() == "writing\n"
        assert len(_hidden(out)) == 1  # the temporary, being written
        child.send_signal(sig)
        rest, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert (child.returncode, err, rest) == (code, f"sk-template: {said}\n", "")
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("program", [True, False])
def test_a_signal_the_process_ignores_stays_ignored(tmp_path, program):
    # nohup ignores SIGHUP: the command must not take it back.  After the
    # command, its process ignores the signals while it exits (a SIGTERM
    # then must not turn a finished command into a killed one); called from
    # Python (program=False), the previous handlers are put back.
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGHUP, signal.SIG_IGN)\n"
        "from sk_template.cli import _signals\n"
        f"with _signals.handling_interrupts(program={program}):\n"
        "    ignored = signal.getsignal(signal.SIGHUP) is signal.SIG_IGN\n"
        "    handled = signal.getsignal(signal.SIGTERM) is _signals._on_signal\n"
        "after = [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]\n"
        "print(ignored, handled, after == [signal.SIG_IGN] * 2,\n"
        "      after == [signal.default_int_handler, signal.SIG_DFL])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
        preexec_fn=_default_signals,
    )
    assert result.stdout == f"True True {program} {not program}\n", result.stderr


SIGNAL_AT_EXIT = """
import atexit, os, sys
# Registered first, so run last of the exit functions: the interpreter is
# shutting down, the command's work long done.
atexit.register(os.kill, os.getpid(), int(sys.argv.pop(1)))
from sk_template.cli import main
sys.exit(main())
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_finished_command_exits_changes_nothing(tmp_path, sig):
    # tests/stress/ctrl_c.py --signal TERM, delays near the end of a run:
    # half the signals came after the handlers were put back, and SIGTERM's
    # default killed a command that had finished (rc -15); so did
    # test_ctrl_c_or_sigterm_at_any_moment[SIGTERM] now and then.
    result = subprocess.run(
        [sys.executable, "-c", SIGNAL_AT_EXIT, str(int(sig)), "--version"],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
        preexec_fn=_default_signals,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("sk-template ")


DURING_AN_IMPORT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from sk_template.cli import _signals
with _signals.handling_interrupts(program=True):
    try:
        import signalled_while_imported
        time.sleep(60)  # the signal is delivered again, and raised, by now
    except KeyboardInterrupt:
        # A failed import leaves no module behind.
        module = sys.modules.get("signalled_while_imported")
        print(getattr(module, "FINISHED", False), _signals.report(), flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["INT", "TERM"])
def test_a_signal_during_an_import_is_raised_once_the_import_is_over(tmp_path, sig):
    # tests/stress/ctrl_c.py found SIGABRT (rc -6) once in 300 tries:
    # importing torch runs C++ that calls back into Python
    # (torch._C._c10d_init), and the KeyboardInterrupt raised there became
    # an uncaught pybind11::error_already_set.  So during an import the
    # handler only notes the signal, and it is raised when the import ends.
    (tmp_path / "signalled_while_imported.py").write_text(
        "import os, time\n"
        f"os.kill(os.getpid(), {int(sig)})\n"
        "time.sleep(0.5)  # the handler runs in this import, and waits\n"
        "FINISHED = True\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", DURING_AN_IMPORT, str(tmp_path)],
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=120,
        preexec_fn=_default_signals,
    )
    said = SAID[sig]
    assert (result.stdout, result.stderr) == (f"True {said[0]}\n", said[1])


@needs_proc
def test_ctrl_c_while_importing_via_python_m(tmp_path):
    argv = ["-m", "sk_template", "demo", "-q"]
    code, out, err = _interrupt(argv, 0.0, _env(tmp_path), cwd=tmp_path)
    assert (code, err) == (130, "sk-template: interrupted\n"), out


def test_importing_the_command_imports_nothing_heavy():
    code = (
        "import sys, sk_template.cli as cli\n"
        "heavy = [m for m in ('numpy', 'torch', 'sklearn', 'PIL')"
        " if m in sys.modules]\n"
        "assert callable(cli.format_pixels) and callable(cli.build_parser)\n"
        "cli.build_parser()\n"
        "heavy += [m for m in ('torch', 'sklearn') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_env(Path(os.devnull)),
        timeout=300,
    )
    assert result.stdout.startswith("[]"), result.stderr


def test_the_parser_offers_every_metric_of_the_core():
    from sk_template._core import METRICS
    from sk_template.cli._common import METRICS as OFFERED

    assert OFFERED == METRICS


@pytest.fixture
def sigint_raises():
    """SIGINT as Python sets it up in a terminal, for the test: pytest
    started as a shell's background job has it ignored, and the command
    leaves an ignored signal ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("turned_into", [ImportError, ValueError, OSError])
def test_an_interrupt_turned_into_another_error_is_an_interrupt(
    monkeypatch, capsys, turned_into, sigint_raises
):
    # numpy's import turns a KeyboardInterrupt into an ImportError; any
    # library may do the same.  The command still reports the interrupt.
    from sk_template.cli import _fetch_mnist, main

    def run(args, console):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(60)  # the handler raises in here
        except KeyboardInterrupt:
            raise turned_into("PyCapsule_Import could not import module") from None

    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr(_fetch_mnist, "run", run)
    assert main(["fetch-mnist"]) == 130
    assert capsys.readouterr().err == "sk-template: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is before  # put back after the call
