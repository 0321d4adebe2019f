"""File helpers over Django's default_storage, so the same code works on a shared filesystem and on S3."""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections import OrderedDict
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


# Local copies of files of a remote storage, most recently used last: name -> path. A stored file never changes (a new
# version gets a new name), so a copy never goes stale.
_COPIES: OrderedDict[str, Path] = OrderedDict()
_COPIES_LOCK = threading.Lock()
_COPIES_DIR: tempfile.TemporaryDirectory | None = None  # removed with its copies when the process exits
MAX_COPIES = 4


def kept_local_path(name: str, suffix: str = "") -> Path:
    """A local filesystem path of the stored file `name` for reading parts of it, request after request: the file
    itself, or (remote storage) a copy downloaded once and kept among the last MAX_COPIES used, so that showing one
    INR after another of a large set on S3 does not download its whole weight file each time."""
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:  # remote storage (S3)
        pass
    global _COPIES_DIR
    with _COPIES_LOCK:
        if name in _COPIES and _COPIES[name].exists():
            _COPIES.move_to_end(name)
            return _COPIES[name]
        if _COPIES_DIR is None:
            _COPIES_DIR = tempfile.TemporaryDirectory(prefix="cinr-copies-")
        folder = _COPIES_DIR.name
    fd, tmp = tempfile.mkstemp(prefix="copy-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as out, default_storage.open(name, "rb") as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                out.write(block)
    except BaseException:
        os.unlink(tmp)
        raise
    with _COPIES_LOCK:
        kept = _COPIES.get(name)
        if kept is not None and kept.exists():  # another thread downloaded it meanwhile: use that one
            evicted = [Path(tmp)]
        else:
            _COPIES[name] = kept = Path(tmp)
            _COPIES.move_to_end(name)
            evicted = [_COPIES.popitem(last=False)[1] for _ in range(len(_COPIES) - MAX_COPIES)]
    for path in evicted:
        # A reader that has it open (or memory-mapped) keeps reading: unlinking removes only the name.
        path.unlink(missing_ok=True)
    return kept


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
