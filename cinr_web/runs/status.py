"""Statuses shared by runs and INR sets."""

from django.db import models


class Status(models.TextChoices):
    QUEUED = "queued", "queued"
    RUNNING = "running", "running"
    SUCCEEDED = "succeeded", "succeeded"
    FAILED = "failed", "failed"
    CANCELLED = "cancelled", "cancelled"


FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
