"""Images sent with a prompt: read once, checked, described (sha256, bytes, width x height).

An image is accepted when its first bytes say PNG, JPEG or WebP (the formats every
OpenAI-compatible server and llama.cpp's ``mtmd`` take) and it decodes whole (Pillow
reads every pixel, so a truncated or corrupt file is refused here, before any model
runs, instead of failing once per model). The bytes are kept unchanged: a served model
gets exactly the file, as a base64 ``data:`` URL.
"""

from __future__ import annotations

import base64
import hashlib
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workbench.errors import InputError

FORMATS: dict[str, str] = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
"""Accepted formats -> their MIME type (the ``data:`` URL's)."""

_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF8", "GIF"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),
    (b"%PDF", "PDF"),
    (b"\x00\x00\x01\x00", "ICO"),
)
"""Formats recognised only to name them in the refusal."""


class ImageError(InputError):
    """An image that cannot be sent: unreadable, unsupported or corrupt."""


def sniff(data: bytes) -> str | None:
    """The format the first bytes say (``png``, ``jpeg``, ``webp``), None for others."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass(frozen=True)
class Image:
    """One checked image: its bytes unchanged and what a row records of it."""

    data: bytes = field(repr=False)
    """The file's bytes, unchanged."""
    format: str
    """``png``, ``jpeg`` or ``webp`` (from the magic bytes, confirmed by decoding)."""
    width: int
    height: int
    name: str = "image"
    """The file name (for messages and display)."""
    sha256: str = ""
    """sha256 of :attr:`data` (computed when not given)."""

    def __post_init__(self) -> None:
        if not self.sha256:
            object.__setattr__(self, "sha256", hashlib.sha256(self.data).hexdigest())

    @property
    def mime(self) -> str:
        return FORMATS[self.format]

    @property
    def size_bytes(self) -> int:
        return len(self.data)

    @property
    def size(self) -> str:
        """``WIDTHxHEIGHT`` in pixels."""
        return f"{self.width}x{self.height}"

    def rgb(self) -> bytes:
        """The pixels as 8-bit RGB, row by row (``width * height * 3`` bytes), decoded by
        Pillow (transparency dropped), for an engine that cannot decode this format."""
        from PIL import Image as PILImage

        with PILImage.open(io.BytesIO(self.data)) as im:
            return im.convert("RGB").tobytes()

    def data_url(self) -> str:
        """``data:image/...;base64,...`` of the unchanged bytes (an OpenAI image part)."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def image_from_bytes(data: bytes, name: str = "image") -> Image:
    """Check ``data`` and describe it.

    Raises:
        ImageError: not PNG, JPEG or WebP, or it does not decode (truncated, corrupt).
    """
    fmt = sniff(data)
    if fmt is None:
        other = next((what for magic, what in _OTHER_MAGIC if data.startswith(magic)), None)
        seen = f"it is {other}" if other else "unknown format" if data else "the file is empty"
        raise ImageError(f"{name}: not a PNG, JPEG or WebP image ({seen})")
    from PIL import Image as PILImage  # imported here: only image prompts need it
    from PIL import UnidentifiedImageError

    try:
        with PILImage.open(io.BytesIO(data)) as im:
            decoded = (im.format or "").lower()
            width, height = im.size
            im.load()  # every pixel: a truncated or corrupt file fails here
    except PILImage.DecompressionBombError:
        raise ImageError(f"{name}: the image is too large to decode safely") from None
    except UnidentifiedImageError:
        raise ImageError(
            f"{name}: a corrupt {fmt.upper()} image (its header does not decode)"
        ) from None
    except Exception as e:  # Pillow raises many types for broken files
        why = " ".join(str(e).split()) or type(e).__name__
        raise ImageError(f"{name}: a corrupt {fmt.upper()} image ({why})") from None
    if decoded != fmt:
        raise ImageError(f"{name}: starts like {fmt.upper()} but decodes as {decoded or '?'}")
    if width < 1 or height < 1:
        raise ImageError(f"{name}: the image has no pixels ({width}x{height})")
    return Image(data, fmt, width, height, name)


def load_image(path: str | Path, *, base: str | Path | None = None) -> Image:
    """Read and check an image file; a relative ``path`` is taken from ``base`` when given
    (a prompt set's directory).

    Raises:
        ImageError: the file cannot be read, or :func:`image_from_bytes` refuses it.
    """
    p = Path(path).expanduser()
    if base is not None and not p.is_absolute():
        p = Path(base) / p
    try:
        data = p.read_bytes()
    except OSError as e:
        raise ImageError(f"{p}: cannot read the image ({e.strerror or e})") from None
    return image_from_bytes(data, p.name)


def load_images(
    paths: Sequence[str | Path | Image], *, base: str | Path | None = None
) -> tuple[Image, ...]:
    """Each of ``paths`` checked (an :class:`Image` is kept as is), in order."""
    return tuple(p if isinstance(p, Image) else load_image(p, base=base) for p in paths)
