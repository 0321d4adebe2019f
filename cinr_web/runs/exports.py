"""What a researcher downloads from a run or an INR set, as files a script or a spreadsheet reads.

The API's download endpoints (cinr_web/api/views_downloads.py) serve these; the dashboard links to them.

- INR set weights and encoder checkpoints are the stored safetensors files themselves (streamed, never re-encoded).
- A checkpoint's config is the JSON that training.checkpoint stored in it (kind, spec, encoder, ...).
- A probe's result is the run's result JSON (accuracy, per-class accuracy, confusion, class names, ...).
- An embedding run's map is one row per mapped INR: its INR-set row, image, seed, label, class, split, positions on the
  encoder and raw-weight t-SNE maps and, when stored, its encoder features (the embedding), as CSV or JSON.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from cinr_web.runs.models import Run

ENCODER_KINDS = (Run.Kind.SIMCLR, Run.Kind.SUPERVISED)


def download_name(owner: str, pk: int, what: str) -> str:
    """The file name a download is saved under, e.g. cinr-run-12-checkpoint.safetensors."""
    return f"cinr-{owner}-{pk}-{what}"


# The downloads made from each kind of run artifact, {file name in the URL: what it is}.
ARTIFACT_FILES = {
    "checkpoint": {"checkpoint.safetensors": "encoder checkpoint (safetensors)", "config.json": "its config (JSON)"},
    "probe": {"probe.json": "probe result (JSON)"},
    "embedding": {"embedding.csv": "map and embeddings (CSV)", "embedding.json": "map and embeddings (JSON)"},
}
RUN_ARTIFACT = {Run.Kind.SIMCLR: "checkpoint", Run.Kind.SUPERVISED: "checkpoint", Run.Kind.PROBE: "probe",
                Run.Kind.EMBEDDING: "embedding"}


def run_files(run: Run) -> dict[str, str]:
    """The files a run offers for download, {file name in the URL: what it is}; empty until it has succeeded."""
    if run.status != Run.Status.SUCCEEDED:
        return {}
    return dict(ARTIFACT_FILES.get(RUN_ARTIFACT.get(run.kind, ""), {}))


def checkpoint_config(run: Run) -> dict:
    """The JSON config stored in an encoder run's checkpoint (what training.checkpoint.load_encoder reads)."""
    from cinr_web.storage import local_path
    from training.checkpoint import read_config

    artifact = run.artifact("checkpoint")
    if artifact is None:
        raise LookupError(f"run {run.pk} has no checkpoint")
    with local_path(artifact.file.name, ".safetensors") as path:
        return read_config(path)


def encoder_run_id(run: Run) -> int | None:
    """The encoder run a probe or embedding run read features from; None when it read the raw weights."""
    parent = run.parent
    return parent.pk if parent is not None and parent.kind in ENCODER_KINDS else None


def probe_result(run: Run) -> dict:
    """A probe run's result with what it was computed on."""
    return {"run": run.pk, "inrset": run.inrset_id, "encoder_run": encoder_run_id(run), "result": run.result}


class EmbeddingTable:
    """An embedding run's map as columns: names, and one list per column (features as one list of rows)."""

    def __init__(self, run: Run) -> None:
        from cinr_web.runs.artifacts import load_map_tensors

        tensors, self.class_names = load_map_tensors(run)
        self.run = run
        labels = tensors["labels"].tolist()
        self.columns: dict[str, list] = {
            "inr_index": tensors["inr_index"].tolist(),
            "image_index": tensors["image_index"].tolist(),
            "seed": tensors["seed"].tolist(),
            "label": labels,
            "class_name": [self.class_names[label] for label in labels],
            "split": ["train" if b else "test" for b in tensors["is_train"].tolist()],
        }
        for key in ("encoder_xy", "raw_xy"):
            if key in tensors:
                xy = tensors[key].tolist()
                stem = key.removesuffix("_xy")
                self.columns[f"{stem}_x"] = [p[0] for p in xy]
                self.columns[f"{stem}_y"] = [p[1] for p in xy]
        features = tensors.get("encoder_features")
        self.features: list[list[float]] | None = features.tolist() if features is not None else None

    def as_json(self) -> dict:
        return {"run": self.run.pk, "inrset": self.run.inrset_id, "encoder_run": encoder_run_id(self.run),
                "class_names": self.class_names, "columns": self.columns, "features": self.features}

    def csv_lines(self) -> Iterator[str]:
        """The table as CSV text, a line at a time (floats with 9 significant digits: float32 exactly)."""
        names = list(self.columns)
        width = len(self.features[0]) if self.features else 0
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(names + [f"feature_{k}" for k in range(width)])
        rows = zip(*self.columns.values(), strict=True)
        for i, row in enumerate(rows):
            cells = [f"{v:.9g}" if isinstance(v, float) else v for v in row]
            if self.features:
                cells += [f"{v:.9g}" for v in self.features[i]]
            writer.writerow(cells)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
