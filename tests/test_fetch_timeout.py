"""fetch_mnist's ``timeout`` is a deadline for each whole file.

urllib's own timeout bounds each socket read, so a server that trickles a few
bytes at a time would never time out.  The servers here run on 127.0.0.1 in a
thread; each trickles for a few seconds at most and then hangs up, so a
download without the deadline ends (in another error) instead of hanging.
"""

# SPDX-License-Identifier: BSD-3-Clause

import contextlib
import functools
import socket
import threading
import time
from http.server import (
    BaseHTTPRequestHandler,
    SimpleHTTPRequestHandler,
    ThreadingHTTPServer,
)

import pytest

from sk_template.cli import main
from sk_template.datasets import fetch_mnist

TIMEOUT = 0.5
TRICKLE_SECONDS = 8  # far longer than TIMEOUT, but not for ever


class _Trickle(BaseHTTPRequestHandler):
    """Sends 64 bytes every 50 ms: of the body, or of the headers."""

    def do_GET(self):
        end = time.monotonic() + TRICKLE_SECONDS
        with contextlib.suppress(OSError):
            if self.server.slow_headers:
                self.wfile.write(b"HTTP/1.0 200 OK\r\nX-Slow: ")
                while time.monotonic() < end:
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(10**7))
            self.end_headers()
            while time.monotonic() < end:
                self.wfile.write(b"\0" * 64)
                self.wfile.flush()
                time.sleep(0.05)

    def log_message(self, *args):
        pass


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def _serve(handler, **attrs):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    server.block_on_close = False
    server.handle_error = lambda *args: None
    for name, value in attrs.items():
        setattr(server, name, value)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("slow_headers", [False, True], ids=["body", "headers"])
def test_trickling_server_times_out_per_file(tmp_path, slow_headers):
    with _serve(_Trickle, slow_headers=slow_headers) as url:
        with pytest.raises(OSError, match=f"took longer than timeout={TIMEOUT} s"):
            fetch_mnist(tmp_path / "home", base_url=url, timeout=TIMEOUT)
    assert [p.name for p in (tmp_path / "home" / "mnist_idx").iterdir()] == []


def test_cli_timeout_option(tmp_path, capsys):
    with _serve(_Trickle, slow_headers=False) as url:
        argv = ["fetch-mnist", "--data-home", str(tmp_path), "--base-url", url]
        assert main([*argv, "--timeout", str(TIMEOUT), "-q"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sk-template: error: Could not download")
    assert f"took longer than timeout={TIMEOUT} s" in err and "--timeout" in err
    assert main([*argv, "--timeout", "0"]) == 2
    assert "expected a positive number" in capsys.readouterr().err


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), "5", True])
def test_bad_timeout(tmp_path, timeout):
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        fetch_mnist(tmp_path, timeout=timeout)


def test_a_normal_http_server_still_works(tmp_path, mnist_mirror):
    handler = functools.partial(_Quiet, directory=str(mnist_mirror))
    with _serve(handler) as url:
        path = fetch_mnist(tmp_path / "home", layout="sample", base_url=url, timeout=30)
    assert sorted(p.name for p in (path / "train").iterdir()) == ["3", "7"]


def _run_with_watchdog(fn, seconds):
    """``fn()``'s exception (or None), or fail when it has not returned in
    ``seconds`` (it is then left running in a daemon thread)."""
    outcome = {}

    def target():
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            outcome["exc"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s: a deadlock"
    return outcome.get("exc")


def test_a_connection_made_after_the_deadline_is_shut_at_once(tmp_path, monkeypatch):
    """A connection that completes after the deadline (slow DNS, TCP retries)
    is shut down as soon as it is made: no deadlock, a TimeoutError."""
    real = socket.create_connection

    def slow_create_connection(*args, **kwargs):
        time.sleep(2 * TIMEOUT)
        return real(*args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", slow_create_connection)
    with _serve(_Quiet) as url:
        exc = _run_with_watchdog(
            lambda: fetch_mnist(tmp_path / "home", base_url=url, timeout=TIMEOUT),
            seconds=10,
        )
    assert isinstance(exc, OSError)
    assert f"took longer than timeout={TIMEOUT} s" in str(exc)


def test_connecting_is_bounded_by_the_time_left(tmp_path, monkeypatch, mnist_mirror):
    """Each TCP connection is tried with the time left before the deadline
    as its timeout, not the whole ``timeout`` again.

    From a server that answers at once, with a deadline no run reaches: a
    half-second deadline and a trickling server made this test fail on a
    loaded machine, where the deadline could pass before the first
    connection was tried (then none was, and nothing was recorded)."""
    real = socket.create_connection
    timeouts = []

    def create_connection(address, timeout=None, *args, **kwargs):
        timeouts.append(timeout)
        return real(address, timeout, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", create_connection)
    handler = functools.partial(_Quiet, directory=str(mnist_mirror))
    with _serve(handler) as url:
        fetch_mnist(tmp_path / "home", layout="sample", base_url=url, timeout=600)
    # One connection per file, each with the time left of its own deadline.
    assert len(timeouts) == 4 and all(0 < t < 600 for t in timeouts), timeouts


class _Body(BaseHTTPRequestHandler):
    """Sends ``server.body_bytes`` zero bytes, announcing ``server.announce``
    as the Content-Length (none when None; the body then ends when the
    connection closes), and counts what it managed to send."""

    protocol_version = "HTTP/1.0"

    def do_GET(self):
        self.send_response(200)
        if self.server.announce is not None:
            self.send_header("Content-Length", str(self.server.announce))
        self.end_headers()
        left = self.server.body_bytes
        with contextlib.suppress(OSError):
            while left > 0:
                n = min(left, 1 << 16)
                self.wfile.write(b"\0" * n)
                self.server.sent += n
                left -= n

    def log_message(self, *args):
        pass


@pytest.fixture
def small_files(monkeypatch):
    """Every MNIST file at most about 14 KB (see _mnist._max_download_bytes)."""
    from sk_template.datasets import _mnist

    monkeypatch.setattr(_mnist, "MNIST_SIZE", dict.fromkeys(_mnist.MNIST_SIZE, 10_000))
    return _mnist._max_download_bytes("t10k-labels-idx1-ubyte.gz")


def _fetch_from(tmp_path, announce, body_bytes):
    with _serve(_Body, announce=announce, body_bytes=body_bytes, sent=0) as url:
        start = time.monotonic()
        with pytest.raises(OSError) as info:
            fetch_mnist(tmp_path / "home", base_url=url, timeout=30)
        seconds = time.monotonic() - start
    assert [p.name for p in (tmp_path / "home" / "mnist_idx").iterdir()] == []
    return str(info.value), seconds


def test_an_announced_body_too_large_is_not_downloaded(tmp_path, small_files):
    # Content-Length 1e15: refused on the headers, before any of the body.
    message, seconds = _fetch_from(tmp_path, 10**15, 50 << 20)
    assert f"announces {10**15} bytes (Content-Length), more than the " in message
    assert f"{small_files} this file can have; not downloaded" in message
    assert seconds < 10


def test_a_body_past_the_size_of_the_file_is_stopped(tmp_path, small_files):
    # No Content-Length, 50 MB of body: stopped after about small_files bytes.
    message, _ = _fetch_from(tmp_path, None, 50 << 20)
    assert f"sent more than the {small_files} bytes this file can have" in message


def test_a_body_shorter_than_its_content_length_is_incomplete(tmp_path):
    message, _ = _fetch_from(tmp_path, 5000, 1000)
    assert "incomplete download of http://127.0.0.1:" in message
    assert "the body ended after 1000 of the 5000 bytes" in message
    assert "Checksum mismatch" not in message
