"""Safe decoding of untrusted images: hostile files fail with a message, odd ones convert."""

import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from labelqa.catalog.imaging import ImageProblem, make_thumbnail, open_image, to_rgb

ORIENTATION = 0x0112


def encode(img: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    img.save(out, fmt, **params)
    return out.getvalue()


def png_with_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: a decompression bomb by its header."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


def halves(size: tuple[int, int], first: str, second: str) -> Image.Image:
    """An image whose left half is one colour and right half another."""
    img = Image.new("RGB", size, second)
    img.paste(first, (0, 0, size[0] // 2, size[1]))
    return img


def test_a_photo_decodes_as_rgb(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_bytes(encode(Image.new("RGB", (64, 48), "orange"), "JPEG"))
    img = open_image(path.read_bytes())
    assert img.mode == "RGB" and img.size == (64, 48)


def test_zero_bytes_is_refused():
    with pytest.raises(ImageProblem, match="empty file"):
        open_image(b"")


def test_a_text_file_is_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("label,confidence\ncat,0.9\n")
    with pytest.raises(ImageProblem, match="not an image"):
        open_image(path.read_bytes())


def test_a_truncated_jpeg_is_refused(tmp_path):
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageProblem, match="truncated image file"):
        open_image(path.read_bytes())
    with pytest.raises(ImageProblem, match="truncated image file"):
        open_image(path.read_bytes(), target_size=(64, 64))  # draft decoding too


def test_a_truncated_png_is_refused():
    noise = np.random.default_rng(0).integers(0, 256, (200, 300, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "PNG")
    with pytest.raises(ImageProblem):
        open_image(data[: len(data) // 2])


def test_a_png_header_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_with_size(20_000, 10_000))
    with pytest.raises(ImageProblem, match=r"decompression bomb: .*200000000 pixels"):
        open_image(path.read_bytes())


def test_pillows_bomb_warning_counts_as_a_bomb():
    # 100 MP: above Pillow's warning threshold, below its error threshold and above ours
    with pytest.raises(ImageProblem, match="decompression bomb"):
        open_image(png_with_size(10_000, 10_000), max_pixels=200_000_000)


def test_the_pixel_limit_is_explicit():
    data = png_with_size(2_000, 1_000)
    with pytest.raises(ImageProblem, match=r"decompression bomb: 2000000 pixels > limit 1000000 \(2000x1000\)"):
        open_image(data, max_pixels=1_000_000)


def test_formats_outside_the_allow_list_are_refused():
    with pytest.raises(ImageProblem, match="not an image"):
        open_image(encode(Image.new("RGB", (32, 32), "red"), "ICO"))


def test_cmyk_jpeg_converts_to_rgb_colours(tmp_path):
    path = tmp_path / "cmyk.jpg"
    path.write_bytes(encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95))
    img = open_image(path.read_bytes())
    assert img.mode == "RGB"
    r, g, b = img.getpixel((16, 16))
    assert r > 200 and g < 60 and b < 60


def test_16_bit_greys_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16)[None, :].repeat(8, axis=0)
    path = tmp_path / "deep.png"
    path.write_bytes(encode(Image.fromarray(ramp), "PNG"))
    img = open_image(path.read_bytes())
    assert img.mode == "RGB"
    row = np.asarray(img)[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert abs(row[128] - 128) <= 1  # mid-grey stays mid-grey instead of turning white
    assert (np.diff(row) >= 0).all() and len(set(row.tolist())) > 200


def test_32_bit_integer_and_float_greys_are_scaled():
    ints = Image.fromarray(np.full((4, 4), 32768, dtype=np.int32))
    assert ints.mode == "I"
    assert to_rgb(ints).getpixel((0, 0)) == (128, 128, 128)
    floats = Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32))
    assert floats.mode == "F"
    assert to_rgb(floats).getpixel((0, 0)) == (128, 128, 128)


def test_grayscale_becomes_three_equal_channels():
    img = open_image(encode(Image.new("L", (8, 8), 77), "PNG"))
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (77, 77, 77)


def test_palette_png_keeps_its_colours(tmp_path):
    img = halves((40, 20), "red", "blue").convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    path = tmp_path / "palette.png"
    path.write_bytes(encode(img, "PNG"))
    decoded = open_image(path.read_bytes())
    assert decoded.mode == "RGB"
    assert decoded.getpixel((5, 10)) == (255, 0, 0) and decoded.getpixel((35, 10)) == (0, 0, 255)


def test_transparency_becomes_white():
    rgba = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    rgba.putpixel((0, 0), (0, 0, 255, 255))
    img = open_image(encode(rgba, "PNG"))
    assert img.getpixel((4, 4)) == (255, 255, 255) and img.getpixel((0, 0)) == (0, 0, 255)
    la = open_image(encode(Image.new("LA", (4, 4), (0, 0)), "PNG"))
    assert la.getpixel((1, 1)) == (255, 255, 255)
    gif = Image.new("P", (4, 4), 1)
    gif.putpalette([0, 0, 0, 10, 200, 10])
    assert open_image(encode(gif, "GIF", transparency=1)).getpixel((1, 1)) == (255, 255, 255)


def test_exif_rotated_jpeg_is_turned_upright(tmp_path):
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored rotated: display turns it 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    path.write_bytes(encode(halves((80, 40), "red", "blue"), "JPEG", exif=exif, quality=95))
    img = open_image(path.read_bytes())
    assert img.size == (40, 80)
    r, _, b = img.getpixel((20, 10))
    assert r > 200 and b < 60  # the stored left half is now on top
    r, _, b = img.getpixel((20, 70))
    assert b > 200 and r < 60


def test_draft_mode_decodes_big_jpegs_small():
    data = encode(Image.new("RGB", (1280, 960), "green"), "JPEG")
    assert open_image(data).size == (1280, 960)
    assert open_image(data, target_size=(224, 224)).size == (320, 240)
    png = encode(Image.new("RGB", (1280, 960), "green"), "PNG")
    assert open_image(png).size == (1280, 960)
    assert open_image(png, target_size=(224, 224)).size == (320, 240), "reduced by 4 after decoding"


# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the forked parent, here pytest with torch loaded.
PEAK_RSS = """
import re, sys
from pathlib import Path
from labelqa.catalog.imaging import make_thumbnail
thumbnail = make_thumbnail(open(sys.argv[1], "rb").read())
peak_kib = int(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
print(len(thumbnail), peak_kib // 1024)
"""


def test_a_thumbnail_of_a_deep_64_megapixel_png_is_made_in_bounded_memory(tmp_path):
    """A 125 KB 16-bit grey PNG at the pixel limit once took 1.6 GB to thumbnail: float64 copies at full size."""
    samples = np.zeros((7999, 8000), dtype=np.uint16)
    samples[::100] = 40000
    path = tmp_path / "deep.png"
    Image.fromarray(samples).save(path)
    del samples
    root = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, str(path)], cwd=root, capture_output=True, text=True, check=True
    )
    size, peak_mib = map(int, child.stdout.split())
    assert size > 0
    assert peak_mib < 700, f"peak RSS {peak_mib} MiB"


def test_draft_mode_respects_exif_rotation():
    exif = Image.Exif()
    exif[ORIENTATION] = 8
    data = encode(Image.new("RGB", (1600, 800), "green"), "JPEG", exif=exif)
    # wanted upright 300 x 500 means stored 500 x 300: scale 1/2 covers it, 1/4 would not
    assert open_image(data, target_size=(300, 500)).size == (400, 800)


def test_thumbnail_is_a_small_webp_with_the_same_aspect():
    data = encode(halves((1024, 512), "red", "blue"), "JPEG")
    thumb = Image.open(io.BytesIO(make_thumbnail(data)))
    assert thumb.format == "WEBP" and thumb.size == (256, 128)
    assert make_thumbnail(data, size=64)[:4] == b"RIFF"


def test_thumbnail_of_a_hostile_file_raises_image_problem():
    with pytest.raises(ImageProblem, match="decompression bomb"):
        make_thumbnail(png_with_size(20_000, 10_000))
