"""Decode untrusted image bytes safely into RGB Pillow images.

Pure Pillow (no Django): used by the catalog for thumbnails and by the classifier's
DataLoader workers. Every way an upload can be unusable ends in one exception,
:class:`ImageProblem`, whose message is fit to show a person.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import ExifTags, Image, ImageCms, ImageOps, UnidentifiedImageError

# 64 megapixels covers every camera sensor in common use (8000 x 8000) while keeping a
# decoded RGB frame under 200 MB; anything larger in an uploaded dataset is an attack
# or a mistake.
DEFAULT_MAX_PIXELS = 64_000_000

# Formats people photograph and upload. Restricting Image.open keeps exotic decoders
# (EPS shells out to Ghostscript; PSD, FITS, ...) away from untrusted bytes.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF")

_WHITE = (255, 255, 255)
_SRGB = ImageCms.createProfile("sRGB")


class ImageProblem(Exception):
    """An image that cannot be used, with a message for people."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def open_image(
    data: bytes,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    target_size: tuple[int, int] | None = None,
) -> Image.Image:
    """Decode image bytes into an upright RGB image, or raise ImageProblem.

    With ``target_size`` (width, height), JPEGs are decoded at the smallest 1/2, 1/4
    or 1/8 scale that still covers it (libjpeg draft mode), which is several times
    faster than decoding in full and resizing afterwards. Other formats decode in full,
    then every image is box-reduced by the largest whole factor that still covers it.
    Pillow's process-wide ``Image.MAX_IMAGE_PIXELS`` still applies on top of
    ``max_pixels``; its DecompressionBombWarning is treated as an error here.
    """
    img = image_header(data, max_pixels)
    stored_size = _stored_orientation(img, target_size) if target_size is not None else None
    if stored_size is not None:
        img.draft("RGB", stored_size)  # a no-op but for JPEG and MPO
    try:
        img.load()
    except Exception as exc:  # noqa: BLE001 - decoders raise OSError, ValueError, EOFError, ...
        raise ImageProblem(_describe(exc)) from None
    if stored_size is not None:
        img = _shrunk(img, stored_size)
    return to_rgb(_upright(img))


def image_header(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Open image bytes without decoding their pixels, or raise ImageProblem: an allowed format of a safe size."""
    if not data:
        raise ImageProblem("empty file (0 bytes)")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            img = Image.open(io.BytesIO(data), formats=ALLOWED_FORMATS)
        except UnidentifiedImageError:
            raise ImageProblem("not an image (or an unsupported format)") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageProblem(f"decompression bomb: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - a broken header can raise anything
            raise ImageProblem(_describe(exc)) from None
    width, height = img.size
    if width * height > max_pixels:
        raise ImageProblem(f"decompression bomb: {width * height} pixels > limit {max_pixels} ({width}x{height})")
    return img


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any decoded image to 8-bit RGB without losing its tones.

    Transparent areas become white (as a viewer shows them), high bit-depth greys are
    scaled into 0-255 instead of clipped, CMYK goes through its ICC profile when it
    has one.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I") or mode == "F":
        return Image.fromarray(_scale_to_uint8(np.asarray(img)), "L").convert("RGB")
    if mode == "CMYK":
        return _cmyk_to_rgb(img)
    if mode == "P":
        mode = "RGBA" if "transparency" in img.info else "RGB"
        img = img.convert(mode)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, _WHITE)
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    try:
        return img.convert("RGB")
    except ValueError:
        raise ImageProblem(f"unsupported colour mode {img.mode}") from None


def make_thumbnail(data: bytes, size: int = 256, *, quality: int = 80) -> bytes:
    """Return a WebP thumbnail that fits in size x size, or raise ImageProblem."""
    img = open_image(data, target_size=(size, size))
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    img.save(out, "WEBP", quality=quality)
    return out.getvalue()


def _shrunk(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Reduce a decoded image by the largest whole factor that still covers `size`, before any full-size copy.

    Converting first would copy every pixel once or twice more (a 64-megapixel RGBA PNG took 0.8 GB, a 16-bit grey
    one 1.6 GB); box-averaging first leaves the conversions a few hundred thousand pixels.
    """
    factor = min(img.width // size[0], img.height // size[1])
    if factor < 2:
        return img
    info = img.info
    if img.mode.startswith("I;16"):  # Pillow cannot reduce these; 8 bits is what the thumbnail keeps anyway
        img = Image.fromarray(_scale_to_uint8(np.asarray(img)), "L")
    elif img.mode == "P":
        img = img.convert("RGBA" if "transparency" in info else "RGB")
    elif img.mode == "1":
        img = img.convert("L")
    reduced = img.reduce(factor)
    reduced.info = dict(info)  # the EXIF orientation is applied afterwards
    return reduced


def _stored_orientation(img: Image.Image, size: tuple[int, int]) -> tuple[int, int]:
    """Swap a requested (width, height) when EXIF says the pixels are stored rotated."""
    if size[0] == size[1]:
        return size
    try:
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # noqa: BLE001 - broken EXIF must not cost the picture
        return size
    return (size[1], size[0]) if orientation in (5, 6, 7, 8) else size


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation; ignore EXIF too broken to read."""
    try:
        ImageOps.exif_transpose(img, in_place=True)
    except Exception:  # noqa: BLE001 - broken EXIF must not cost the picture
        pass
    return img


# Pixels converted at a time: a float64 copy of a whole 64-megapixel frame would take half a gigabyte.
_SCALE_CHUNK = 1 << 20


def _scale_to_uint8(arr: np.ndarray) -> np.ndarray:
    """Map high bit-depth grey values onto 0-255 by their format's range, a million pixels at a time."""
    kind = arr.dtype.kind
    flat = arr.reshape(-1)

    def chunks():
        for start in range(0, flat.size, _SCALE_CHUNK):
            yield start, np.nan_to_num(flat[start : start + _SCALE_CHUNK].astype(np.float64))

    extremes = [(float(chunk.min()), float(chunk.max())) for _, chunk in chunks()] or [(0.0, 0.0)]
    data_low, data_high = min(low for low, _ in extremes), max(high for _, high in extremes)
    low, high = 0.0, data_high
    if kind == "u":
        high = 65535.0  # "I;16*": unsigned 16-bit samples
    elif kind == "f" and data_low >= 0 and high <= 1.0:
        high = 1.0  # float images conventionally hold 0..1
    elif kind == "i" and data_low >= 0 and high <= 65535:
        high = 65535.0  # 16-bit samples that a decoder widened to 32-bit "I"
    else:
        low = data_low  # no known range: stretch what is there
    scale = 255.0 / max(high - low, 1e-12)
    out = np.empty(flat.size, dtype=np.uint8)
    for start, chunk in chunks():
        out[start : start + chunk.size] = np.clip(np.rint((chunk - low) * scale), 0, 255)
    return out.reshape(arr.shape)


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    """Convert CMYK through its embedded ICC profile, else with Pillow's formula."""
    icc = img.info.get("icc_profile")
    if icc:
        try:
            profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, profile, _SRGB, outputMode="RGB")
        except (ImageCms.PyCMSError, OSError, ValueError):
            pass  # a broken profile still leaves usable pixels
    return img.convert("RGB")


def _describe(exc: Exception) -> str:
    """Turn a decoder exception into a short message for people."""
    text = str(exc)
    if isinstance(exc, EOFError) or "truncated" in text.lower():
        return "truncated image file"
    return f"corrupt image: {text or type(exc).__name__}"
