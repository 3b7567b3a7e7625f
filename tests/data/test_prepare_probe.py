"""The probe folder: every PIL mode, EXIF orientations 1-8, and every kind of file that gives no image. The
prepared set must hold every good image right, and the summary must name every bad one with its reason."""

import io
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from wgan_cli.data.decode import Decoding, Skipped, decode
from wgan_cli.data.prepared import list_folder, open_prepared, prepare

RED, BLUE = (255, 0, 0), (0, 0, 255)
# exif_transpose applies these to a stored image with orientation k; storing the inverse makes it upright again
INVERSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
           5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
           8: Image.Transpose.ROTATE_270}


def upright(size=64) -> Image.Image:
    """Blue with a red top-left quadrant: the corner that shows which way up the image came out."""
    arr = np.zeros((size, size, 3), np.uint8)
    arr[:] = BLUE
    arr[: size // 2, : size // 2] = RED
    return Image.fromarray(arr)


def save_oriented(path, k: int) -> None:
    im = upright()
    stored = im.transpose(INVERSE[k]) if k in INVERSE else im
    exif = Image.Exif()
    exif[0x0112] = k   # Orientation
    stored.save(path, format="JPEG", quality=95, exif=exif.tobytes())


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header promises width x height pixels (its data is a few bytes): a decompression bomb."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + \
        chunk(b"IEND", b"")


def mode_images() -> dict:
    """name -> (image to save, format, the pixel (R, G, B) it must become on a white background)."""
    p = Image.new("P", (40, 40), 1)
    p.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    pt = p.copy()
    pt.info["transparency"] = 1   # palette index 1 is transparent: white shows
    la = Image.new("LA", (40, 40), (0, 0))   # black, fully transparent
    rgba = Image.new("RGBA", (40, 40), (0, 0, 0, 128))   # half-transparent black on white: 127
    return {
        "m-1.png": (Image.new("1", (40, 40), 1), "PNG", (255, 255, 255)),
        "m-L.png": (Image.new("L", (40, 40), 77), "PNG", (77, 77, 77)),
        "m-LA.png": (la, "PNG", (255, 255, 255)),
        "m-P.png": (p, "PNG", (10, 200, 30)),
        "m-Pt.png": (pt, "PNG", (255, 255, 255)),
        "m-RGB.png": (Image.new("RGB", (40, 40), (1, 2, 3)), "PNG", (1, 2, 3)),
        "m-RGBA.png": (rgba, "PNG", (127, 127, 127)),
        "m-CMYK.tif": (Image.new("CMYK", (40, 40), (0, 0, 0, 0)), "TIFF", (255, 255, 255)),
        # 16 bits: 32768 is mid-grey, round(32768 / 257) = 128 (clipping, the old way, gave 255)
        "m-I16.png": (Image.fromarray(np.full((40, 40), 32768, np.uint16)), "PNG", (128, 128, 128)),
        "m-I.tif": (Image.fromarray(np.full((40, 40), 65535, np.int32)), "TIFF", (255, 255, 255)),
        "m-F.tif": (Image.fromarray(np.full((40, 40), 0.25, np.float32)), "TIFF", (64, 64, 64)),
    }


@pytest.fixture
def probe(tmp_path):
    d = tmp_path / "probe"
    d.mkdir()
    for name, (im, fmt, _) in mode_images().items():
        im.save(d / name, format=fmt)
    for k in range(1, 9):
        save_oriented(d / f"o-{k}.jpg", k)
    (d / "x-bomb.png").write_bytes(png_claiming(20000, 20000))   # 4e8 pixels, over twice PIL's limit
    buf = io.BytesIO()
    upright().save(buf, format="JPEG", quality=95)
    (d / "x-truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (d / "x-zero.jpg").write_bytes(b"")
    (d / "x-text.png").write_text("this is not a picture\n")
    os.symlink("x-loop.png", d / "x-loop.png")   # a link to itself
    os.symlink(".", d / "x-dirloop")              # a folder link back to its parent
    os.mkfifo(d / "x-fifo.png")
    return d


def test_the_probe_folder_prepares_every_good_image_right_and_names_every_bad_one(probe, tmp_path):
    prepared = prepare(list_folder(probe), tmp_path / "out", Decoding(32), workers=2)
    modes = mode_images()
    good = sorted([*modes, *(f"o-{k}.jpg" for k in range(1, 9))])
    assert prepared.images.shape == (len(good), 32, 32, 3)
    for i, name in enumerate(good):
        img = prepared.images[i].astype(int)
        if name in modes:
            assert np.abs(img - np.array(modes[name][2])).max() <= 1, name   # 1: rounding of the resize
        else:   # the red quadrant is top-left whatever the stored orientation (JPEG: a few levels of noise)
            assert img[4, 4, 0] > 200 and img[4, 4, 2] < 60, name
            assert img[27, 27, 2] > 200 and img[27, 27, 0] < 60, name
            assert img[4, 27, 2] > 200 and img[27, 4, 2] > 200, name
    reasons = {s["name"]: s["reason"] for s in prepared.skipped}
    assert reasons == {"x-bomb.png": "decompression bomb", "x-truncated.jpg": "truncated file",
                       "x-zero.jpg": "empty file", "x-text.png": "not an image", "x-loop.png": "link loop",
                       "x-dirloop/": "link loop", "x-fifo.png": "not a regular file"}
    manifest = open_prepared(tmp_path / "out").manifest
    assert manifest["skipped_counts"]["link loop"] == 2 and manifest["count"] == len(good)


def test_a_grayscale_folder_is_one_channel_and_sixteen_bits_are_scaled(tmp_path):
    """Pillow's convert('L') clips 16-bit values: 32768 came out as 255 (99.6% white for a mid-grey ramp)."""
    d = tmp_path / "gray"
    d.mkdir()
    ramp = np.tile(np.linspace(0, 65535, 32).astype(np.uint16), (32, 1))
    Image.fromarray(ramp).save(d / "a.png")
    Image.new("L", (32, 32), 200).save(d / "b.png")
    prepared = prepare(list_folder(d), tmp_path / "out", Decoding(32), workers=1)
    assert prepared.images.shape == (2, 32, 32, 1)
    expected = (ramp.astype(np.int64) + 128) // 257
    assert np.array_equal(prepared.images[0, :, :, 0], expected)   # no resize at 32: exact
    assert (prepared.images[0] == 255).mean() < 0.05


def test_exif_orientation_six_comes_out_upright():
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    upright(64).transpose(INVERSE[6]).save(buf, format="JPEG", quality=95, exif=exif.tobytes())
    img, gray = decode(buf.getvalue(), Decoding(32))
    assert not gray and img[4, 4, 0] > 200 and img[27, 27, 2] > 200   # red still top-left


def test_jpeg_draft_gives_the_same_image_as_a_full_decode():
    """Draft mode decodes at 1/2, 1/4 or 1/8 scale by the DCT; the antialiased resize after it must agree with
    resizing the full decode, up to JPEG rounding (mean absolute difference below 3 levels of 255)."""
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 255, (12, 16, 3)), np.ones((100, 100, 1))).astype(np.uint8)   # 1200x1600
    buf = io.BytesIO()
    Image.fromarray(smooth).save(buf, format="JPEG", quality=90)
    fast, _ = decode(buf.getvalue(), Decoding(64))
    full = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    full = full.resize((85, 64), Image.Resampling.BICUBIC).crop((10, 0, 74, 64))
    assert np.abs(fast.astype(int) - np.asarray(full).astype(int)).mean() < 3


def test_pad_keeps_the_whole_image_on_the_background():
    buf = io.BytesIO()
    Image.new("RGB", (80, 40), (0, 0, 0)).save(buf, format="PNG")
    img, _ = decode(buf.getvalue(), Decoding(32, "pad", (255, 255, 255)))
    assert img.shape == (32, 32, 3)
    assert (img[:7] == 255).all() and (img[-7:] == 255).all() and (img[9:23] == 0).all()   # 32x16 in the middle


def test_every_failure_is_a_reason_not_a_traceback():
    for data, reason in [(b"", "empty file"), (b"hello", "not an image"), (png_claiming(20000, 20000),
                                                                           "decompression bomb")]:
        with pytest.raises(Skipped) as e:
            decode(data, Decoding(32))
        assert e.value.reason == reason
