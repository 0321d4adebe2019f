"""Runs (fit, SimCLR, supervised, probe, embedding), their metric points, artifacts and fit chunks.

The Run row is the source of truth: a Celery message carries only a run id, a worker reads everything else here,
writes progress and heartbeat here, and reads cancel_requested from here.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from cinr_web.runs.status import FINISHED, Status


def artifact_path(artifact: Artifact, filename: str) -> str:
    return f"runs/{artifact.run_id}/{filename}"


def chunk_path(chunk: FitChunk, filename: str) -> str:
    return f"runs/{chunk.run_id}/chunks/{filename}"


class Run(models.Model):
    class Kind(models.TextChoices):
        FIT = "fit", "fit INRs"
        SIMCLR = "simclr", "SimCLR pretraining"
        SUPERVISED = "supervised", "supervised training"
        PROBE = "probe", "linear probe"
        EMBEDDING = "embedding", "embedding map"

    Status = Status

    kind = models.CharField(max_length=16, choices=Kind.choices, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    config = models.JSONField(default=dict, blank=True)
    inrset = models.ForeignKey("inrsets.INRSet", null=True, blank=True, on_delete=models.CASCADE, related_name="runs")
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    error = models.TextField(blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="runs")
    created_at = models.DateTimeField(auto_now_add=True)
    # Set when the task message went to the broker; a queued run without it waits for its parent to succeed.
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True, help_text="host and process of the worker running it")
    progress = models.FloatField(default=0.0)
    cancel_requested = models.BooleanField(default=False)
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"run {self.pk} ({self.kind}, {self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED

    @property
    def is_encoder(self) -> bool:
        return self.kind in (self.Kind.SIMCLR, self.Kind.SUPERVISED)

    @property
    def group(self) -> str:
        """Channel-layer group of this run's live events."""
        return f"run-{self.pk}"

    def artifact(self, kind: str) -> Artifact | None:
        return self.artifacts.filter(kind=kind).order_by("-id").first()


class MetricPoint(models.Model):
    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="metrics")
    step = models.IntegerField()
    name = models.CharField(max_length=64)
    value = models.FloatField()
    time = models.DateTimeField()

    class Meta:
        ordering = ["run", "name", "step", "id"]
        indexes = [models.Index(fields=["run", "name", "step"])]

    def __str__(self) -> str:
        return f"{self.name}[{self.step}] = {self.value:.4g}"


class Artifact(models.Model):
    class Kind(models.TextChoices):
        CHECKPOINT = "checkpoint", "encoder checkpoint"
        PROBE = "probe", "linear probe"
        EMBEDDING = "embedding", "embedding map"
        WEIGHTS = "weights", "INR weights"

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="artifacts")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    file = models.FileField(upload_to=artifact_path, max_length=300)
    meta = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["run", "kind", "id"]

    def __str__(self) -> str:
        return f"{self.kind} of run {self.run_id}"


class FitChunk(models.Model):
    """One slice of images [start, stop) of a fit run, fitted by one task; merged into the INR set by the last one."""

    run = models.ForeignKey(Run, on_delete=models.CASCADE, related_name="chunks")
    index = models.PositiveIntegerField()
    start = models.PositiveIntegerField()
    stop = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0, help_text="INRs finished")
    total = models.PositiveIntegerField(default=0, help_text="INRs in this chunk")
    psnr_mean = models.FloatField(null=True, blank=True)
    seconds = models.FloatField(null=True, blank=True)
    file = models.FileField(upload_to=chunk_path, blank=True, max_length=300)
    # Every gpu-queue worker takes chunks of a fit: this says which one fitted (or is fitting) this chunk.
    worker = models.CharField(max_length=200, blank=True, help_text="host and process of the worker that fitted it")

    class Meta:
        ordering = ["run", "index"]
        constraints = [models.UniqueConstraint(fields=["run", "index"], name="unique_fit_chunk")]

    def __str__(self) -> str:
        return f"chunk {self.index} of run {self.run_id} [{self.start}, {self.stop})"
