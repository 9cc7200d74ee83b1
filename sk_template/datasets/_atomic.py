"""Write-then-rename helpers: nothing on disk is ever left half-written.

Files and folders are built under a hidden temporary name beside their target
and renamed over it when complete.  A temporary name says who is writing it,
``.<target>.<tag>-<host>-<pid>-<random>`` (``<host>`` a hash of the host name
and its boot id), and its writer holds an ``flock`` on it while it works.  A
temporary left behind by a writer that died (``kill -9``, a power cut, a
SIGTERM during a download) is removed by the next writer of the same folder
once that writer is gone: its lock is free, its process no longer runs on this
host and it has not changed for ``_MIN_AGE_SECONDS`` (a writer's process may
live in another PID namespace of the same host, and a new temporary is created
an instant before it is locked), or, written from another host, it has not
changed for a minute. A live writer's temporary is never touched.

Only regular files and folders are ever replaced: a symbolic link is written
through (its target is replaced, the link kept), a FIFO or a character device
(``/dev/null``, ``/dev/stdout``) is written into directly, as ``cp`` and the
shell's ``>`` do, and anything else is refused with an error naming the path
given.
"""

import contextlib
import errno
import hashlib
import io
import os
import re
import secrets
import shutil
import socket
import stat
import time
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: no locks, abandoned temporaries go by age
    fcntl = None

# A temporary of another host (or of a host that keeps no locks) is only
# removed once it has not changed for this long; a temporary whose writer is
# known to be gone is removed at once.
_FOREIGN_GRACE_SECONDS = 60
# Even a temporary whose writer looks gone is kept until it is this old.
_MIN_AGE_SECONDS = 10
# Temporaries of older sk_template versions (no host, no lock): by age only.
_LEGACY_STALE_SECONDS = 3600
_TAGS = ("tmp", "old", "part")
_TEMP_NAME = re.compile(
    r"^\.(?P<target>.+)\.(?P<tag>tmp|old|part)-"
    r"(?:(?P<host>[0-9a-f]{8})-)?(?P<pid>[0-9]+)-[0-9a-f]{8}$"
)


def _host_id():
    """Eight hex digits naming this host and this boot of it."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            boot = f.read().strip()
    except OSError:
        boot = ""
    try:
        host = socket.gethostname()
    except OSError:
        host = ""
    blob = f"{host}\0{boot}".encode()
    return hashlib.blake2b(blob, digest_size=4).hexdigest()


_HOST = _host_id()


def temp_sibling(target, tag="tmp"):
    """Return an unused hidden path next to ``target`` for building it.

    The name carries this host, this process and a random token (see the
    module docstring), so :func:`remove_abandoned` can tell when its writer is
    gone.
    """
    if tag not in _TAGS:
        raise ValueError(f"tag must be one of {_TAGS}; got {tag!r}")
    target = Path(target)
    token = f"{_HOST}-{os.getpid()}-{secrets.token_hex(4)}"
    return target.with_name(f".{target.name}.{tag}-{token}")


# ------------------------------------------------------------------ locking
def _lock(fd, blocking=True):
    """flock ``fd``: True when locked, False when another holds it, None when
    this file system keeps no locks."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _open_locked_dir(path):
    """Create the folder ``path`` (a new, unique name) and return an fd
    holding its lock; on any error, a Ctrl-C included, the folder is gone."""
    os.mkdir(path)
    fd = None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        _lock(fd)
        return fd
    except BaseException:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        raise


@contextlib.contextmanager
def open_temp(target, tag="tmp"):
    """Create, lock and open a new temporary file beside ``target``.

    Yields ``(path, f)``, ``f`` open for binary writing; the file is removed
    if the block raises, and left for the caller to rename otherwise.
    """
    tmp = temp_sibling(target, tag)
    fd = None
    try:
        # Inside the try: a Ctrl-C landing just after the file is created
        # removes it too (the name is new: nobody else's file).
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:  # name the file being written, not the temporary
            raise type(exc)(exc.errno, exc.strerror, str(target)) from None
        _lock(fd)
        with open(fd, "wb", closefd=False) as f:
            yield tmp, f
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


# ---------------------------------------------------------- abandoned ones
def _pid_running(pid):
    """Whether process ``pid`` runs on this host (a zombie does not)."""
    if pid == os.getpid() or os.name != "posix":
        return True  # (elsewhere os.kill would end the process: assume so)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (OSError, IndexError):
        return True


def _try_lock(path):
    """``(state, fd)``: ``("free", fd)`` with ``fd`` holding the lock (the
    writer is gone), ``("held", None)``, or ``("unknown", None)`` when no lock
    could be tried."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return "unknown", None
    got = _lock(fd, blocking=False)
    if got:
        return "free", fd
    os.close(fd)
    return ("held" if got is False else "unknown"), None


def _abandoned(entry, match, lock):
    """Whether the temporary ``entry`` (a DirEntry) has no live writer;
    ``lock`` is the state :func:`_try_lock` found."""
    if lock == "held":
        return False  # a live writer holds it
    try:
        age = time.time() - entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        return False
    if match["host"] is None:  # an older sk_template's: no host, no lock
        return age > _LEGACY_STALE_SECONDS
    if match["host"] == _HOST and not _pid_running(int(match["pid"])):
        return age > _MIN_AGE_SECONDS
    # Its process runs (a reused pid, or a writer between creating and
    # locking it), or runs on another host: only once it has not changed for
    # a while, a short while when its lock is free.
    if lock == "free":
        return age > _FOREIGN_GRACE_SECONDS
    return age > _LEGACY_STALE_SECONDS


def is_temp_name(name):
    """Whether ``name`` is a temporary name this module makes."""
    return _TEMP_NAME.match(name) is not None


def remove_abandoned(folder, target=None):
    """Remove the temporaries in ``folder`` whose writer is gone.

    Only names this module makes are considered (of ``target``, a file or
    folder name, when given).  Never raises: this is housekeeping.
    """
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None or (target is not None and match["target"] != target):
            continue
        lock, fd = _try_lock(entry.path)
        try:
            if _abandoned(entry, match, lock):
                remove_temp(entry.path)
        finally:
            if fd is not None:
                os.close(fd)


def remove_temp(path):
    """Remove a temporary file or folder, whichever it is; never raises."""
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)
    except OSError:
        pass


# ------------------------------------------------------------------ folders
def _folder_target(target):
    """The folder to build for ``target``: a link's target, checked."""
    target = Path(target)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR,
            "exists and is not a folder; remove it or choose another name",
            str(target),
        )
    return target


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
    moved = False
    try:
        os.replace(target, old)
        moved = True
    except FileNotFoundError:
        pass  # someone else moved it away first
    try:
        os.replace(tmp, target)
    except OSError:
        # Lost a race with another writer: keep theirs.
        shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:  # Ctrl-C between the two renames: put the old back
        if moved:
            with contextlib.suppress(OSError):
                os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def building_dir(target):
    """Yield a new temporary folder beside ``target``; when the block ends
    without an error it replaces ``target`` (see :func:`replace_dir`), and
    on any error it is removed: ``target`` is never seen half-built.

    A symbolic link ``target`` is built through (the folder it names is
    replaced); an existing ``target`` that is not a folder is an error.
    Temporaries of ``target`` left by writers that died are removed first.
    """
    target = _folder_target(target)
    remove_abandoned(target.parent, target.name)
    tmp = temp_sibling(target)
    fd = None
    try:
        # Inside the try: a Ctrl-C landing just after the folder is made
        # removes it too (the name is new: nobody else's folder).
        fd = _open_locked_dir(tmp)
        yield tmp
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if fd is not None:
            os.close(fd)


# -------------------------------------------------------------------- files
def _named(exc, tmp, path):
    """``exc`` about the temporary ``tmp``, or about no file at all (a write
    or flush: ``ENOSPC``, ``EIO``), re-aimed at ``path``; None for an error
    that names another file already."""
    if exc.errno is None:
        return None  # not from the system: nothing to re-aim
    if exc.filename is None or (tmp is not None and exc.filename in (str(tmp), tmp)):
        return type(exc)(exc.errno, exc.strerror, str(path))
    return None


class _Stream(io.RawIOBase):
    """Writes to a file descriptor, and says it cannot seek: a device such
    as /dev/null claims to, but its position means nothing, so writers
    (zipfile) must stream as they do into a pipe."""

    def __init__(self, fd):
        self.fd = fd

    def writable(self):
        return True

    def write(self, data):
        return os.write(self.fd, data)


def _write_stream(path, write):
    """Write into the FIFO or device ``path`` in place, as ``cp`` does.

    Returns False (nothing written) when ``path`` turned out to be a regular
    file after all (it was replaced since it was looked at).
    """
    fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return False
        with io.BufferedWriter(_Stream(fd)) as f:
            write(f)
            f.flush()
    except BrokenPipeError as exc:
        raise BrokenPipeError(
            errno.EPIPE, "its reader closed it before the end", str(path)
        ) from exc
    except OSError as exc:  # /dev/full: ENOSPC, naming no file
        new = _named(exc, None, path)
        if new is None:
            raise
        raise new from exc
    finally:
        os.close(fd)
    return True


_KINDS = {
    stat.S_IFDIR: "a folder",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _file_target(path):
    """``(kind, real_path)`` for writing ``path``: kind is "file" or "stream"."""
    try:
        mode = os.stat(path).st_mode  # follows symbolic links
    except FileNotFoundError:
        mode = None
    if mode is not None and not stat.S_ISREG(mode):
        if stat.S_ISFIFO(mode) or stat.S_ISCHR(mode):
            return "stream", path
        kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
        error = IsADirectoryError if stat.S_ISDIR(mode) else OSError
        raise error(
            errno.EISDIR if stat.S_ISDIR(mode) else errno.EINVAL,
            f"Cannot write a file there: it is {kind}; name a file",
            str(path),
        )
    if path.is_symlink():  # a link to a file, or a dangling one: its target
        path = Path(os.path.realpath(path))
    if not path.parent.is_dir():
        raise FileNotFoundError(
            f"Cannot write {path}: the folder {path.parent} does not exist."
        )
    return "file", path


def check_writable(path):
    """Raise the error :func:`write_atomic` would raise for ``path`` before
    it writes anything: a folder or special file there, a missing or
    read-only parent folder.  For a command to say so before a long job,
    not after it; the write itself still checks again."""
    kind, real = _file_target(Path(path))
    if kind == "file" and not os.access(real.parent, os.W_OK | os.X_OK):
        raise PermissionError(
            errno.EACCES,
            f"Cannot write a file in the folder {real.parent}: permission denied",
            str(path),
        )


def write_atomic(path, write):
    """Create the file ``path`` by ``write(f)`` into a temporary sibling file
    ``f`` (open for binary writing), synced and then renamed over ``path``:
    readers see the old file or the whole new one, never a part.

    A symbolic link is written through (the file it names is replaced, the
    link is kept); a FIFO or character device is written into directly; a
    folder or other special file is an error naming ``path``. A file replaced
    keeps its permission bits.
    """
    path = Path(path)
    kind, real = _file_target(path)
    if kind == "stream" and _write_stream(real, write):
        return path
    remove_abandoned(real.parent, real.name)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except OSError:
        mode = None  # a new file: the umask's mode, as open() gives
    tmp = None
    try:
        with open_temp(real) as (tmp, f):
            if mode is not None:  # the file replaced keeps its permissions
                os.chmod(tmp, mode)
            write(f)
            f.flush()
            os.fsync(f.fileno())
            os.replace(tmp, real)
    except OSError as exc:
        new = _named(exc, tmp, path)
        if new is None:
            raise
        raise new from exc
    return path


def write_file_atomic(path, data):
    """Write ``data`` (bytes) to ``path`` through a temporary sibling file."""
    return write_atomic(path, lambda f: f.write(data))
