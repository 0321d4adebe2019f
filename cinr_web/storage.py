"""File helpers over Django's default_storage, so the same code works on a shared filesystem and on S3."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage


@contextlib.contextmanager
def local_path(name: str, suffix: str = "") -> Iterator[Path]:
    """A local filesystem path holding the stored file `name` (the file itself, or a temporary download)."""
    try:
        yield Path(default_storage.path(name))
        return
    except NotImplementedError:  # remote storage (S3): download to a temporary file
        pass
    fd, tmp = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                out.write(block)
        yield Path(tmp)
    finally:
        os.unlink(tmp)


def save_bytes(name: str, data: bytes) -> str:
    """Stores `data` under `name` (or a free variant of it) and returns the stored name.

    Storage never overwrites: a new file gets a new name, and the database row is pointed at it only after it is
    complete, so a reader (who finds files through rows) never sees a half-written file.
    """
    return default_storage.save(name, ContentFile(data))


def save_file(name: str, path: Path) -> str:
    """Stores the local file `path` under `name` (or a free variant of it) and returns the stored name."""
    with open(path, "rb") as f:
        return default_storage.save(name, File(f))


def delete_quietly(names: list[str]) -> None:
    """Deletes stored files, ignoring those already gone (clean-up after a failed import or a re-run)."""
    for name in names:
        with contextlib.suppress(OSError):
            if name:
                default_storage.delete(name)
