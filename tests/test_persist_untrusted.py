"""load_model on files from anyone: bombs, absurd numbers, special files, pickles.

Every file here is crafted by the test; each must be refused with a
``ValueError`` naming what is wrong, quickly and in little memory.
"""

# SPDX-License-Identifier: BSD-3-Clause

import io
import json
import math
import os
import pickle
import stat
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib

import joblib
import numpy as np
import pytest
from sklearn.datasets import load_digits

from sk_template import NearestMeanImageClassifier
from sk_template._persist import load_model, save_model
from sk_template.cli import main

# A member that decompresses to this much: more than the 100 MB a crafted file
# may cost, and enough to see the difference.
BOMB_BYTES = 128 << 20
MEMORY_LIMIT = 100 << 20


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X * 16).clip(0, 255).astype(np.uint8), y


@pytest.fixture
def model_file(tmp_path, digits):
    clf = NearestMeanImageClassifier().fit(*digits)
    return save_model(clf, tmp_path / "model.npz", image_shape=(8, 8))


def _members(path):
    with np.load(path, allow_pickle=False) as npz:
        return {name: npz[name] for name in npz.files}


def _npy_header(shape, descr="<f8"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def _craft(path, source, name, method, shape, *, data_bytes=None):
    """Rewrite ``source`` into ``path`` with member ``name`` replaced by an
    .npy of ``shape`` float64 zeros (``data_bytes`` of them), compressed
    with ``method``; the other members are stored as numpy stores them."""
    arrays = _members(source)
    header = _npy_header(shape)
    if data_bytes is None:
        data_bytes = math.prod(shape) * 8
    zeros = bytes(1 << 20)
    with zipfile.ZipFile(path, "w") as zf:
        for other, value in arrays.items():
            if other != name:
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, value, allow_pickle=False)
                zf.writestr(other + ".npy", buffer.getvalue())
        info = zipfile.ZipInfo(name + ".npy")
        info.compress_type = method
        with zf.open(info, "w", force_zip64=True) as member:
            member.write(header)
            left = data_bytes
            while left:
                member.write(zeros[: min(left, len(zeros))])
                left -= min(left, len(zeros))
    return path


def _set_sizes(path, name, file_size, crc=0):
    """Make member ``name`` (of an archive without zip64 fields) declare
    ``file_size`` and ``crc`` in its local and central headers."""
    data = bytearray(path.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    count, _, pos = struct.unpack_from("<HLL", data, eocd + 10)
    for _ in range(count):
        n, m, k = struct.unpack_from("<3H", data, pos + 28)
        if data[pos + 46 : pos + 46 + n] == (name + ".npy").encode():
            local = struct.unpack_from("<L", data, pos + 42)[0]
            for at in (pos + 16, local + 14):
                struct.pack_into("<L", data, at, crc)
            struct.pack_into("<L", data, pos + 24, file_size)
            struct.pack_into("<L", data, local + 22, file_size)
        pos += 46 + n + m + k
    path.write_bytes(bytes(data))


def _load_measured(path):
    """``load_model(path)``'s error, and the peak memory it took in bytes."""
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as info:
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return str(info.value), peak


# ---------------------------------------------------------- decompression bombs
@pytest.fixture(scope="module")
def bombs(tmp_path_factory, digits):
    """Model files whose ``stats_sums`` is a decompression bomb (built once)."""
    folder = tmp_path_factory.mktemp("bombs")
    source = save_model(NearestMeanImageClassifier().fit(*digits), folder / "m.npz")
    n = BOMB_BYTES // 8 // 10
    made = {
        # bzip2: a few hundred bytes that expand to 128 MiB.
        "bzip2": _craft(folder / "bz2.npz", source, "stats_sums", 12, (10, n)),
        # deflate, the header honest about a huge shape (about 1000-fold).
        "deflate": _craft(folder / "deflate.npz", source, "stats_sums", 8, (10, n)),
        # deflate, declaring the size of (10, 64) but expanding to 128 MiB.
        "deflate-longer": _craft(
            folder / "longer.npz",
            source,
            "stats_sums",
            8,
            (10, 64),
            data_bytes=BOMB_BYTES,
        ),
    }
    header = len(_npy_header((10, 64)))
    with zipfile.ZipFile(made["deflate-longer"]) as zf:
        assert zf.getinfo("stats_sums.npy").file_size > BOMB_BYTES
    _rewrite_no_zip64(made["deflate-longer"])
    _set_sizes(made["deflate-longer"], "stats_sums", header + 10 * 64 * 8)
    return made


def _rewrite_no_zip64(path):
    """Copy the archive member by member, compressed data untouched, without
    the zip64 extra fields (so that sizes sit in the plain header fields)."""
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        raw = path.read_bytes()
    out = io.BytesIO()
    central = []
    for info in infos:
        local = info.header_offset
        n, m = struct.unpack_from("<HH", raw, local + 26)
        start = local + 30 + n + m
        data = raw[start : start + info.compress_size]
        offset = out.tell()
        name = info.filename.encode()
        fields = (20, 0, info.compress_type, 0, 0, info.CRC)
        sizes = (info.compress_size, info.file_size)
        out.write(
            struct.pack("<4s5HL2L2H", b"PK\x03\x04", *fields, *sizes, len(name), 0)
        )
        out.write(name + data)
        central.append(
            struct.pack(
                "<4s6HL2L5H2L",
                b"PK\x01\x02",
                20,
                *fields,
                *sizes,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    start = out.tell()
    for record in central:
        out.write(record)
    size = out.tell() - start
    out.write(
        struct.pack(
            "<4s4H2LH", b"PK\x05\x06", 0, 0, len(infos), len(infos), size, start, 0
        )
    )
    path.write_bytes(out.getvalue())


@pytest.mark.parametrize("kind", ["bzip2", "deflate", "deflate-longer"])
def test_decompression_bombs_are_refused_in_little_memory(bombs, kind):
    message, peak = _load_measured(bombs[kind])
    assert str(bombs[kind]) in message
    assert peak < MEMORY_LIMIT, f"{kind}: {peak / 2**20:.0f} MiB"
    expected = {
        "bzip2": "compressed with bzip2, which numpy never writes",
        "deflate": "would expand from",
        "deflate-longer": "corrupt or truncated model file",
    }[kind]
    assert expected in message


@pytest.mark.parametrize("method, name", [(12, "bzip2"), (14, "lzma")])
def test_other_compression_methods_are_refused(tmp_path, model_file, method, name):
    path = _craft(tmp_path / "odd.npz", model_file, "classes", method, (10,))
    with pytest.raises(ValueError, match=f"compressed with {name}, which numpy never"):
        load_model(path)


def test_member_size_must_match_its_header(tmp_path, model_file):
    # The header says (10, 64) float64, the zip entry declares 8 bytes more.
    path = _craft(tmp_path / "m.npz", model_file, "stats_sums", 8, (10, 64))
    _rewrite_no_zip64(path)
    header = len(_npy_header((10, 64)))
    with zipfile.ZipFile(path) as zf:
        crc = zf.getinfo("stats_sums.npy").CRC
    _set_sizes(path, "stats_sums", header + 10 * 64 * 8 + 8, crc)
    with pytest.raises(ValueError, match="declares .* but its header"):
        load_model(path)


def test_honest_deflated_archive_still_loads(tmp_path, model_file, digits):
    # np.savez_compressed writes deflate: a model re-saved so still loads.
    path = tmp_path / "compressed.npz"
    np.savez_compressed(path, **_members(model_file))
    X, _ = digits
    np.testing.assert_array_equal(
        load_model(path).predict(X), load_model(model_file).predict(X)
    )


# --------------------------------------------------- numbers that cannot predict
def _rewrite(path, **changes):
    arrays = _members(path)
    arrays.update(changes)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
    return path


def _params(path, **changes):
    params = json.loads(str(_members(path)["params"]))
    params.update(changes)
    return np.array(json.dumps(params))


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda p: {"stats_sums": np.full((10, 64), 1e308)}, "stats_sums"),
        (lambda p: {"stats_sums": np.full((10, 64), 1e200)}, "stats_sums"),
        (lambda p: {"stats_sq_sums": np.full(64, 1e308)}, "stats_sq_sums"),
        (lambda p: {"stats_weights": np.full(10, np.inf)}, "stats_weights"),
        (lambda p: {"params": _params(p, priors=[float("nan")] * 10)}, "priors"),
        (lambda p: {"params": _params(p, priors=[0.0] * 10)}, "priors"),
        (lambda p: {"params": _params(p, batch_size=float("inf"))}, "batch_size"),
    ],
)
@pytest.mark.filterwarnings("ignore:The priors do not sum to 1")
def test_statistics_that_cannot_predict_are_refused(model_file, change, field):
    _rewrite(model_file, **change(model_file))
    with pytest.raises(ValueError, match="corrupt model file") as info:
        load_model(model_file)
    assert field in str(info.value)
    assert str(model_file) in str(info.value)


def test_deeply_nested_parameters_are_a_clear_error(model_file):
    _rewrite(model_file, params=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(ValueError, match="'params' is JSON nested too deeply"):
        load_model(model_file)


def test_cli_refuses_a_model_that_would_print_nan(tmp_path, model_file, capsys):
    _rewrite(model_file, stats_sums=np.full((10, 64), 1e308))
    image = tmp_path / "x.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8), dtype=np.uint8)).save(image)
    assert main(["predict", str(model_file), str(image), "-q"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "stats_sums" in captured.err and "nan" not in captured.out


# ------------------------------------------------------------------ special files
def _unblock_readers(fifo, stop):
    """Until ``stop``, feed garbage to any reader blocked on ``fifo``: without
    the check, load_model would hang there for ever."""
    while not stop.is_set():
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # no reader
            time.sleep(0.05)
            continue
        try:
            os.write(fd, b"garbage")
        finally:
            os.close(fd)


@pytest.mark.parametrize("via_link", [False, True])
def test_fifo_is_refused_before_opening(tmp_path, via_link, capsys):
    fifo = tmp_path / "model.npz"
    os.mkfifo(fifo)
    path = fifo
    if via_link:
        path = tmp_path / "link.npz"
        path.symlink_to(fifo)
    stop = threading.Event()
    feeder = threading.Thread(target=_unblock_readers, args=(fifo, stop))
    feeder.start()
    try:
        with pytest.raises(
            ValueError, match="is a FIFO .named pipe., not a model file"
        ):
            load_model(path)
        assert main(["means", str(path), "-o", str(tmp_path / "m.png")]) == 1
        assert "is a FIFO (named pipe), not a model file" in capsys.readouterr().err
    finally:
        stop.set()
        feeder.join()
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)


def test_device_is_refused():
    with pytest.raises(ValueError, match="is a character device, not a model file"):
        load_model(os.devnull)


# ------------------------------------------------------------------ old pickles
@pytest.mark.parametrize("protocol", [0, 1])
@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_protocol_0_and_1_pickles_are_recognised(tmp_path, digits, protocol, dump):
    clf = NearestMeanImageClassifier().fit(*digits)
    path = tmp_path / "model.pkl"
    if dump == "pickle":
        path.write_bytes(pickle.dumps(clf, protocol=protocol))
    else:
        joblib.dump(clf, path, protocol=protocol)
    with pytest.raises(ValueError, match="is a pickle .protocol 0 or 1.") as info:
        load_model(path)
    assert "can run code when loaded" in str(info.value)


@pytest.mark.parametrize(
    "content",
    [b"hello, world\n", b"cats,dogs\n1,2\n", b"(\n", b"\x00" * 100, zlib.compress(b"")],
)
def test_other_bytes_are_not_called_pickles(tmp_path, content):
    path = tmp_path / "model.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_model(path)
    assert "pickle (protocol" not in str(info.value)


def _with_member(path, source, name, data):
    """``source`` rewritten into ``path`` with member ``name`` replaced by
    the raw bytes ``data``."""
    with zipfile.ZipFile(path, "w") as zf:
        for other, value in _members(source).items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, value, allow_pickle=False)
            zf.writestr(other + ".npy", data if other == name else buffer.getvalue())
    return path


def test_unparsable_npy_header_is_a_clear_error(tmp_path, model_file):
    # numpy parses the header as Python literals; an unterminated one raises
    # tokenize.TokenError there, which must not escape as such.
    header = b"{'descr': '<f8', 'fortran_order': False, 'shape': (10, 64"
    header += b" " * (118 - len(header)) + b"\n"
    member = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    path = _with_member(tmp_path / "bad.npz", model_file, "classes", member)
    with pytest.raises(ValueError, match="member 'classes' has a bad header"):
        load_model(path)


@pytest.mark.parametrize("descr", ["|S0", "<U0", "|V0"])
@pytest.mark.parametrize("name", ["classes", "params", "stats_sums"])
def test_zero_byte_dtypes_are_refused_by_name(tmp_path, model_file, descr, name):
    # An item of 0 bytes makes any shape 0 bytes long, so the size checks
    # cannot bound it: numpy would allocate 10**12 items (or crash) for it.
    header = _npy_header((10**12,), descr)
    path = _with_member(tmp_path / "bad.npz", model_file, name, header)
    message, peak = _load_measured(path)
    assert f"corrupt model file: {name} has dtype {np.dtype(descr)}" in message
    assert "0 bytes" in message
    assert peak < 50 * 2**20


# Found by tests/fuzz/fuzz_model_file.py: numpy reads any 32-bit value as a
# code unit of a "<U" array, and one past U+10FFFF made str() of it (the
# format marker, the parameters, the labels, the feature names) raise
# SystemError out of load_model.
@pytest.mark.parametrize("name", ["format", "params", "classes", "feature_names_in"])
@pytest.mark.parametrize("byteorder", ["<", ">"])
def test_text_past_unicode_is_refused_by_name(tmp_path, digits, name, byteorder):
    import pandas as pd

    X, y = digits
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(X.shape[1])])
    source = save_model(
        NearestMeanImageClassifier().fit(frame, y.astype(str)), tmp_path / "m.npz"
    )
    value = _members(source)[name]
    text = value.astype(value.dtype.newbyteorder(byteorder)).reshape(-1)
    units = text.view(byteorder + "u4").copy()
    units[0] = 0x110000
    bad = units.view(text.dtype).reshape(value.shape)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, bad)
    path = _with_member(tmp_path / "bad.npz", source, name, buffer.getvalue())
    with pytest.raises(
        ValueError, match=f"'{name}.npy' holds text that is not Unicode"
    ):
        load_model(path)
