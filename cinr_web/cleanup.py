"""Stored files follow their rows: deleting a dataset, image, INR set, artifact or fit chunk deletes its file once
the deleting transaction commits (never before: a rolled-back delete keeps its file)."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_delete

from cinr_web.storage import delete_quietly

FILE_FIELDS = {
    "datasets.ImageDataset": "arrays",
    "datasets.Image": "file",
    "inrsets.INRSet": "weights",
    "runs.Artifact": "file",
    "runs.FitChunk": "file",
}


def _delete_file(sender, instance, **kwargs) -> None:
    field = FILE_FIELDS[sender._meta.label]
    name = getattr(instance, field).name
    if name:
        transaction.on_commit(lambda: delete_quietly([name]))


def connect() -> None:
    from django.apps import apps

    for label in FILE_FIELDS:
        post_delete.connect(_delete_file, sender=apps.get_model(label), dispatch_uid=f"cinr-delete-file-{label}")
