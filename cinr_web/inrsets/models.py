"""INR sets: a dataset fitted with one FieldSpec, fit settings and seeds per image; weights in one safetensors file."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

from cinr_web.runs.status import Status
from inr import FieldSpec

if TYPE_CHECKING:
    from training.data import INRDataset


def weights_path(inrset: INRSet, filename: str) -> str:
    return f"inrsets/{inrset.pk}/{filename}"


class INRSet(models.Model):
    dataset = models.ForeignKey("datasets.ImageDataset", on_delete=models.CASCADE, related_name="inrsets")
    name = models.CharField(max_length=200, blank=True)
    spec = models.JSONField(help_text="inr.FieldSpec.to_dict()")
    fit_config = models.JSONField(default=dict, blank=True, help_text="steps, lr, anti_alias, shared_init")
    seeds_per_image = models.PositiveSmallIntegerField(default=1)
    # One safetensors file written by inr.save: params with leading dim N*S (image-major) and per-INR
    # image_index / seed / label / is_train / psnr.
    weights = models.FileField(upload_to=weights_path, blank=True, max_length=300)
    num_inrs = models.PositiveIntegerField(default=0)
    psnr_mean = models.FloatField(null=True, blank=True)
    psnr_min = models.FloatField(null=True, blank=True)
    psnr_max = models.FloatField(null=True, blank=True)
    psnr_histogram = models.JSONField(default=dict, blank=True, help_text='{"edges": [...], "counts": [...]}')
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="inrsets")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "INR set"

    def __str__(self) -> str:
        return self.name or f"{self.dataset.name} · {self.spec.get('arch', '?')} · {self.seeds_per_image} seed(s)"

    @property
    def field_spec(self) -> FieldSpec:
        return FieldSpec.from_dict(self.spec)

    @property
    def fit_run(self):
        """The latest fit Run of this set (re-runs create new ones), or None."""
        return self.runs.filter(kind="fit").order_by("-id").first()

    def load(self) -> INRDataset:
        """The fitted INRs as a training.data.INRDataset (raises ValueError while there are no weights yet)."""
        from cinr_web.inrsets.services import load_inr_dataset

        return load_inr_dataset(self)
