"""From a folder (on a real S3 server on 127.0.0.1, or local) to predictions
on a real ``dask.distributed.LocalCluster`` of two worker processes: the
same answers as the same work done in this process, with a worker killed
midway, and memory per worker bounded by the chunk size."""

import io
import os
import signal
import sys
import time
import uuid
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.metrics import accuracy_score

from sk_template import NearestMeanImageClassifier, fit_dask
from sk_template.datasets import (
    SkippedImagesWarning,
    image_folder_to_dask,
    list_classes,
    load_image_folder,
    write_image_folder,
)

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")

pytestmark = pytest.mark.usefixtures("quiet_local_home")


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, every port chosen by the
    system, closed (workers, nannies and scheduler) after the module."""
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    client = distributed.Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()


def encode(array, fmt):
    buf = io.BytesIO()
    Image.fromarray(np.asarray(array, np.uint8)).save(buf, fmt, quality=95)
    return buf.getvalue()


def test_from_a_bucket_to_predictions_on_two_workers(s3_server, client, tmp_path):
    """PNGs and JPEGs with a corrupt file in a bucket; one object replaced
    after a first load; then image_folder_to_dask -> fit_dask -> predict on
    the cluster, equal to load_image_folder -> fit -> predict here."""
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    local = tmp_path / "digits"
    for i in range(120):
        fmt, ext = ("PNG", "png") if i % 2 else ("JPEG", "jpg")
        path = local / str(digits.target[i]) / f"{i}.{ext}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(images[i], fmt))
    (local / "3" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDRbroken")
    bucket = s3_server.bucket(f"sk-dist-{uuid.uuid4().hex[:8]}")
    url = s3_server.upload(local, bucket, "digits")
    options = s3_server.storage_options()
    with pytest.warns(SkippedImagesWarning, match="corrupt.png"):
        first = load_image_folder(url, storage_options=options, on_error="skip")
    # Replaced after the first load, in the bucket and in the local copy.
    replaced = encode(images[130], "PNG")
    s3_server.client.put_object(Bucket=bucket, Key="digits/0/1.png", Body=replaced)
    (local / "0" / "1.png").write_bytes(replaced)

    X, y = image_folder_to_dask(
        url, storage_options=options, on_error="skip", chunk_size=32
    )
    classes = list_classes(url, storage_options=options)
    with distributed.get_task_stream(client) as stream:
        X, y = dask.persist(X, y)  # decoded once, kept on the workers
        model = fit_dask(NearestMeanImageClassifier(), X, y, classes=classes)
        y_true, y_pred = dask.compute(y, model.predict(X))
    accuracy = accuracy_score(y_true, y_pred)

    with pytest.warns(SkippedImagesWarning, match="corrupt.png"):
        here = load_image_folder(local, on_error="skip", cache=False)
    reference = NearestMeanImageClassifier().fit(here.data, here.target)
    np.testing.assert_allclose(model.centroids_, reference.centroids_)
    np.testing.assert_array_equal(y_true, here.target)
    np.testing.assert_array_equal(y_pred, reference.predict(here.data))
    assert accuracy == accuracy_score(here.target, reference.predict(here.data))
    assert accuracy > 0.8
    # The replaced object's pixels, not the first load's.
    assert not np.array_equal(first.data, here.data)
    # The blocks were decoded and predicted on the two worker processes.
    ran = {
        (t["key"][0] if isinstance(t["key"], tuple) else t["key"]) for t in stream.data
    }
    assert any(name.startswith("_decode_block") for name in ran)
    assert any(name.startswith("_apply_method") for name in ran)
    # (Which of the two runs which block is dask's choice: one may take all.)
    assert {t["worker"] for t in stream.data} <= set(client.scheduler_info()["workers"])
    # A cached load now serves the new pixels, never the stale ones.
    with pytest.warns(SkippedImagesWarning):
        again = load_image_folder(url, storage_options=options, on_error="skip")
    np.testing.assert_array_equal(again.data, here.data)


def _peak_rss_reset():
    """Reset this process's peak resident set (Linux: /proc/self/clear_refs)
    and return the current one, in bytes."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_bytes("VmRSS")


def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _peak_growth(client, compute):
    """How much each worker's peak resident memory rose during ``compute()``."""
    before = client.run(_peak_rss_reset)
    compute()
    after = client.run(lambda: _status_bytes("VmHWM"))
    return max(after[w] - before[w] for w in before)


@pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="peak RSS from /proc (Linux)"
)
def test_worker_memory_is_bounded_by_the_chunk_size(client, tmp_path):
    """37.5 MiB of pixels predicted on two workers: in blocks of 0.5 MiB, each
    worker's peak memory rises by a few MiB (about 5 MiB measured), less than its
    18.75 MiB share; in blocks of 18.75 MiB (the same code, the chunk size
    alone changed) it rises by more than a block, so the measurement tells
    them apart."""
    client.wait_for_workers(2, timeout=60)
    ramp = np.add.outer(np.arange(128), np.arange(128))
    n = 2400
    images = np.stack([(ramp + 3 * i) % 256 for i in range(n)]).astype(np.uint8)
    root = write_image_folder(images, np.arange(n) % 2, tmp_path / "big", n_jobs=2)
    model = NearestMeanImageClassifier().fit(
        images[:200].reshape(200, -1), np.arange(200) % 2
    )

    def predicted(chunk_size):
        X, _ = image_folder_to_dask(root, chunk_size=chunk_size)
        return lambda: model.predict(X).compute()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # large graph warnings
        predicted(32)()  # warm up: every code path has run once on each worker
        small = _peak_growth(client, predicted(32))
        large = _peak_growth(client, predicted(n // 2))
    mib = 1 << 20
    assert small < 14 * mib, f"{small / mib:.1f} MiB for blocks of 0.5 MiB"
    assert large > 18.75 * mib, f"{large / mib:.1f} MiB for blocks of 18.75 MiB"


def _tasks_done(prefix):
    def count(dask_scheduler):
        return sum(
            1
            for key, ts in dask_scheduler.tasks.items()
            if ts.state == "memory" and str(key).startswith(f"('{prefix}")
        )

    return count


# Last in the module: the cluster is closed with the killed worker's
# replacement still starting, rather than waited for.
def test_a_worker_killed_mid_predict_gives_the_same_answer(client, tmp_path):
    digits = load_digits()
    images = np.rint(digits.images * (255 / 16)).astype(np.uint8)
    root = write_image_folder(images[:600], digits.target[:600], tmp_path / "d")
    X, y = image_folder_to_dask(root, chunk_size=20)  # 30 blocks
    bunch = load_image_folder(root, cache=False)
    model = NearestMeanImageClassifier().fit(bunch.data, bunch.target)

    def slowly(block):  # long enough to kill a worker in the middle
        time.sleep(0.15)
        return block

    predictions = model.predict(X.map_blocks(slowly, dtype=X.dtype))
    future = client.compute(predictions)
    deadline = time.monotonic() + 60
    while client.run_on_scheduler(_tasks_done("_apply_method")) < 4:
        assert time.monotonic() < deadline, "no block was predicted in a minute"
        time.sleep(0.05)
    busy = [w for w, keys in client.processing().items() if keys]
    assert busy, "nothing left to predict: the kill would not be mid-predict"
    victim = busy[0]
    pid = client.run(os.getpid, workers=[victim])[victim]
    os.kill(pid, signal.SIGKILL)
    result = future.result(timeout=120)
    np.testing.assert_array_equal(result, model.predict(bunch.data))
    assert victim not in client.scheduler_info()["workers"]  # it did die
