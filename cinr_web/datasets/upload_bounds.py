"""Bounds of an image upload, checked from the files' headers before any pixel is decoded.

A PNG of a few KB may hold 4096 x 4096 pixels (compression) and a zip of a few KB thousands of them: the importers
(training.importers) would decode each into float32. Here every image is opened with Pillow, which reads only the
header, and its `.size` is counted against the settings: CINR_MAX_IMAGE_PIXELS per image, CINR_MAX_UPLOAD_PIXELS for
the whole upload; a zip's member count and uncompressed size are read from its directory first.
"""

from __future__ import annotations

import os
import re
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from django.conf import settings
from PIL import Image as PILImage

from training.importers import IMAGE_EXTENSIONS, PIL_FORMATS
from training.sources import InvalidImages


@dataclass(frozen=True)
class UploadLimits:
    image_pixels: int
    upload_pixels: int
    zip_members: int
    zip_bytes: int

    @classmethod
    def from_settings(cls) -> UploadLimits:
        return cls(image_pixels=settings.CINR_MAX_IMAGE_PIXELS, upload_pixels=settings.CINR_MAX_UPLOAD_PIXELS,
                   zip_members=settings.CINR_MAX_ZIP_MEMBERS, zip_bytes=settings.CINR_MAX_ZIP_BYTES)


class _PixelCount:
    """Pixels of the images seen so far, against the per-image and per-upload limits."""

    def __init__(self, limits: UploadLimits) -> None:
        self.limits = limits
        self.total = 0

    def add(self, name: str, stream: BinaryIO) -> None:
        size = header_size(stream)
        if size is None:  # unreadable: the importer refuses it with its own message, before decoding it
            return
        width, height = size
        if width * height > self.limits.image_pixels:
            raise InvalidImages(f"{name}: {width}x{height} pixels is over the limit of {self.limits.image_pixels} "
                                "pixels per image")
        self.total += width * height
        if self.total > self.limits.upload_pixels:
            raise InvalidImages(f"the upload holds more than {self.limits.upload_pixels} pixels (at {name}); "
                                "import large sets with manage.py import_dataset")


def header_size(stream: BinaryIO) -> tuple[int, int] | None:
    """(width, height) from the image's header (the pixels are not decoded), None when it cannot be read."""
    try:
        with PILImage.open(stream, formats=PIL_FORMATS) as image:
            return image.size
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, zlib.error, zipfile.BadZipFile, RuntimeError,
            NotImplementedError):
        return None
    except PILImage.DecompressionBombError:  # Pillow's own bound (twice its warning size): over any sane limit
        return (1 << 31, 1)


def _is_image(name: str) -> bool:
    """A member the importer would decode: an image extension, no dotfile or __MACOSX folder on its path."""
    parts = [p for p in re.split(r"[\\/]", name) if p]
    return (bool(parts) and name.lower().endswith(IMAGE_EXTENSIONS)
            and not any(p.startswith(".") or p == "__MACOSX" for p in parts))


def check_zip(upload: BinaryIO, name: str, limits: UploadLimits) -> None:
    """Member count and uncompressed size from the zip's directory, then every image member's header."""
    try:
        archive = zipfile.ZipFile(upload)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidImages(f"{name}: not a zip archive ({type(exc).__name__})") from None
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) > limits.zip_members:
            raise InvalidImages(f"{name}: {len(members)} members is over the limit of {limits.zip_members}")
        unpacked = sum(info.file_size for info in members)
        if unpacked > limits.zip_bytes:
            raise InvalidImages(f"{name}: {unpacked} bytes uncompressed is over the limit of {limits.zip_bytes}")
        pixels = _PixelCount(limits)
        for info in members:
            if not _is_image(info.filename) or info.flag_bits & 0x1:  # the importer refuses encrypted members
                continue
            try:
                member = archive.open(info)
            except (zipfile.BadZipFile, NotImplementedError, RuntimeError, OSError):
                continue  # the importer refuses it, naming it
            with member:
                pixels.add(info.filename, member)
    upload.seek(0)


def check_files(uploads: Sequence, limits: UploadLimits) -> None:
    """Every uploaded image's header, against the per-image and per-upload pixel limits."""
    pixels = _PixelCount(limits)
    for upload in uploads:
        name = os.path.basename(str(getattr(upload, "name", "") or "upload"))
        if _is_image(name):  # other files: the importer refuses them, naming them
            upload.seek(0)
            pixels.add(name, upload)
            upload.seek(0)
