"""The one decoder behind the loader, the batch iterator and ``predict``:
the first readable image sets the shape for every batch, and the policies
for unreadable files and odd shapes stop at the first such file in order or
leave it out, reported."""

# SPDX-License-Identifier: BSD-3-Clause

import numpy as np
import pytest
from PIL import Image

from sk_template.datasets import ImageDecodeError
from sk_template.datasets._batches import BatchDecoder, ImageSizeMismatch

RNG = np.random.default_rng(11)


def _png(path, shape, value=None):
    pixels = (
        RNG.integers(0, 256, size=shape, dtype=np.uint8)
        if value is None
        else np.full(shape, value, np.uint8)
    )
    Image.fromarray(pixels).save(path)
    return str(path), pixels


@pytest.fixture
def files(tmp_path):
    """good 4x3, broken, good 4x3, odd 5x5, good 4x3: names and pixels."""
    out = []
    for i, kind in enumerate(["good", "broken", "good", "odd", "good"]):
        path = tmp_path / f"{i}-{kind}.png"
        if kind == "broken":
            path.write_bytes(b"\x89PNG\r\n\x1a\n not a png")
            out.append((str(path), None))
        else:
            out.append(_png(path, (5, 5) if kind == "odd" else (4, 3)))
    return out


def _decoder(**kwargs):
    kwargs.setdefault("on_error", "skip")
    return BatchDecoder(mode="L", size=None, resize="stretch", **kwargs)


def test_skip_both_compacts_the_kept_rows_and_reports_the_rest(files):
    names = [n for n, _ in files]
    got = _decoder(on_mismatch="skip").decode(names)
    np.testing.assert_array_equal(
        got.images, np.stack([files[i][1] for i in (0, 2, 4)])
    )
    assert got.keep.tolist() == [True, False, True, False, True]
    assert [p for p, _ in got.skipped] == [names[1]]
    assert got.mismatched == [(names[3], (5, 5))]


def test_a_batch_with_every_row_kept_is_not_copied(files):
    names = [files[i][0] for i in (0, 2, 4)]
    got = _decoder().decode(names)
    assert got.keep is None and got.skipped == got.mismatched == []
    assert got.images.shape == (3, 4, 3) and got.images.base is None


def test_the_first_readable_image_sets_the_shape_of_later_batches(files):
    names = [n for n, _ in files]
    decoder = _decoder(on_mismatch="skip")
    nothing = decoder.decode(names[1:2])  # only the broken file: no shape yet
    assert nothing.images is None and nothing.keep.tolist() == [False]
    assert decoder.shape is None
    odd_first = decoder.decode([names[3], names[0]])
    assert decoder.shape == (5, 5) and decoder.reference == names[3]
    assert odd_first.mismatched == [(names[0], (4, 3))]
    later = decoder.decode([names[2], names[3]])  # the 5x5 shape holds
    assert later.mismatched == [(names[2], (4, 3))]
    np.testing.assert_array_equal(later.images[0], files[3][1])


@pytest.mark.parametrize(
    "order, error",
    [([0, 3, 1], ImageSizeMismatch), ([0, 1, 3], ImageDecodeError)],
    ids=["mismatch-first", "unreadable-first"],
)
def test_raise_stops_at_the_first_bad_file_in_order(files, order, error):
    names = [files[i][0] for i in order]
    with pytest.raises(error) as info:
        _decoder(on_error="raise", on_mismatch="raise").decode(names)
    if error is ImageSizeMismatch:
        assert info.value.reference == names[0] and info.value.shape == (4, 3)
        assert info.value.mismatched == [(names[1], (5, 5))]
    else:
        assert info.value.path == names[1]


def test_a_mismatch_raises_under_skip_for_unreadable_files(files):
    names = [n for n, _ in files]
    with pytest.raises(ImageSizeMismatch, match="do not all have the same size"):
        _decoder(where="pics").decode(names)


def test_a_given_shape_is_the_reference(files):
    names = [n for n, _ in files]
    got = _decoder(shape=(5, 5), on_mismatch="skip").decode(names)
    assert got.keep.tolist() == [False, False, False, True, False]
    assert [p for p, _ in got.mismatched] == [names[i] for i in (0, 2, 4)]


def test_check_first_refuses_the_shape_before_the_rest_is_decoded(files, monkeypatch):
    from sk_template.datasets import _batches

    seen = []

    def refuse(shape, path):
        seen.append((shape, path))
        raise ValueError("the model takes 5x5 images")

    monkeypatch.setattr(
        _batches, "decode_files", lambda *a, **k: pytest.fail("decoded the rest")
    )
    names = [n for n, _ in files]
    with pytest.raises(ValueError, match="takes 5x5"):
        _decoder(check_first=refuse).decode(names[1:])  # the broken one first
    assert seen == [((4, 3), names[2])]


def test_policies_are_checked():
    with pytest.raises(ValueError, match="on_mismatch must be one of"):
        _decoder(on_mismatch="ignore")
