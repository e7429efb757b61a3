"""Real image files for tests, written by Pillow: a PNG, a JPEG, a WebP, and broken ones."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage


def image_bytes(fmt: str, size: tuple[int, int] = (24, 16), color: str = "teal") -> bytes:
    """An encoded image of one colour with a red square, ``fmt`` as Pillow names it."""
    im = PILImage.new("RGB", size, color)
    im.paste((255, 0, 0), (2, 2, 8, 8))
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def write_images(root: Path) -> dict[str, Path]:
    """Good and bad image files under ``root``, by kind."""
    root.mkdir(parents=True, exist_ok=True)
    files = {
        "png": ("probe.png", image_bytes("PNG", (32, 20))),
        "jpeg": ("photo.jpg", image_bytes("JPEG", (40, 30))),
        "webp": ("pic.webp", image_bytes("WEBP", (18, 12))),
        "gif": ("anim.gif", image_bytes("GIF")),
        "text": ("notes.png", b"this is not an image\n"),
        "empty": ("empty.png", b""),
    }
    png = image_bytes("PNG", (64, 64))
    files["truncated"] = ("cut.png", png[: len(png) // 2])
    jpeg = image_bytes("JPEG", (64, 64))
    files["truncated_jpeg"] = ("cut.jpg", jpeg[: len(jpeg) * 2 // 3])
    bad = bytearray(png)
    bad[16:24] = b"\xff" * 8  # IHDR's width and height: 4 billion pixels, the CRC wrong
    files["bad_header"] = ("header.png", bytes(bad))
    out = {}
    for kind, (name, data) in files.items():
        (root / name).write_bytes(data)
        out[kind] = root / name
    return out
