"""Temporaries of writers that died are cleaned up by the next run, and
those of live writers are never touched.

Real subprocesses are stopped in the middle of writing the image cache, an
MNIST PNG tree and a download (``kill -9``, SIGTERM); the next run in this
process must leave no hidden temporary behind, while a writer that is still
running keeps its temporary whatever its age.
"""

# SPDX-License-Identifier: BSD-3-Clause

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sk_template.datasets import (
    _atomic,
    _cache,
    _mnist,
    fetch_mnist,
    load_image_folder,
    write_image_folder,
)

REPO = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(5)


def _start(code, *args, home):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO), *filter(None, [env.get("PYTHONPATH")])]
    )
    env["SK_TEMPLATE_DATA"] = str(home)
    child = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    line = child.stdout.readline()
    if line != "writing\n":
        child.kill()
        pytest.fail(f"the child did not start writing: {line!r} {child.stderr.read()}")
    return child


def _stop(child, sig=signal.SIGKILL):
    child.send_signal(sig)
    child.communicate(timeout=60)  # reaped: not even a zombie is left
    assert child.returncode == -sig


def _hidden(folder):
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("SK_TEMPLATE_DATA", str(home))
    return home


# ------------------------------------------------------------------ the cache
# The children write as the library does, then report and hang there.
HANG_AFTER = """
import json, sys, time
def hang_after(real):
    def wrapper(*args, **kwargs):
        real(*args, **kwargs)
        print("writing", flush=True)
        time.sleep(600)
    return wrapper
"""
CACHE_WRITER = (
    HANG_AFTER
    + """
import numpy as np
from sk_template.datasets import load_image_folder
np.save = hang_after(np.save)
load_image_folder(sys.argv[1])
"""
)


def test_killed_cache_writer_is_cleaned_up_and_a_live_one_kept(tmp_path, home):
    root = write_image_folder(
        RNG.integers(0, 256, size=(8, 5, 5), dtype=np.uint8),
        np.arange(8) % 2,
        tmp_path / "pics",
    )
    child = _start(CACHE_WRITER, root, home=home)
    try:
        cache_root = home / _cache.CACHE_DIRNAME
        (temp,) = _hidden(cache_root)
        os.utime(temp, (0, 0))  # however old, a live writer's temporary stays
        load_image_folder(root)  # writes its own entry, prunes the cache
        assert _hidden(cache_root) == [temp]
    finally:
        _stop(child)
    _age(temp)  # and a dead writer's goes, once a few seconds old
    load_image_folder(root)  # the next run (a cache hit)
    assert _hidden(cache_root) == []
    assert len(list(cache_root.iterdir())) == 1


# ------------------------------------------------------------ the MNIST trees
MNIST_WRITER = (
    HANG_AFTER
    + """
from sk_template.datasets import _mnist
_mnist.MNIST_MD5 = json.loads(sys.argv[3])
_mnist.write_image_folder = hang_after(_mnist.write_image_folder)
_mnist.fetch_mnist(sys.argv[1], layout="sample", base_url=sys.argv[2])
"""
)

DOWNLOADER = """
import email.message, io, json, sys, time, urllib.request, urllib.response
from sk_template.datasets import _mnist
_mnist.MNIST_MD5 = json.loads(sys.argv[3])

class Trickle(io.RawIOBase):
    calls = 0
    def readable(self):
        return True
    def read(self, n=-1):
        Trickle.calls += 1
        if Trickle.calls > 1:
            print("writing", flush=True)
            time.sleep(600)
        return b"x" * 100

def open_local_file(self, req):
    return urllib.response.addinfourl(Trickle(), email.message.Message(), req.full_url)

urllib.request.FileHandler.open_local_file = open_local_file
_mnist.fetch_mnist(sys.argv[1], layout="sample", base_url=sys.argv[2])
"""


def test_killed_mnist_writer_is_cleaned_up_and_a_live_one_kept(mnist_mirror, home):
    mirror = mnist_mirror
    table = json.dumps(_mnist.MNIST_MD5)
    child = _start(MNIST_WRITER, home, mirror.as_uri(), table, home=home)
    try:
        (temp,) = _hidden(home)
        assert temp.name.startswith(".mnist_sample.tmp-")
        os.utime(temp, (0, 0))
        fetch_mnist(home, layout="png", base_url=mirror.as_uri())
        assert _hidden(home) == [temp]
    finally:
        _stop(child)
    fetch_mnist(home, layout="sample", base_url=mirror.as_uri())  # the next run
    assert _hidden(home) == [] and _hidden(home / "mnist_idx") == []
    assert sorted(p.name for p in home.iterdir()) == [
        "mnist_idx",
        "mnist_png",
        "mnist_sample",
    ]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_interrupted_download_leaves_no_part_file(mnist_mirror, home, sig):
    mirror = mnist_mirror
    table = json.dumps(_mnist.MNIST_MD5)
    child = _start(DOWNLOADER, home, mirror.as_uri(), table, home=home)
    _stop(child, sig)
    (part,) = _hidden(home / "mnist_idx")
    assert ".part-" in part.name
    _age(part)
    fetch_mnist(home, layout="sample", base_url=mirror.as_uri())  # the next run
    assert _hidden(home / "mnist_idx") == [] and _hidden(home) == []


# ------------------------------------------------------------ the rules alone
def _age(path, seconds=_atomic._MIN_AGE_SECONDS + 5):
    """Set ``path``'s modification time ``seconds`` back."""
    os.utime(path, (time.time() - seconds, time.time() - seconds))


def _temp(folder, host, pid, age=0.0, tag="tmp"):
    path = folder / f".entry.{tag}-{host}-{pid}-{len(os.listdir(folder)):08x}"
    path.mkdir()
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_which_temporaries_count_as_abandoned(tmp_path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    here = _atomic._HOST
    other = format(int(here, 16) ^ 1, "08x")
    old_enough = _atomic._MIN_AGE_SECONDS + 5
    gone = [
        _temp(tmp_path, here, dead_pid, age=old_enough, tag="tmp"),  # dead writer
        _temp(tmp_path, here, dead_pid, age=old_enough, tag="part"),
        _temp(tmp_path, other, 1, age=120),  # another host's, unchanged for long
        _temp(tmp_path, here, os.getpid(), age=120),  # a reused pid, unlocked
    ]
    kept = [
        # a dead writer's, but just made: the pid may be of another PID
        # namespace, whose writer is about to lock it
        _temp(tmp_path, here, dead_pid, tag="tmp"),
        _temp(tmp_path, other, 2),  # another host's, fresh
        _temp(tmp_path, here, os.getpid()),  # a live writer about to lock it
    ]
    (tmp_path / ".hidden-but-not-ours").mkdir()
    (tmp_path / ".entry.tmp-1-dead").mkdir()  # not a name _atomic makes
    _atomic.remove_abandoned(tmp_path)
    assert not any(p.exists() for p in gone)
    assert all(p.exists() for p in kept)
    assert (tmp_path / ".hidden-but-not-ours").exists()
    assert (tmp_path / ".entry.tmp-1-dead").exists()


def test_a_locked_temporary_is_kept_however_old(tmp_path):
    with _atomic.open_temp(tmp_path / "model.npz") as (temp, f):
        f.write(b"half")
        os.utime(temp, (0, 0))
        _atomic.remove_abandoned(tmp_path)
        assert temp.exists()
    os.utime(temp, (0, 0))  # closed (the lock released) but never renamed
    _atomic.remove_abandoned(tmp_path)
    assert not temp.exists()
