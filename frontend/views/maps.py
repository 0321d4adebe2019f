"""Reading an embedding run's maps (t-SNE of encoder features and of raw weights) for the explorer."""

from __future__ import annotations

from cinr_web.runs.models import Run


def load_maps(embedding: Run) -> dict:
    """{"classes", "labels", "inr_index", "image_index", "split", "encoder": {"x", "y"}, "raw": {"x", "y"}}."""
    raise LookupError(f"run {embedding.pk}: the embedding artifact format is not known yet")
