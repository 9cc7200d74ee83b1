"""Write-then-rename helpers: nothing on disk is ever left half-written."""

import contextlib
import os
import secrets
import shutil
from pathlib import Path


def temp_sibling(target, tag="tmp"):
    """Return an unused hidden path next to ``target`` for building it."""
    target = Path(target)
    token = f"{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.name}.{tag}-{token}")


def replace_dir(tmp, target):
    """Move the finished folder ``tmp`` to ``target``, replacing what is there.

    A folder cannot be renamed over a non-empty folder, so an existing
    ``target`` is first renamed aside and deleted after the swap. If another
    process wins the race, its result is kept and ``tmp`` is deleted.
    """
    tmp, target = Path(tmp), Path(target)
    try:
        os.replace(tmp, target)
        return
    except OSError:
        if not target.exists():
            raise
    old = temp_sibling(target, "old")
    try:
        os.replace(target, old)
    except FileNotFoundError:
        pass  # someone else moved it away first
    try:
        os.replace(tmp, target)
    except OSError:
        # Lost a race with another writer: keep theirs.
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def building_dir(target):
    """Yield a new temporary folder beside ``target``; when the block ends
    without an error it replaces ``target`` (see :func:`replace_dir`), and
    on any error it is removed: ``target`` is never seen half-built."""
    tmp = temp_sibling(target)
    try:
        tmp.mkdir()
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_atomic(path, write):
    """Create the file ``path`` by ``write(f)`` into a temporary sibling file
    ``f`` (open for binary writing), synced and then renamed over ``path``:
    readers see the old file or the whole new one, never a part."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: the folder {path.parent} does not exist."
        )
    tmp = temp_sibling(path)
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_file_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary sibling file."""
    return write_atomic(path, lambda f: f.write(data))
