"""Importers: image folders, zips of image folders, MNIST IDX files and CIFAR-10/100 python batches -> `ImageSet`.

Every problem raises `training.sources.InvalidImages` naming the file (or zip member) and what is wrong with it.
Sizes are bounded before anything big is read. Images without a split of their own get the fixed stratified split
of `training.sources.stratified_split`.

CIFAR python batches are pickles; `training.cifar_pickle` reads them with a restricted unpickler that refuses every
global but numpy's array reconstruction, so a malicious batch fails with `InvalidImages` and runs nothing.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image

from training.cifar_pickle import parse_batch, parse_class_names
from training.sources import ImageSet, InvalidImages, stratified_split

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
PIL_FORMATS = ["PNG", "JPEG", "BMP", "GIF"]  # the only decoders Pillow may use: no exotic formats from uploads
IGNORED_NAMES = {"__MACOSX", "Thumbs.db", "desktop.ini"}  # besides every name that starts with a dot
MAX_FILES = 200_000
MAX_IMAGE_PIXELS = 4096 * 4096  # per image
MAX_VALUES = 1 << 28  # N * C * H * W of a whole set: 1 GiB of float32
MAX_ZIP_BYTES = 1 << 30  # total uncompressed size of a zip's members
MAX_FILE_BYTES = 1 << 30  # one IDX file (after gunzip) or one CIFAR batch

# --------------------------------------------------------------------------------------------------------------------
# image folders and zips


def _decode_image(name: str, data: bytes) -> np.ndarray:
    """One image file -> float32 [C, H, W] in [0, 1]; C = 1 for grey modes (and palettes of greys), 3 for everything
    else (alpha dropped)."""
    try:
        with Image.open(io.BytesIO(data), formats=PIL_FORMATS) as img:
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise InvalidImages(f"{name}: {img.width}x{img.height} pixels is over the limit of {MAX_IMAGE_PIXELS}")
            img.load()
            if img.mode.startswith("I;16") or img.mode == "I":  # 16-bit grey
                array = np.asarray(img, dtype=np.float64)
                if array.min() < 0 or array.max() > 65535:
                    raise InvalidImages(f"{name}: 32-bit integer pixel values are not supported")
                return (array / 65535.0).astype(np.float32)[None]
            if img.mode in ("1", "L", "LA", "La") or (img.mode == "P" and _grey_palette(img)):
                return (np.asarray(img.convert("L"), dtype=np.float32) / 255.0)[None]
            return np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    except InvalidImages:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, TypeError, Image.DecompressionBombError) as exc:
        raise InvalidImages(f"{name}: not a readable image ({type(exc).__name__}: {exc})") from None


def _grey_palette(img: Image.Image) -> bool:
    """A palette image whose colours are all grey (how Pillow writes a grey GIF) counts as grey."""
    palette = np.asarray(img.getpalette() or [], dtype=np.int64)
    if palette.size % 3:
        return False
    rgb = palette.reshape(-1, 3)
    return bool(np.all(rgb == rgb[:, :1]))


def _is_ignored(parts: Sequence[str]) -> bool:
    return any(p.startswith(".") or p in IGNORED_NAMES for p in parts)


def _assign_classes(source: str, files: list[tuple[str, tuple[str, ...]]]) -> list[tuple[str, str | None, str]]:
    """(display name, path parts below the root) -> (display name, split or None, class name).

    Accepted layouts: `<class>/<image>` and `{train,test}/<class>/<image>`, optionally inside one wrapping folder
    (as when a folder is zipped with its own name).
    """
    if not files:
        raise InvalidImages(f"{source}: contains no images")
    while all(len(p) >= 3 for _, p in files) and len({p[0] for _, p in files}) == 1:
        files = [(n, p[1:]) for n, p in files]  # strip the wrapping folder
    tops = {p[0] for _, p in files}
    if all(len(p) == 3 for _, p in files) and tops == {"train", "test"}:
        return [(n, p[0], p[1]) for n, p in files]
    for n, p in files:
        if len(p) == 1:
            raise InvalidImages(f"{source}: {n} is not inside a class folder; expected <class>/<image>")
        if len(p) != 2:
            raise InvalidImages(f"{source}: {n} is nested too deep; expected <class>/<image> "
                                f"or train|test/<class>/<image>")
    return [(n, None, p[0]) for n, p in files]


def _build_image_set(source: str, name: str, files: list[tuple[str, tuple[str, ...]]],
                     read: Callable[[str], bytes]) -> ImageSet:
    """Decodes the files of an image folder or zip (in sorted order) into an ImageSet."""
    for n, p in files:
        if not p[-1].lower().endswith(IMAGE_EXTENSIONS):
            raise InvalidImages(f"{source}: {n} is not an image file (expected one of {', '.join(IMAGE_EXTENSIONS)})")
    entries = sorted(_assign_classes(source, files), key=lambda e: (e[1] or "", e[2], e[0]))
    class_names = sorted({c for _, _, c in entries})
    class_id = {c: i for i, c in enumerate(class_names)}
    # One array for the whole set, allocated when the first image gives the shape, each image decoded into its row:
    # a list of images then np.stack would hold every pixel twice (50,000 CIFAR-10 images: 1.2 GB instead of 0.6).
    first = entries[0][0]
    array = _decode_image(first, read(first))
    if array.size * len(entries) > MAX_VALUES:
        raise InvalidImages(f"{source}: {len(entries)} images of {list(array.shape)} are over the limit of "
                            f"{MAX_VALUES} values")
    stacked = np.empty((len(entries), *array.shape), dtype=np.float32)
    stacked[0] = array
    for row, (n, _, _) in enumerate(entries[1:], start=1):
        array = _decode_image(n, read(n))
        if array.shape != stacked.shape[1:]:
            (c0, h0, w0), (c1, h1, w1) = stacked.shape[1:], array.shape
            if c0 != c1:
                kinds = {1: "grey (1 channel)", 3: "colour (3 channels)"}
                raise InvalidImages(f"{source}: images differ in mode: {first} is {kinds[c0]}, {n} is {kinds[c1]}; "
                                    "every image of a set must have the same mode")
            raise InvalidImages(f"{source}: images differ in size: {first} is {w0}x{h0}, {n} is {w1}x{h1} (width x "
                                "height); every image of a set must have the same size")
        stacked[row] = array
    images = torch.from_numpy(stacked)
    labels = np.array([class_id[c] for _, _, c in entries], dtype=np.int64)
    if entries[0][1] is None:
        train, test = stratified_split(labels)
    else:
        is_test = np.array([s == "test" for _, s, _ in entries])
        train, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    return ImageSet(name=name, images=images, labels=torch.from_numpy(labels), class_names=class_names,
                    train_index=train, test_index=test,
                    meta={"source": source, "files": [n for n, _, _ in entries]})


def read_image_folder(path: str | Path, *, max_files: int = MAX_FILES) -> ImageSet:
    """`root/<class>/*.png|jpg|jpeg|bmp|gif` (or `root/{train,test}/<class>/*`) -> ImageSet.

    Classes are the sorted folder names; dotfiles, __MACOSX, Thumbs.db and desktop.ini are ignored; any other
    non-image file is an error. Directory symlinks are not followed.
    """
    root = Path(path)
    if not root.is_dir():
        raise InvalidImages(f"{root}: not a directory")
    files: list[tuple[str, tuple[str, ...]]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        rel = Path(dirpath).relative_to(root).parts
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored([d]))
        for f in sorted(filenames):
            parts = (*rel, f)
            if _is_ignored(parts):
                continue
            files.append(("/".join(parts), parts))
            if len(files) > max_files:
                raise InvalidImages(f"{root}: more than {max_files} files")
    return _build_image_set(str(root), root.name, files, lambda n: (root / n).read_bytes())


_DRIVE = re.compile(r"^[A-Za-z]:")


def _check_member(source: str, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The path parts of a zip member, or InvalidImages for absolute paths, `..`, symlinks and encryption."""
    name = info.filename
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        raise InvalidImages(f"{source}: member {name!r} has an absolute path")
    parts = tuple(p for p in re.split(r"[\\/]", name) if p not in ("", "."))
    if ".." in parts:
        raise InvalidImages(f"{source}: member {name!r} points outside the archive ('..')")
    if "\x00" in name:
        raise InvalidImages(f"{source}: member {name!r} has a NUL byte in its name")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise InvalidImages(f"{source}: member {name!r} is a symbolic link")
    if info.flag_bits & 0x1:
        raise InvalidImages(f"{source}: member {name!r} is encrypted")
    return parts


def read_zip(path_or_file: str | Path | BinaryIO, *, max_bytes: int = MAX_ZIP_BYTES,
             max_files: int = MAX_FILES, name: str | None = None) -> ImageSet:
    """A zip of an image folder -> ImageSet (layouts as `read_image_folder`).

    Refused: absolute member paths, `..`, symlinks, encrypted members, more than `max_files` members or more than
    `max_bytes` uncompressed in all, non-image files (dotfiles and __MACOSX are ignored), an archive without images.
    `path_or_file` may be an open binary file (e.g. an upload); `name` then names it in errors and in the set.
    """
    if isinstance(path_or_file, (str, Path)):
        source = str(path_or_file)
        default_name = Path(path_or_file).stem
    else:
        source = name or str(getattr(path_or_file, "name", "upload.zip"))
        default_name = Path(source).stem
    try:
        archive = zipfile.ZipFile(path_or_file)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as exc:
        raise InvalidImages(f"{source}: not a zip archive ({exc})") from None
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        files: list[tuple[str, tuple[str, ...]]] = []
        total = 0
        for info in archive.infolist():
            parts = _check_member(source, info)
            if info.is_dir() or not parts or _is_ignored(parts):
                continue
            if info.filename in members:
                raise InvalidImages(f"{source}: member {info.filename!r} appears twice")
            files.append((info.filename, parts))
            members[info.filename] = info
            total += info.file_size
            if len(files) > max_files:
                raise InvalidImages(f"{source}: more than {max_files} files")
            if total > max_bytes:
                raise InvalidImages(f"{source}: more than {max_bytes} bytes uncompressed")

        def read(member: str) -> bytes:
            info = members[member]
            try:
                with archive.open(info) as f:
                    data = f.read(info.file_size + 1)  # zipfile stops at the declared size and checks the CRC
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError, RuntimeError, NotImplementedError) as exc:
                raise InvalidImages(f"{source}: member {member!r} cannot be read ({exc})") from None
            if len(data) > info.file_size:
                raise InvalidImages(f"{source}: member {member!r} is larger than it declares")
            return data

        return _build_image_set(source, name or default_name, files, read)


# --------------------------------------------------------------------------------------------------------------------
# MNIST IDX


def _read_bounded(path: Path, max_bytes: int) -> bytes:
    """The bytes of a file, gunzipped when it starts with the gzip magic; at most `max_bytes`."""
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidImages(f"{path}: no such file") from None
    except (OSError, EOFError, zlib.error) as exc:
        raise InvalidImages(f"{path}: cannot be read ({exc})") from None
    if len(data) > max_bytes:
        raise InvalidImages(f"{path}: larger than {max_bytes} bytes")
    return data


def _read_idx_array(path: Path, magic: int, what: str, max_bytes: int) -> np.ndarray:
    """An unsigned-byte IDX file with the given magic number (0x803 images [N, H, W], 0x801 labels [N])."""
    data = _read_bounded(path, max_bytes)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < 4:
        raise InvalidImages(f"{path}: too short for an IDX file")
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise InvalidImages(f"{path}: bad magic number 0x{found:08x}; an IDX {what} file starts with 0x{magic:08x}")
    if len(data) < header:
        raise InvalidImages(f"{path}: truncated IDX header")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims))
    if len(data) - header != expected:
        raise InvalidImages(f"{path}: header says {' x '.join(map(str, dims))} = {expected} bytes of {what}, "
                            f"the file holds {len(data) - header}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def _idx_pair(images_path: str | Path, labels_path: str | Path, max_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    images = _read_idx_array(Path(images_path), 0x00000803, "images", max_bytes)
    labels = _read_idx_array(Path(labels_path), 0x00000801, "labels", max_bytes)
    if images.shape[0] != labels.shape[0]:
        raise InvalidImages(f"{images_path}: {images.shape[0]} images but {labels_path} has {labels.shape[0]} labels")
    if images.shape[0] == 0:
        raise InvalidImages(f"{images_path}: contains no images")
    return images, labels


def _idx_image_set(name: str, source: str, parts: list[tuple[np.ndarray, np.ndarray]],
                   is_test: list[bool]) -> ImageSet:
    if len({p[0].shape[1:] for p in parts}) > 1:
        raise InvalidImages(f"{source}: the IDX files hold images of different sizes")
    images = np.concatenate([p[0] for p in parts])  # [N, H, W] uint8
    raw_labels = np.concatenate([p[1] for p in parts])
    values = np.unique(raw_labels)
    labels = np.searchsorted(values, raw_labels).astype(np.int64)
    test_mask = np.concatenate([np.full(len(p[1]), t) for p, t in zip(parts, is_test, strict=True)])
    if test_mask.all() or not test_mask.any():
        train, test = stratified_split(labels)
    else:
        train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    return ImageSet(name=name, images=torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1),
                    labels=torch.from_numpy(labels), class_names=[str(v) for v in values],
                    train_index=train, test_index=test, meta={"source": source})


def read_idx(images_path: str | Path, labels_path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> ImageSet:
    """An MNIST-style IDX pair (raw or gzipped; images magic 0x00000803, labels 0x00000801) -> ImageSet with the
    fixed stratified split. Class names are the distinct label values as text."""
    pair = _idx_pair(images_path, labels_path, max_bytes)
    name = Path(images_path).name.split("-")[0].split(".")[0]
    return _idx_image_set(name, str(images_path), [pair], [False])


def _idx_labels_path(images_path: Path) -> Path:
    return images_path.with_name(images_path.name.replace("images", "labels").replace("idx3", "idx1"))


def _is_idx_test(path: Path) -> bool:
    return path.name.startswith("t10k") or "test" in path.name


# --------------------------------------------------------------------------------------------------------------------
# CIFAR python batches (the pickles are read by training.cifar_pickle)


_CIFAR_TEST = ("test_batch", "test")
_CIFAR_META = ("batches.meta", "meta")


def _is_cifar_name(name: str) -> bool:
    return bool(re.fullmatch(r"data_batch_\d+|test_batch|train|test", name))


def _cifar_image_set(name: str, source: str, batches: Iterable[tuple[str, bytes]], meta: bytes | None,
                     meta_source: str) -> ImageSet:
    parts, is_test = [], []
    for batch_source, data in batches:
        parts.append(parse_batch(batch_source, data))
        is_test.append(Path(batch_source).name in _CIFAR_TEST)
    if not parts:
        raise InvalidImages(f"{source}: no CIFAR batches (data_batch_*, test_batch)")
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    if images.shape[0] == 0:
        raise InvalidImages(f"{source}: contains no images")
    if images.size > MAX_VALUES:
        raise InvalidImages(f"{source}: over the limit of {MAX_VALUES} values")
    class_names = parse_class_names(meta_source, meta, int(labels.max()) + 1)
    test_mask = np.concatenate([np.full(len(p[1]), t) for p, t in zip(parts, is_test, strict=True)])
    if test_mask.all() or not test_mask.any():
        train, test = stratified_split(labels)
    else:
        train, test = np.flatnonzero(~test_mask), np.flatnonzero(test_mask)
    return ImageSet(name=name, images=torch.from_numpy(images.astype(np.float32) / 255.0),
                    labels=torch.from_numpy(labels), class_names=class_names, train_index=train, test_index=test,
                    meta={"source": source})


def read_cifar_batches(paths: Sequence[str | Path] | str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> ImageSet:
    """CIFAR-10 (or CIFAR-100) python batch files -> ImageSet, without running any code from them.

    Class names come from `batches.meta` (CIFAR-100: `meta`) beside the first batch, else the CIFAR-10 names.
    Batches named test_batch / test form the test split; without one the fixed stratified split is used.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    paths = [Path(p) for p in paths]
    if not paths:
        raise InvalidImages("no CIFAR batch files given")
    batches = [(str(p), _read_plain(p, max_bytes)) for p in paths]
    meta_path = next((paths[0].with_name(m) for m in _CIFAR_META if paths[0].with_name(m).is_file()), None)
    meta = _read_plain(meta_path, max_bytes) if meta_path else None
    return _cifar_image_set(paths[0].parent.name or "cifar", str(paths[0].parent), batches, meta, str(meta_path))


def read_cifar_tar(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> ImageSet:
    """The CIFAR-10/100 python tarball (e.g. cifar-10-python.tar.gz) -> ImageSet, read in memory, never extracted."""
    source = str(path)
    try:
        archive = tarfile.open(path, "r:*")
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise InvalidImages(f"{source}: not a tar archive ({exc})") from None
    batches, meta = [], None
    with archive:
        try:
            for member in archive.getmembers():
                base = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not (_is_cifar_name(base) or base in _CIFAR_META):
                    continue
                if member.size > max_bytes:
                    raise InvalidImages(f"{source}: member {member.name!r} is larger than {max_bytes} bytes")
                f = archive.extractfile(member)
                data = f.read() if f else b""
                if base in _CIFAR_META:
                    meta = data
                else:
                    batches.append((f"{source}:{member.name}", data))
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            raise InvalidImages(f"{source}: corrupt tar archive ({exc})") from None
    batches.sort(key=lambda b: b[0])
    return _cifar_image_set(Path(source).name.split(".")[0], source, batches, meta, f"{source}:meta")


def _read_plain(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise InvalidImages(f"{path}: larger than {max_bytes} bytes")
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImages(f"{path}: cannot be read ({exc})") from None


# --------------------------------------------------------------------------------------------------------------------
# dispatch for training.sources.load_images


def read_directory(root: Path) -> ImageSet:
    """A directory of IDX files, of CIFAR batches, or an image folder."""
    names = sorted(p.name for p in root.iterdir() if p.is_file())
    idx_images = [root / n for n in names if "idx3" in n and "images" in n]
    idx_images.sort(key=lambda p: (_is_idx_test(p), p.name))  # train files first
    if idx_images:
        pairs, is_test = [], []
        for images_path in idx_images:
            pairs.append(_idx_pair(images_path, _idx_labels_path(images_path), MAX_FILE_BYTES))
            is_test.append(_is_idx_test(images_path))
        return _idx_image_set(root.name, str(root), pairs, is_test)
    cifar = [root / n for n in names if _is_cifar_name(n)]
    if cifar and any(n.startswith(("data_batch_", "test_batch")) or n in _CIFAR_META for n in names):
        return read_cifar_batches(cifar)
    return read_image_folder(root)


def read_file(path: Path) -> ImageSet:
    """A zip of an image folder, a CIFAR tarball, an IDX images file (labels beside it) or a CIFAR batch."""
    if zipfile.is_zipfile(path):
        return read_zip(path)
    if "idx3" in path.name:
        return read_idx(path, _idx_labels_path(path))
    if _is_cifar_name(path.name):
        return read_cifar_batches([path])
    try:
        is_tar = tarfile.is_tarfile(path)
    except OSError:
        is_tar = False
    if is_tar:
        return read_cifar_tar(path)
    raise InvalidImages(f"{path}: not a recognised image source (expected a zip of an image folder, MNIST IDX files, "
                        "CIFAR python batches or their tarball, or a directory)")
