"""One way to turn an image file into pixels, for every command that reads image files (`wgan prepare`, the
folder, CelebA and LSUN data sets of `wgan train`, folders given to `wgan score`).

- EXIF orientation is applied (a phone photo stored sideways with orientation 6 comes out upright).
- Every PIL mode becomes 8-bit RGB (or grayscale): 1, L, P, RGB, CMYK, YCbCr ... by PIL's conversion; 16-bit
  grayscale (I;16*, and I, read as 16-bit) scaled to 8 bits as round(v / 257) rather than clipped; F (float) as
  [0, 1] when all values lie there, else as 0..255, clipped; transparency (LA, RGBA, PA, P or L/RGB with a
  transparent colour) composited on a stated background colour.
- JPEGs are decoded at a reduced scale first (PIL's draft mode: the DCT scaling gives at least the target size),
  then resized with PIL's bicubic filter, which widens its support when shrinking (antialiased); then
  centre-cropped to size x size (`fit="crop"`) or padded with the background colour (`fit="pad"`).

Every failure is a `Skipped` with a short reason (what `wgan prepare` counts and names), never a traceback.
"""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

FITS = ("crop", "pad")
GRAY_MODES = {"1", "L", "LA", "La", "I", "F", "I;16", "I;16L", "I;16B", "I;16N"}
SIXTEEN_BIT = {"I", "I;16", "I;16L", "I;16B", "I;16N"}
RESAMPLE = "bicubic"   # the manifest names it
# Large reductions first shrink by a whole factor with a box filter (Image.reduce), then resample the last factor
# of at least 3 with the antialiased bicubic: Pillow's documented two-step resize, which it calls
# indistinguishable from the one-step resize from a gap of 3, at a third of the cost for a 1024x768 PNG.
REDUCING_GAP = 3.0


class Skipped(Exception):
    """A file that gives no image; `reason` is a short phrase ("decompression bomb", "truncated file" ...)."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class Decoding:
    """How files become images: `size` None keeps each image's own size (`wgan score` folders)."""

    size: int | None = 64
    fit: str = "crop"
    background: tuple[int, int, int] = (255, 255, 255)

    def to_json(self) -> dict:
        return {"size": self.size, "fit": self.fit, "background": list(self.background), "filter": RESAMPLE,
                "reducing_gap": REDUCING_GAP,
                "draft": "jpeg", "exif_transpose": True, "sixteen_bit": "round(v / 257)"}


def parse_background(text: str) -> tuple[int, int, int]:
    """white, black, gray, or #RRGGBB."""
    named = {"white": (255, 255, 255), "black": (0, 0, 0), "gray": (128, 128, 128), "grey": (128, 128, 128)}
    t = text.strip().lower()
    if t in named:
        return named[t]
    h = t[1:] if t.startswith("#") else t
    if len(h) == 6 and all(c in "0123456789abcdef" for c in h):
        return tuple(int(h[i: i + 2], 16) for i in (0, 2, 4))   # type: ignore[return-value]
    raise ValueError(f"background {text!r}: use white, black, gray or #RRGGBB")


def decode(data: bytes, how: Decoding) -> tuple[np.ndarray, bool]:
    """Encoded bytes -> (uint8 (H, W, 3) array, whether the source was grayscale). Raises Skipped."""
    if not data:
        raise Skipped("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
            return _convert(im, how)
    except Skipped:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise Skipped("decompression bomb", f"more pixels than PIL's limit of {Image.MAX_IMAGE_PIXELS} ({e})") \
            from None
    except UnidentifiedImageError:
        raise Skipped("not an image", "no image format recognises the file") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        text = str(e)
        reason = "truncated file" if "truncated" in text.lower() or "end of file" in text.lower() else "damaged image"
        raise Skipped(reason, f"{type(e).__name__}: {text}") from None
    except Exception as e:   # PIL's decoders raise many other types for foreign or damaged data
        raise Skipped("damaged image", f"{type(e).__name__}: {e}") from None


def _convert(im: Image.Image, how: Decoding) -> tuple[np.ndarray, bool]:
    if im.format == "JPEG" and how.size is not None:
        w, h = im.size   # stored orientation; the draft scale is the same either way round
        side = min(w, h) if how.fit == "crop" else max(w, h)
        im.draft(im.mode if im.mode in ("RGB", "L") else None,
                 (math.ceil(w * how.size / side), math.ceil(h * how.size / side)))
    im = ImageOps.exif_transpose(im)   # loads the pixels; a truncated file raises here
    gray = im.mode in GRAY_MODES or (im.mode in ("P", "PA") and _gray_palette(im))
    img = _to_rgb(im)   # RGB, or RGBA where there is transparency
    if how.size is not None:   # resized before compositing: PIL resizes RGBA premultiplied, so the result is the same
        img = _fit(img, how.size, how.fit)
    if img.mode == "RGBA":
        base = Image.new("RGBA", img.size, (*how.background, 255))
        img = Image.alpha_composite(base, img).convert("RGB")
    return np.asarray(img, dtype=np.uint8), gray


def _gray_palette(im: Image.Image) -> bool:
    pal = np.asarray(im.getpalette() or [], dtype=np.uint8).reshape(-1, 3)
    return bool(len(pal)) and bool((pal[:, 0] == pal[:, 1]).all() and (pal[:, 1] == pal[:, 2]).all())


def _to_rgb(im: Image.Image) -> Image.Image:
    mode = im.mode
    if mode in SIXTEEN_BIT:
        v = np.asarray(im).astype(np.int64)
        im = Image.fromarray(((np.clip(v, 0, 65535) + 128) // 257).astype(np.uint8), "L")   # round(v / 257)
    elif mode == "F":
        v = np.asarray(im, dtype=np.float64)
        v = np.nan_to_num(v, nan=0.0, posinf=255.0, neginf=0.0)
        if v.size and v.min() >= 0.0 and v.max() <= 1.0:
            v = v * 255.0
        im = Image.fromarray(np.clip(np.rint(v), 0, 255).astype(np.uint8), "L")
    alpha = mode in ("LA", "La", "RGBA", "RGBa", "PA") or "transparency" in im.info
    return im.convert("RGBA" if alpha else "RGB")


def _fit(im: Image.Image, size: int, fit: str) -> Image.Image:
    """Resize and centre-crop to size x size, or pad (with transparent pixels: the background is composited
    afterwards, so the padding and the transparent pixels get the same colour)."""
    w, h = im.size
    if (w, h) == (size, size):
        return im
    scale = size / (min(w, h) if fit == "crop" else max(w, h))
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    if fit == "crop":
        nw, nh = max(size, nw), max(size, nh)
    im = im.resize((nw, nh), Image.Resampling.BICUBIC, reducing_gap=REDUCING_GAP)
    if fit == "crop":
        left, top = (nw - size) // 2, (nh - size) // 2
        return im.crop((left, top, left + size, top + size))
    canvas = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    canvas.paste(im.convert("RGBA"), ((size - nw) // 2, (size - nh) // 2))
    return canvas
