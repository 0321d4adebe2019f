"""Image datasets: the images behind INR sets, stored once as PNGs (for people) and one tensor file (for workers)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

if TYPE_CHECKING:
    from training.sources import ImageSet


def arrays_path(dataset: ImageDataset, filename: str) -> str:
    return f"datasets/{dataset.pk}/{filename}"


def image_path(image: Image, filename: str) -> str:
    return f"datasets/{image.dataset_id}/images/{filename}"


class ImageDataset(models.Model):
    class Source(models.TextChoices):
        BUILTIN = "builtin", "built-in"
        UPLOAD = "upload", "upload"
        IMPORT = "import", "import"

    name = models.CharField(max_length=200, unique=True)
    description = models.TextField(blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    channels = models.PositiveSmallIntegerField()
    height = models.PositiveIntegerField()
    width = models.PositiveIntegerField()
    class_names = models.JSONField(default=list)
    num_images = models.PositiveIntegerField(default=0)
    # All images in one safetensors file (uint8 images [N, C, H, W], int64 labels [N], bool is_train [N]): a worker
    # reads one file instead of N PNGs.
    arrays = models.FileField(upload_to=arrays_path, blank=True, max_length=300)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="image_datasets")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def load(self) -> ImageSet:
        """The dataset as a training.sources.ImageSet (images float32 in [0, 1])."""
        from cinr_web.datasets.services import load_image_set

        return load_image_set(self)


class Image(models.Model):
    class Split(models.TextChoices):
        TRAIN = "train", "train"
        TEST = "test", "test"

    dataset = models.ForeignKey(ImageDataset, on_delete=models.CASCADE, related_name="images")
    index = models.PositiveIntegerField()
    label = models.IntegerField()
    split = models.CharField(max_length=8, choices=Split.choices)
    file = models.FileField(upload_to=image_path, max_length=300)

    class Meta:
        ordering = ["dataset", "index"]
        constraints = [models.UniqueConstraint(fields=["dataset", "index"], name="unique_image_index")]

    def __str__(self) -> str:
        return f"{self.dataset.name}[{self.index}]"

    @property
    def class_name(self) -> str:
        names = self.dataset.class_names
        return names[self.label] if 0 <= self.label < len(names) else str(self.label)
