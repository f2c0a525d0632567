"""runtime.describe.image: decoding real files made with Pillow, model-input preparation, and every ImageError."""
from __future__ import annotations

import dataclasses
import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, features

from runtime.errors import ImageError, ImageTooLargeError
from runtime.describe.image import ACCEPTED_FORMATS, load_and_prepare, load_image, prepare
from runtime.describe.modelcard import InputSpec

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
ORIENTATION = 0x0112


DEMO_PHOTO = Path(__file__).resolve().parents[1] / "export" / "demo" / "images" / "alpro-blueberry-soyghurt_query.jpg"


def spec(height: int = 32, width: int = 32, mean=(127.0,) * 3, std=(128.0,) * 3) -> InputSpec:
    return InputSpec("image", height, width, tuple(mean), tuple(std), "shorter_side_center_crop")


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **kwargs)
    return buffer.getvalue()


def smooth_photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB image: random colours upsampled smoothly (JPEG-friendly, no flat areas)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((12, 16, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height (1-bit grey) followed by a tiny, bogus IDAT and IEND.

    Opening it reads the size; decoding it would fail as truncated/corrupt, so a "too large" error
    proves the size was refused before any decoding.
    """

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"\x00\x01\x02") + chunk(b"IEND", b"")


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# --- decoding -----------------------------------------------------------------------------------------


def test_jpeg_file_decodes_to_rgb(tmp_path: Path) -> None:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (40, 24), (200, 100, 50)).save(path, "JPEG", quality=95)
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.size == (40, 24)
    assert np.abs(pixels(image) - np.array([200, 100, 50])).max() <= 4


def test_path_given_as_str(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    Image.new("RGB", (5, 7), GREEN).save(path)
    image = load_image(str(path))
    assert image.size == (5, 7)
    assert (pixels(image) == GREEN).all()


def test_png_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    rgba = np.zeros((10, 30, 4), np.uint8)
    rgba[:, :10] = (255, 0, 0, 0)  # fully transparent red -> white
    rgba[:, 10:20] = (0, 0, 255, 255)  # opaque blue stays blue
    rgba[:, 20:] = (0, 0, 0, 128)  # half-transparent black -> mid grey
    path = tmp_path / "cutout.png"
    Image.fromarray(rgba, "RGBA").save(path)
    image = load_image(path)
    assert image.mode == "RGB"
    got = pixels(image)
    assert (got[:, :10] == (255, 255, 255)).all()
    assert (got[:, 10:20] == BLUE).all()
    assert np.abs(got[:, 20:] - 127).max() <= 1


def test_greyscale_with_alpha_is_composited_on_white(tmp_path: Path) -> None:
    la = Image.new("LA", (6, 6), (0, 0))  # black, fully transparent
    path = tmp_path / "la.png"
    la.save(path)
    got = pixels(load_image(path))
    assert (got == 255).all()


def test_gif_palette_transparency_is_composited_on_white(tmp_path: Path) -> None:
    palette_image = Image.new("P", (8, 8), 0)
    palette_image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    palette_image.paste(1, (4, 0, 8, 8))  # right half red (index 1); left half index 0 = transparent
    path = tmp_path / "logo.gif"
    palette_image.save(path, transparency=0)
    got = pixels(load_image(path))
    assert (got[:, :4] == (255, 255, 255)).all()
    assert (got[:, 4:] == RED).all()


def test_greyscale_becomes_rgb(tmp_path: Path) -> None:
    grey = Image.fromarray(np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1)), "L")
    path = tmp_path / "grey.png"
    grey.save(path)
    image = load_image(path)
    assert image.mode == "RGB"
    got = pixels(image)
    assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
    assert (got[..., 0] == np.asarray(grey)).all()


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    Image.new("RGB", (16, 16), (0, 0, 255)).convert("CMYK").save(path, "JPEG", quality=95)
    image = load_image(path)
    assert image.mode == "RGB"
    assert np.abs(pixels(image) - BLUE).max() <= 12


def _two_halves(width: int = 40, height: int = 20) -> Image.Image:
    image = Image.new("RGB", (width, height), RED)
    image.paste(BLUE, (width // 2, 0, width, height))  # stored: left half red, right half blue
    return image


def _with_orientation(image: Image.Image, path: Path, orientation: int) -> None:
    exif = image.getexif()
    exif[ORIENTATION] = orientation
    image.save(path, "JPEG", quality=95, exif=exif.tobytes())


@pytest.mark.parametrize(
    "orientation, top_colour, bottom_colour",
    [
        (6, RED, BLUE),  # stored image must turn 90 deg clockwise: its left column becomes the top row
        (8, BLUE, RED),  # 90 deg counter-clockwise: its right column becomes the top row
    ],
)
def test_exif_orientation_is_applied(tmp_path: Path, orientation: int, top_colour, bottom_colour) -> None:
    path = tmp_path / f"phone_{orientation}.jpg"
    _with_orientation(_two_halves(), path, orientation)
    with Image.open(path) as raw:
        assert raw.size == (40, 20)  # the file is stored sideways
    image = load_image(path)
    assert image.size == (20, 40)  # returned upright: width and height swapped
    got = pixels(image)
    assert np.abs(got[2:16].reshape(-1, 3) - top_colour).max() <= 40
    assert np.abs(got[24:38].reshape(-1, 3) - bottom_colour).max() <= 40


def test_exif_orientation_is_applied_to_pillow_images(tmp_path: Path) -> None:
    path = tmp_path / "phone.jpg"
    _with_orientation(_two_halves(), path, 6)
    with Image.open(path) as opened:
        image = load_image(opened)
    assert image.size == (20, 40)


def test_exif_orientation_survives_draft_decoding(tmp_path: Path) -> None:
    path = tmp_path / "phone_big.jpg"
    _with_orientation(_two_halves(1600, 800), path, 6)
    image = load_image(path, min_size=100)
    width, height = image.size
    assert height > width  # upright
    assert width < 800 and height < 1600  # and decoded at reduced scale


@pytest.mark.skipif(not features.check("webp"), reason="this Pillow has no WEBP support")
def test_webp(tmp_path: Path) -> None:
    path = tmp_path / "photo.webp"
    Image.new("RGB", (12, 9), (10, 200, 30)).save(path, "WEBP", lossless=True)
    image = load_image(path)
    assert image.size == (12, 9)
    assert (pixels(image) == (10, 200, 30)).all()


@pytest.mark.parametrize("fmt, suffix", [("BMP", "bmp"), ("TIFF", "tif")])
def test_other_accepted_formats(tmp_path: Path, fmt: str, suffix: str) -> None:
    assert fmt in ACCEPTED_FORMATS
    path = tmp_path / f"photo.{suffix}"
    Image.new("RGB", (7, 3), (1, 2, 3)).save(path, fmt)
    assert (pixels(load_image(path)) == (1, 2, 3)).all()


def test_bytes_bytearray_and_file_like_sources(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (9, 4), GREEN), "PNG")
    for source in (data, bytearray(data), io.BytesIO(data)):
        image = load_image(source)
        assert image.size == (9, 4)
        assert (pixels(image) == GREEN).all()
    path = tmp_path / "p.png"
    path.write_bytes(data)
    with open(path, "rb") as handle:
        assert load_image(handle).size == (9, 4)


def test_pillow_image_source_rgba() -> None:
    rgba = Image.new("RGBA", (3, 3), (0, 0, 0, 0))
    image = load_image(rgba)
    assert image.mode == "RGB"
    assert (pixels(image) == 255).all()


def test_numpy_rgb_array() -> None:
    array = np.random.default_rng(1).integers(0, 256, (5, 8, 3), dtype=np.uint8)
    image = load_image(array)
    assert image.mode == "RGB"
    assert image.size == (8, 5)
    assert (np.asarray(image) == array).all()


def test_numpy_rgba_array_is_composited_on_white() -> None:
    array = np.zeros((4, 4, 4), np.uint8)
    array[:2] = (0, 255, 0, 255)  # top: opaque green; bottom: transparent black
    got = pixels(load_image(array))
    assert (got[:2] == GREEN).all()
    assert (got[2:] == 255).all()


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4, 3), np.float32),
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 4, 3), np.uint8),
        np.zeros((2, 4, 4, 3), np.uint8),
    ],
    ids=["float", "2d", "2-channels", "5-channels", "no-rows", "4d"],
)
def test_bad_numpy_arrays(array: np.ndarray) -> None:
    with pytest.raises(ImageError, match=r"uint8 \(H, W, 3\|4\)"):
        load_image(array)


# --- errors -------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.jpg"
    with pytest.raises(ImageError, match="no such file") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match="empty") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_empty_bytes_and_stream() -> None:
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageError, match="empty"):
        load_image(io.BytesIO())


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="directory"):
        load_image(tmp_path)


def test_random_bytes(tmp_path: Path) -> None:
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(2).bytes(4096))
    with pytest.raises(ImageError, match="not a recognised image") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_random_bytes_through_a_named_stream_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "noise.bin"
    path.write_bytes(b"definitely not an image" * 10)
    with open(path, "rb") as handle, pytest.raises(ImageError, match="not a recognised image") as info:
        load_image(handle)
    assert "noise.bin" in str(info.value)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageError, match="cannot read an image from a int"):
        load_image(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize("cut", [0.5, 0.1])
def test_truncated_jpeg(tmp_path: Path, cut: float) -> None:
    data = encode(smooth_photo(400, 300), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: int(len(data) * cut)])
    with pytest.raises(ImageError, match="truncated") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_truncated_jpeg_with_draft(tmp_path: Path) -> None:
    data = encode(smooth_photo(800, 600), "JPEG", quality=90)
    with pytest.raises(ImageError, match="truncated"):
        load_and_prepare(data[: len(data) // 2], spec(64, 64))


def test_truncated_png() -> None:
    data = encode(smooth_photo(200, 100), "PNG")
    with pytest.raises(ImageError, match="truncated"):
        load_image(data[: len(data) // 2])


@pytest.mark.parametrize("fmt, suffix", [("PPM", "ppm"), ("ICO", "ico"), ("TGA", "tga"), ("PCX", "pcx")])
def test_format_pillow_opens_but_is_not_accepted(tmp_path: Path, fmt: str, suffix: str) -> None:
    assert fmt not in ACCEPTED_FORMATS
    path = tmp_path / f"image.{suffix}"
    Image.new("RGB", (16, 16), RED).save(path, fmt)
    with Image.open(path) as opened:  # Pillow itself reads it fine ...
        assert opened.format == fmt
    with pytest.raises(ImageError, match=f"unsupported image format {fmt}"):  # ... the runtime refuses it
        load_image(path)


def test_huge_real_png_refused_by_default(tmp_path: Path) -> None:
    path = tmp_path / "huge.png"
    Image.new("1", (8000, 6000)).save(path)  # 48 MP, a few kB on disk
    with pytest.raises(ImageError, match="too large") as info:
        load_image(path)
    assert "8000x6000" in str(info.value)


def test_huge_image_refused_before_decoding() -> None:
    # Only the header is real: decoding it would fail as "truncated or corrupt", not "too large".
    data = png_header_only(8000, 6000)
    with pytest.raises(ImageError, match="too large"):
        load_image(data)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(data, max_pixels=10**9)  # the same bytes, allowed in: now decoding fails


def test_small_max_pixels(tmp_path: Path) -> None:
    path = tmp_path / "p.png"
    Image.new("RGB", (20, 10), GREEN).save(path)
    assert load_image(path, max_pixels=200).size == (20, 10)  # the limit itself is allowed
    with pytest.raises(ImageError, match=r"too large \(20x10"):
        load_image(path, max_pixels=199)
    with pytest.raises(ImageError, match="too large"):
        load_and_prepare(path, spec(), max_pixels=199)


@pytest.mark.parametrize("side", [10_000, 20_000])  # over Pillow's bomb warning, over its bomb error
def test_decompression_bomb_guard(side: int) -> None:
    with pytest.raises(ImageError, match="too large"):
        load_image(png_header_only(side, side), max_pixels=10**12)


# --- preparation --------------------------------------------------------------------------------------


def test_prepare_constant_colour() -> None:
    colour = (200, 100, 30)
    out = prepare(Image.new("RGB", (64, 48), colour), spec(32, 32))
    assert out.shape == (3, 32, 32)
    assert out.dtype == np.float32
    assert out.flags["C_CONTIGUOUS"]
    for channel, c in enumerate(colour):
        np.testing.assert_allclose(out[channel], (c - 127) / 128, rtol=0, atol=1e-6)


def test_prepare_uses_per_channel_mean_and_std() -> None:
    out = prepare(Image.new("RGB", (10, 10), (50, 60, 70)), spec(8, 12, mean=(10, 20, 30), std=(2, 4, 8)))
    assert out.shape == (3, 8, 12)  # (3, H, W)
    np.testing.assert_allclose(out[0], 20.0, atol=1e-5)
    np.testing.assert_allclose(out[1], 10.0, atol=1e-5)
    np.testing.assert_allclose(out[2], 5.0, atol=1e-5)


@pytest.mark.parametrize("color", ["RGB", "BGR"])
def test_prepare_matches_float_arithmetic_on_a_real_photo(color: str) -> None:
    # the table look-up must give exactly what (pixel - mean) / std in float32 gives, channel order included
    photo = load_image(DEMO_PHOTO)
    card = dataclasses.replace(spec(40, 56, mean=(123.7, 116.3, 103.5), std=(58.4, 57.1, 57.4)), color=color)
    out = prepare(photo, card)
    resized = np.asarray(photo.resize((56, 40), Image.Resampling.BILINEAR, box=_centre_box(photo.size, 56, 40),
                                      reducing_gap=1.0), dtype=np.float32)
    if color == "BGR":
        resized = resized[:, :, ::-1]
    expected = ((resized - np.asarray(card.mean, np.float32)) / np.asarray(card.std, np.float32)).transpose(2, 0, 1)
    np.testing.assert_array_equal(out, expected)


def _centre_box(size: tuple[int, int], width: int, height: int) -> tuple[float, float, float, float]:
    scale = max(width / size[0], height / size[1])
    box_w, box_h = width / scale, height / scale
    left, top = (size[0] - box_w) / 2, (size[1] - box_h) / 2
    return (left, top, left + box_w, top + box_h)


def _thirds(width: int, height: int, horizontal: bool) -> Image.Image:
    image = Image.new("RGB", (width, height), RED)
    if horizontal:  # left / middle / right thirds
        image.paste(GREEN, (width // 3, 0, 2 * width // 3, height))
        image.paste(BLUE, (2 * width // 3, 0, width, height))
    else:  # top / middle / bottom thirds
        image.paste(GREEN, (0, height // 3, width, 2 * height // 3))
        image.paste(BLUE, (0, 2 * height // 3, width, height))
    return image


@pytest.mark.parametrize("size, horizontal", [((90, 30), True), ((30, 90), False), ((300, 100), True)])
def test_shorter_side_center_crop_keeps_only_the_middle(size, horizontal: bool) -> None:
    out = prepare(_thirds(*size, horizontal), spec(16, 16))
    rgb = np.rint(out.transpose(1, 2, 0) * 128 + 127)  # back to 0..255, (H, W, 3)
    # Bilinear sampling at the crop border may blend a little of the neighbouring thirds in (more when a large photo
    # is first box-reduced by an integer factor whose blocks straddle the crop's edge); inside, pure green.
    inner = rgb[2:-2, 2:-2]
    assert (inner == GREEN).all()
    assert (rgb[..., 1] >= 190).all()  # green dominates everywhere, the edges included
    assert (rgb[..., 0] <= 60).all() and (rgb[..., 2] <= 60).all()


def test_crop_to_a_non_square_target() -> None:
    # 60x60 square into a 32 wide x 16 high input: the centre 60x30 band is kept (rows 15..44).
    image = Image.new("RGB", (60, 60), RED)
    image.paste(GREEN, (0, 15, 60, 45))
    image.paste(BLUE, (0, 45, 60, 60))
    out = prepare(image, spec(16, 32))
    assert out.shape == (3, 16, 32)
    rgb = np.rint(out.transpose(1, 2, 0) * 128 + 127)
    assert (rgb[2:-2] == GREEN).all()
    assert (rgb[..., 1] >= 200).all()


@pytest.mark.parametrize("size", [(211, 212), (244, 325), (206, 154)])
def test_crop_of_sizes_whose_box_rounds_past_the_photo(size) -> None:
    # 320 / (320 / 211) is 211.00000000000003 in floats: the crop box must stay inside the photo
    out = prepare(Image.new("RGB", size, (127, 255, 0)), spec(320, 320))
    assert out.shape == (3, 320, 320)


def test_prepare_upscales_small_images() -> None:
    out = prepare(Image.new("RGB", (4, 6), (127, 255, 0)), spec(20, 20))
    assert out.shape == (3, 20, 20)
    np.testing.assert_allclose(out[0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[1], 1.0, atol=1e-6)


def test_load_and_prepare_from_every_source_kind(tmp_path: Path) -> None:
    data = encode(Image.new("RGB", (50, 40), (127, 127, 255)), "PNG")
    path = tmp_path / "p.png"
    path.write_bytes(data)
    array = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
    for source in (path, data, io.BytesIO(data), array):
        out = load_and_prepare(source, spec(24, 24))
        assert out.shape == (3, 24, 24) and out.dtype == np.float32
        np.testing.assert_allclose(out[2], 1.0, atol=1e-6)
        np.testing.assert_allclose(out[:2], 0.0, atol=1e-6)


def test_draft_decoding_is_close_to_full_decoding(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    smooth_photo(2000, 1500, seed=3).save(path, "JPEG", quality=95)
    model_input = spec(224, 224)

    drafted = load_image(path, min_size=224)
    # draft() really reduced the decode (DCT scaling), never below what the model needs.
    assert drafted.size[0] < 2000 and drafted.size[1] < 1500
    assert min(drafted.size) >= 224

    fast = load_and_prepare(path, model_input)
    full = prepare(load_image(path), model_input)
    assert fast.shape == full.shape == (3, 224, 224)
    difference = np.abs(fast - full)
    assert difference.mean() < 0.01  # ~1 grey level on average
    assert difference.max() < 0.06  # ~8 grey levels at worst
    np.testing.assert_array_equal(fast, np.ascontiguousarray(prepare(drafted, model_input)))


def test_png_is_never_drafted(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    smooth_photo(640, 480).save(path)
    assert load_image(path, min_size=100).size == (640, 480)


def _blank_png(path: Path, width: int, height: int, bit_depth: int, colour_type: int, channels: int) -> Path:
    """A PNG of zero pixels written row by row: a huge image in a small file, without holding it in memory."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    row = b"\0" * (1 + width * channels * bit_depth // 8)
    packer = zlib.compressobj(9)
    body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_decoded_bytes_are_bounded_not_only_pixels(tmp_path: Path) -> None:
    """Issue 13, fault 3: a ~300 KB 16-bit RGBA PNG of 39.7 MP passed the 40 MP limit and cost a kiosk ~0.6 GB."""
    bomb = _blank_png(tmp_path / "bomb.png", 6300, 6300, 16, 6, 4)
    assert bomb.stat().st_size < 400_000
    with pytest.raises(ImageTooLargeError, match=r"too large to decode \(6300x6300 RGBA = 151 MB decoded; limit 128 MB\)"):
        load_image(bomb, min_size=320)


def test_large_decodes_are_reduced_before_conversion(tmp_path: Path) -> None:
    big = _blank_png(tmp_path / "big.png", 4000, 3000, 8, 6, 4)  # 48 MB decoded: allowed, then box-reduced
    image = load_image(big, min_size=320)
    assert image.mode == "RGB" and image.size == (445, 334)  # reduce(9), edges rounded up: the shorter side stays >= 320
    assert image.getpixel((10, 10)) == (255, 255, 255)  # transparent pixels on white, as before
    assert load_image(big).size == (4000, 3000)  # without a size to reach, nothing is reduced


@pytest.mark.parametrize("resize, height, width", [("shorter_side_center_crop", 16, 16),
                                                   ("longer_side_multiple_32", 64, 64), ("height_keep_ratio", 16, 64)])
def test_prepare_with_a_box_reads_only_the_box(resize: str, height: int, width: int) -> None:
    # a green 120 x 60 box in a red photo, read at the camera's size: the resize itself takes the box
    image = Image.new("RGB", (400, 300), RED)
    image.paste(GREEN, (150, 90, 270, 150))
    card = dataclasses.replace(spec(height, width), resize=resize)
    out = prepare(image, card, box=(150, 90, 270, 150))
    crop = prepare(image.crop((150, 90, 270, 150)), card)
    assert out.shape == crop.shape  # the box's aspect, not the photo's
    rgb = np.rint(out.transpose(1, 2, 0) * 128 + 127)
    assert (rgb[1:-1, 1:-1] == GREEN).all()
