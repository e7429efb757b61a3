"""Image prompts' files: accepted by their magic bytes and a whole decode, refused in one
line otherwise."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from tests.helpers.images import write_images
from workbench.errors import InputError
from workbench.images import ImageError, load_image, load_images


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return write_images(tmp_path_factory.mktemp("images"))


@pytest.mark.parametrize(
    ("kind", "fmt", "size"),
    [("png", "png", "32x20"), ("jpeg", "jpeg", "40x30"), ("webp", "webp", "18x12")],
)
def test_accepted_formats_are_described(
    files: dict[str, Path], kind: str, fmt: str, size: str
) -> None:
    data = files[kind].read_bytes()
    im = load_image(files[kind])
    assert (im.format, im.size, im.size_bytes) == (fmt, size, len(data))
    assert im.sha256 == hashlib.sha256(data).hexdigest()
    assert im.name == files[kind].name
    head, _, b64 = im.data_url().partition(",")
    assert head == f"data:image/{fmt};base64"
    assert base64.b64decode(b64) == data, "the bytes go unchanged"


@pytest.mark.parametrize(
    ("kind", "says"),
    [
        ("gif", "not a PNG, JPEG or WebP image (it is GIF)"),
        ("text", "not a PNG, JPEG or WebP image (unknown format)"),
        ("empty", "(the file is empty)"),
        ("truncated", "a corrupt PNG image"),
        ("truncated_jpeg", "a corrupt JPEG image"),
        ("bad_header", "a corrupt PNG image"),
    ],
)
def test_refused_in_one_line(files: dict[str, Path], kind: str, says: str) -> None:
    with pytest.raises(ImageError) as e:
        load_image(files[kind])
    msg = str(e.value)
    assert isinstance(e.value, InputError) and "\n" not in msg
    assert msg.startswith(files[kind].name + ": ") and says in msg


def test_missing_file_and_relative_base(files: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="cannot read the image"):
        load_image(tmp_path / "nope.png")
    got = load_images(["probe.png", "pic.webp"], base=files["png"].parent)
    assert [im.format for im in got] == ["png", "webp"]
