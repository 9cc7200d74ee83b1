"""Photos: JPEG decoded at reduced scale, simplejpeg equal to Pillow, EXIF
orientation, CMYK, progressive and grey JPEGs, WebP, BMP, GIF and TIFF, and
the two resize policies. Every file is made here."""

import io

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps

from sk_template.datasets import _decode, iter_image_folder, load_image_folder

BILINEAR = Image.Resampling.BILINEAR


def _photo(h, w, seed=0):
    """A smooth colour image with some noise: JPEG-friendly, not symmetric."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack(
        [x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1), (x + 2 * y) % 256], -1
    )
    noise = rng.integers(-12, 13, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def _jpeg(pixels, **save):
    """JPEG bytes of an array or a PIL image (say, a CMYK one)."""
    im = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    im.save(buf, "JPEG", **{"quality": 90, **save})
    return buf.getvalue()


def _decode_with(monkeypatch, data, use_simplejpeg, **kwargs):
    with monkeypatch.context() as m:
        m.setattr(_decode, "USE_SIMPLEJPEG", use_simplejpeg)
        return _decode.decode_bytes(data, **kwargs)


# name -> JPEG bytes
JPEGS = {
    "420": _jpeg(_photo(75, 100)),
    "444": _jpeg(_photo(75, 100), subsampling=0),
    "422": _jpeg(_photo(75, 100), subsampling=1),
    "progressive": _jpeg(_photo(75, 100), progressive=True),
    "grey": _jpeg(np.asarray(Image.fromarray(_photo(75, 100)).convert("L"))),
    "odd_size": _jpeg(_photo(37, 53)),
    "tiny": _jpeg(_photo(3, 2)),
    "restarts": _jpeg(_photo(75, 100), restart_marker_rows=1),
}
SIZES = [None, (16, 16), (9, 30), (60, 40), (75, 100), (150, 120)]


# ------------------------------------------------------------ JPEG decoders
@pytest.mark.parametrize("resize", ["stretch", "crop"])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", ["L", "RGB", "RGBA", None])
@pytest.mark.parametrize("kind", list(JPEGS))
def test_simplejpeg_and_pillow_give_identical_pixels(
    monkeypatch, kind, mode, size, resize
):
    pytest.importorskip("simplejpeg")
    kwargs = {"mode": mode, "size": size, "resize": resize}
    fast = _decode_with(monkeypatch, JPEGS[kind], True, **kwargs)
    slow = _decode_with(monkeypatch, JPEGS[kind], False, **kwargs)
    assert fast.dtype == slow.dtype == np.uint8
    np.testing.assert_array_equal(fast, slow)


@pytest.mark.parametrize("kind", list(JPEGS))
def test_simplejpeg_really_decodes_plain_jpegs(monkeypatch, kind):
    simplejpeg = pytest.importorskip("simplejpeg")
    calls = []
    real = simplejpeg.decode_jpeg
    monkeypatch.setattr(
        _decode._simplejpeg,
        "decode_jpeg",
        lambda *a, **k: calls.append(k) or real(*a, **k),
    )
    _decode.decode_bytes(JPEGS[kind], mode="RGB", size=(16, 16))
    assert len(calls) == 1


def _exif(orientation):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif


@pytest.mark.parametrize(
    "data",
    [
        _jpeg(_photo(20, 30), exif=_exif(6)),
        _jpeg(Image.fromarray(_photo(20, 30)).convert("CMYK")),
    ],
    ids=["exif", "cmyk"],
)
def test_simplejpeg_leaves_exif_and_cmyk_to_pillow(monkeypatch, data):
    pytest.importorskip("simplejpeg")
    monkeypatch.setattr(_decode, "USE_SIMPLEJPEG", False)
    pillow = _decode.decode_bytes(data, mode="RGB", size=(8, 8))
    monkeypatch.setattr(_decode, "USE_SIMPLEJPEG", True)

    def refuse(*args):  # pytest's failure is no Exception: nothing catches it
        pytest.fail("simplejpeg was asked to decode an EXIF or CMYK JPEG")

    monkeypatch.setattr(_decode, "_decode_simplejpeg", refuse)
    np.testing.assert_array_equal(
        _decode.decode_bytes(data, mode="RGB", size=(8, 8)), pillow
    )


def test_the_cache_key_names_the_jpeg_decoder(monkeypatch):
    monkeypatch.setattr(_decode, "USE_SIMPLEJPEG", False)
    pillow = _decode.decoder_id()
    monkeypatch.setattr(_decode, "USE_SIMPLEJPEG", True)
    monkeypatch.setattr(_decode, "_simplejpeg", object())
    assert _decode.decoder_id() != pillow


@pytest.mark.parametrize("use_simplejpeg", [True, False])
def test_large_jpegs_are_decoded_at_reduced_scale(monkeypatch, use_simplejpeg):
    """libjpeg scales by 1/4 (500x376 to 125x94 for 64x64), never below the
    output; the result is the full-size decode resized, up to rounding."""
    data = _jpeg(_photo(376, 500), quality=95)
    if use_simplejpeg:
        pytest.importorskip("simplejpeg")
    scales = []  # the size of each image as decoded, before resizing
    real_finish = _decode._finish

    def finish(im, *args, **kwargs):
        scales.append(im.size)
        return real_finish(im, *args, **kwargs)

    monkeypatch.setattr(_decode, "_finish", finish)
    full = np.asarray(Image.open(io.BytesIO(data)))
    for size, resize, scaled in [
        ((64, 64), "stretch", (125, 94)),
        ((64, 64), "crop", (125, 94)),  # the crop is 376x376: 1/4 is 94x94
        ((100, 100), "crop", (250, 188)),  # 1/4 would be 94 < 100
        ((200, 200), "stretch", (500, 376)),  # 1/2 would be 188 < 200
    ]:
        scales.clear()
        out = _decode_with(
            monkeypatch, data, use_simplejpeg, mode="RGB", size=size, resize=resize
        )
        assert out.shape == (*size, 3)
        assert scales[-1] == scaled
        box = _decode.resize_box(500, 376, size, resize)
        reference = np.asarray(
            Image.fromarray(full).resize(size[::-1], BILINEAR, box=box)
        )
        diff = np.abs(out.astype(int) - reference)
        assert diff.mean() < 1.5, (size, resize)


def test_progressive_gives_the_pixels_of_baseline():
    """A progressive JPEG holds the same coefficients in another order."""
    pixels = _photo(120, 90)
    for size in [None, (30, 30)]:
        baseline = _decode.decode_bytes(_jpeg(pixels), mode="RGB", size=size)
        progressive = _decode.decode_bytes(
            _jpeg(pixels, progressive=True), mode="RGB", size=size
        )
        np.testing.assert_array_equal(progressive, baseline)


def test_cmyk_jpeg():
    rgb = _photo(40, 60)
    data = _jpeg(Image.fromarray(rgb).convert("CMYK"))
    expected = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    for mode in ["RGB", None]:
        np.testing.assert_array_equal(_decode.decode_bytes(data, mode=mode), expected)
    small = _decode.decode_bytes(data, mode="RGB", size=(10, 15))
    reference = np.asarray(Image.fromarray(expected).resize((15, 10), BILINEAR))
    assert np.abs(small.astype(int) - reference).mean() < 2
    # And close to the colours it was made from.
    assert np.abs(expected.astype(int) - rgb).mean() < 8


def test_grey_jpeg_in_rgb_mode():
    data = JPEGS["grey"]
    grey = _decode.decode_bytes(data, mode="L")
    rgb = _decode.decode_bytes(data, mode="RGB")
    assert grey.shape == (75, 100) and rgb.shape == (75, 100, 3)
    for channel in range(3):
        np.testing.assert_array_equal(rgb[..., channel], grey)
    assert _decode.decode_bytes(data, mode=None).shape == (75, 100)


# ------------------------------------------------------------ EXIF orientation
UPRIGHT = _photo(6, 10, seed=3)  # 6 rows, 10 columns: as a viewer shows it
# The stored pixels for each EXIF orientation of an image that looks UPRIGHT.
STORED = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, 1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, -1),
}


def _with_orientation(fmt, orientation, path):
    stored = np.ascontiguousarray(STORED[orientation](UPRIGHT))
    options = {"exif": _exif(orientation)}
    if fmt == "WEBP":
        options["lossless"] = True
    if fmt == "TIFF":
        options = {"tiffinfo": {ExifTags.Base.Orientation: orientation}}
    Image.fromarray(stored).save(path, fmt, **options)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_exif_orientation_turns_images_upright(tmp_path, fmt, orientation):
    path = _with_orientation(fmt, orientation, tmp_path / f"o{orientation}")
    out = _decode.decode_file(str(path), mode="RGB")
    np.testing.assert_array_equal(out, UPRIGHT)
    # Resized images are upright too, at the size asked for.
    assert _decode.decode_file(str(path), mode="RGB", size=(3, 7)).shape == (3, 7, 3)


@pytest.mark.parametrize("orientation", [2, 3, 5, 6, 7, 8])
def test_exif_orientation_of_jpegs(tmp_path, orientation):
    """As ImageOps.exif_transpose shows them, also when reduced by libjpeg."""
    upright = _photo(300, 200)
    path = tmp_path / "phone.jpg"
    stored = np.ascontiguousarray(STORED[orientation](upright))
    Image.fromarray(stored).save(path, quality=95, exif=_exif(orientation))
    expected = np.asarray(ImageOps.exif_transpose(Image.open(path)))
    assert expected.shape == (300, 200, 3)
    np.testing.assert_array_equal(_decode.decode_file(str(path), mode="RGB"), expected)
    for resize in ["stretch", "crop"]:
        small = _decode.decode_file(str(path), mode="RGB", size=(40, 50), resize=resize)
        box = _decode.resize_box(200, 300, (40, 50), resize)
        reference = np.asarray(
            Image.fromarray(expected).resize((50, 40), BILINEAR, box=box)
        )
        assert np.abs(small.astype(int) - reference).mean() < 2, resize


# ------------------------------------------------------------ other formats
def test_webp_bmp_tiff_decode_exactly(tmp_path):
    rgb = _photo(7, 9)
    # No alpha of 0: lossless WebP may drop the colour of invisible pixels.
    rgba = np.dstack([rgb, 1 + np.arange(63, dtype=np.uint8).reshape(7, 9) * 4])
    cases = [
        ("x.webp", rgb, {"lossless": True}, "RGB"),
        ("a.webp", rgba, {"lossless": True}, "RGBA"),
        ("x.bmp", rgb, {}, "RGB"),
        ("x.tif", rgb, {}, "RGB"),
        ("a.tif", rgba, {}, "RGBA"),
        ("g.tif", rgb[..., 0], {}, "L"),
    ]
    for name, pixels, options, mode in cases:
        Image.fromarray(pixels).save(tmp_path / name, **options)
        out = _decode.decode_file(str(tmp_path / name), mode=None)
        np.testing.assert_array_equal(out, pixels, err_msg=name)
        assert _decode.decode_file(str(tmp_path / name), mode=mode).shape == (
            pixels.shape
        )


def test_lossy_webp(tmp_path):
    rgb = _photo(40, 60)
    Image.fromarray(rgb).save(tmp_path / "x.webp", quality=90)
    out = _decode.decode_file(str(tmp_path / "x.webp"), mode="RGB", size=(20, 30))
    assert out.shape == (20, 30, 3)
    expected = np.asarray(Image.fromarray(rgb).resize((30, 20), BILINEAR))
    assert np.abs(out.astype(int) - expected).mean() < 8


def test_gif_gives_its_first_frame(tmp_path):
    frames = [np.full((5, 8), v, dtype=np.uint8) for v in (10, 200, 90)]
    frames[0][0, :4] = 250  # not a flat frame
    images = [Image.fromarray(f).convert("P") for f in frames]
    images[0].save(tmp_path / "x.gif", save_all=True, append_images=images[1:])
    with Image.open(tmp_path / "x.gif") as im:
        assert im.n_frames == 3
    np.testing.assert_array_equal(
        _decode.decode_file(str(tmp_path / "x.gif"), mode="L"), frames[0]
    )
    rgb = _decode.decode_file(str(tmp_path / "x.gif"), mode="RGB")
    np.testing.assert_array_equal(rgb, np.dstack([frames[0]] * 3))


# ------------------------------------------------------------ resize policies
def test_crop_keeps_the_aspect_ratio_and_the_centre(tmp_path):
    """A wide image whose sides are red and centre blue: "crop" keeps the
    square centre, "stretch" squeezes in the sides as well."""
    wide = np.zeros((20, 60, 3), dtype=np.uint8)
    wide[:, :20, 0] = wide[:, 40:, 0] = 255  # red sides
    wide[:, 20:40, 2] = 255  # blue centre
    Image.fromarray(wide).save(tmp_path / "wide.png")
    path = str(tmp_path / "wide.png")
    crop = _decode.decode_file(path, mode="RGB", size=(10, 10), resize="crop")
    # Blue, but for a trace of red at the edges (the filter reaches past them).
    inner = crop[:, 1:-1]
    assert (inner[..., 2] == 255).all() and (inner[..., 0] == 0).all()
    assert crop[..., 0].max() < 40 and crop[..., 2].min() > 200
    stretch = _decode.decode_file(path, mode="RGB", size=(10, 10))
    assert (stretch[:, 0, 0] == 255).all() and (stretch[:, 5, 2] == 255).all()
    # The crop is one resampling of the centre region: Pillow's resize(box=).
    expected = np.asarray(
        Image.fromarray(wide).resize((10, 10), BILINEAR, box=(20, 0, 40, 20))
    )
    np.testing.assert_array_equal(crop, expected)
    # A tall image is cut at the top and bottom.
    tall = np.ascontiguousarray(wide.swapaxes(0, 1))
    Image.fromarray(tall).save(tmp_path / "tall.png")
    crop = _decode.decode_file(
        str(tmp_path / "tall.png"), mode="RGB", size=(10, 10), resize="crop"
    )
    inner = crop[1:-1]
    assert (inner[..., 2] == 255).all() and (inner[..., 0] == 0).all()


def test_resize_box():
    assert _decode.resize_box(60, 20, (10, 10), "crop") == (20.0, 0.0, 40.0, 20.0)
    assert _decode.resize_box(20, 60, (10, 10), "crop") == (0.0, 20.0, 20.0, 40.0)
    assert _decode.resize_box(20, 60, (10, 5), "crop") == (0.0, 10.0, 20.0, 50.0)
    assert _decode.resize_box(20, 60, (6, 1), "stretch") == (0.0, 0.0, 20.0, 60.0)


def test_images_of_the_output_size_are_not_resampled(tmp_path):
    pixels = _photo(8, 12)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    for resize in ["stretch", "crop"]:
        np.testing.assert_array_equal(
            _decode.decode_file(
                str(tmp_path / "x.png"), mode="RGB", size=(8, 12), resize=resize
            ),
            pixels,
        )


def test_load_a_folder_of_mixed_photos(tmp_path):
    """JPEG, PNG, WebP of several sizes and orientations, one call."""
    root = tmp_path / "photos"
    for label, seed in [("beach", 1), ("forest", 2)]:
        (root / label).mkdir(parents=True)
        for k, (h, w) in enumerate([(120, 160), (160, 120), (90, 90), (33, 200)]):
            pixels = _photo(h, w, seed=seed + 10 * k)
            ext = ["jpg", "png", "webp", "jpg"][k]
            Image.fromarray(pixels).save(root / label / f"{k}.{ext}")
    bunch = load_image_folder(
        root, mode="RGB", size=(32, 32), resize="crop", data_home=tmp_path / "c"
    )
    assert bunch.images.shape == (8, 32, 32, 3)
    assert bunch.target.tolist() == ["beach"] * 4 + ["forest"] * 4
    # The cache tells the policies apart.
    stretched = load_image_folder(
        root, mode="RGB", size=(32, 32), data_home=tmp_path / "c"
    )
    assert not np.array_equal(stretched.images[3], bunch.images[3])
    again = load_image_folder(
        root, mode="RGB", size=(32, 32), resize="crop", data_home=tmp_path / "c"
    )
    np.testing.assert_array_equal(again.images, bunch.images)
    # Streaming gives the same rows.
    batches = iter_image_folder(
        root, mode="RGB", size=(32, 32), resize="crop", batch_size=3
    )
    np.testing.assert_array_equal(np.concatenate([X for X, _ in batches]), bunch.data)


def test_mixed_sizes_error_names_the_cli_flag(tmp_path):
    for k, shape in enumerate([(5, 5), (6, 4)]):
        (tmp_path / "a").mkdir(exist_ok=True)
        Image.fromarray(np.zeros(shape, np.uint8)).save(tmp_path / "a" / f"{k}.png")
    with pytest.raises(ValueError, match="do not all have the same size") as info:
        load_image_folder(tmp_path, cache=False)
    assert "size=(height, width)" in str(info.value)
    assert "--size HxW" in str(info.value)
    assert "--resize crop" in str(info.value)


@pytest.mark.parametrize("resize", ["squash", None, "CROP"])
def test_bad_resize(tmp_path, resize):
    with pytest.raises(ValueError, match="resize must be 'stretch'.*or 'crop'"):
        load_image_folder(tmp_path, size=(4, 4), resize=resize)
