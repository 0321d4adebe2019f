"""Run artifacts: how encoder checkpoints, linear probes and embedding maps are stored and read back.

Everything is safetensors (tensors) plus JSON metadata; nothing is pickled. The model API (web-api's inference.py)
and the dashboard read artifacts only through the load_* functions here.

- checkpoint (Artifact kind "checkpoint"): training.checkpoint's file of the whole trained model (SimCLR: encoder +
  projection head; supervised: encoder + linear head) with config {"kind", "spec", "encoder", ...}.
  load_encoder(...) -> (the encoder in eval mode, the supervised nn.Linear head or None).
- probe (Artifact kind "probe"): the standardiser and the logistic-regression head of training.probe.ProbeResult:
  tensors mean [D], scale [D], coef [K', D], intercept [K'], classes [K'] (int64); metadata format "cinr.probe/1",
  class_names, feature ("encoder" or "raw"). load_probe(...).predict_proba(features [M, D]) -> [M, C] equals the
  ProbeResult's.
- embedding (Artifact kind "embedding"): the t-SNE maps of one embedding run: tensors encoder_xy [M, 2] and
  encoder_features [M, D] (float32, the encoder's features the map was made from; both absent for a raw-weights
  run, and the features absent in maps made before they were stored), raw_xy [M, 2], labels, inr_index (row in the
  INR set), image_index, seed, is_train [M]; metadata format "cinr.embedding/1", class_names.
  load_maps(run) gives the explorer's lists; load_encoder_map(run) the arrays that place new INRs on the map.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

PROBE_FORMAT = "cinr.probe/1"
EMBEDDING_FORMAT = "cinr.embedding/1"
MAX_ARTIFACT_BYTES = 2 << 30


class InvalidArtifact(ValueError):
    """An artifact file that is not what its kind says."""


def _read(artifact) -> bytes:
    with artifact.file.open("rb") as f:
        data = f.read(MAX_ARTIFACT_BYTES + 1)
    if len(data) > MAX_ARTIFACT_BYTES:
        raise InvalidArtifact(f"artifact {artifact.pk}: over {MAX_ARTIFACT_BYTES} bytes")
    return data


def _metadata(data: bytes) -> dict:
    """The __metadata__ strings of safetensors bytes (header: 8-byte little-endian length, then JSON)."""
    size = int.from_bytes(data[:8], "little")
    if size <= 0 or size > len(data) - 8:
        raise InvalidArtifact("not a safetensors file")
    header = json.loads(data[8:8 + size])
    return header.get("__metadata__", {}) or {}


def json_safe(value):
    """Lists/dicts of floats with NaN/inf as None, numpy scalars and arrays as Python values (for JSONField)."""
    if isinstance(value, np.ndarray | torch.Tensor):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -- encoder checkpoints -----------------------------------------------------------------------------------------------

def load_encoder(artifact) -> tuple[torch.nn.Module, torch.nn.Module | None]:
    """(encoder, head) from a checkpoint artifact; head is the supervised run's linear classifier, else None."""
    from cinr_web.storage import local_path
    from training.checkpoint import load_checkpoint
    from training.checkpoint import load_encoder as read_encoder

    with local_path(artifact.file.name, ".safetensors") as path:
        encoder = read_encoder(path)
        head = None
        checkpoint = load_checkpoint(path)
        if checkpoint.config.get("kind") == "supervised" and "head.weight" in checkpoint.state_dict:
            weight = checkpoint.state_dict["head.weight"]  # [classes, D]
            head = torch.nn.Linear(weight.shape[1], weight.shape[0])
            head.load_state_dict({"weight": weight, "bias": checkpoint.state_dict["head.bias"]})
            head.eval()
    return encoder, head


# -- linear probe ------------------------------------------------------------------------------------------------------

@dataclass
class LinearHead:
    """A standardiser and a logistic-regression head, read back from a probe artifact."""

    mean: np.ndarray  # [D]
    scale: np.ndarray  # [D]
    coef: np.ndarray  # [K', D]
    intercept: np.ndarray  # [K']
    classes: np.ndarray  # [K'] class ids the classifier saw in training
    class_names: list[str]

    def predict_proba(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """Class probabilities [M, C] for features [M, D] (columns follow class_names)."""
        if isinstance(x, torch.Tensor):
            x = x.detach().cpu().numpy()
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"features must be [M, {self.mean.shape[0]}], got {list(x.shape)}")
        z = ((x - self.mean) / self.scale) @ self.coef.T + self.intercept  # [M, K'] (K' = 1 for two classes)
        if self.coef.shape[0] == 1:
            p1 = 1.0 / (1.0 + np.exp(-z[:, 0]))
            proba = np.stack([1.0 - p1, p1], axis=1)
        else:
            z = z - z.max(axis=1, keepdims=True)
            proba = np.exp(z)
            proba /= proba.sum(axis=1, keepdims=True)
        out = np.zeros((x.shape[0], len(self.class_names)))
        out[:, self.classes] = proba
        return out


def probe_bytes(result, feature: str) -> bytes:
    """A training.probe.ProbeResult's head as probe-artifact bytes."""
    scaler, clf = result.scaler, result.classifier
    scale = np.where(scaler.scale_ == 0, 1.0, scaler.scale_) if scaler.scale_ is not None else np.ones_like(
        scaler.mean_)
    tensors = {
        "mean": torch.as_tensor(scaler.mean_, dtype=torch.float64),
        "scale": torch.as_tensor(scale, dtype=torch.float64),
        "coef": torch.as_tensor(clf.coef_, dtype=torch.float64),
        "intercept": torch.as_tensor(clf.intercept_, dtype=torch.float64),
        "classes": torch.as_tensor(np.asarray(clf.classes_), dtype=torch.int64),
    }
    return save_tensors({k: v.contiguous() for k, v in tensors.items()}, metadata={
        "format": PROBE_FORMAT, "class_names": json.dumps(list(result.class_names)), "feature": feature})


def load_probe(artifact) -> LinearHead:
    data = _read(artifact)
    meta = _metadata(data)
    if meta.get("format") != PROBE_FORMAT:
        raise InvalidArtifact(f"artifact {artifact.pk} is not a probe ({meta.get('format')!r})")
    t = load_tensors(data)
    return LinearHead(mean=t["mean"].numpy(), scale=t["scale"].numpy(), coef=t["coef"].numpy(),
                      intercept=t["intercept"].numpy(), classes=t["classes"].numpy(),
                      class_names=json.loads(meta["class_names"]))


# -- embedding maps ----------------------------------------------------------------------------------------------------

def maps_bytes(*, raw_xy: torch.Tensor, encoder_xy: torch.Tensor | None, rows: torch.Tensor, dataset,
               encoder_features: torch.Tensor | None = None) -> bytes:
    """Embedding-artifact bytes: the maps of the INR-set rows `rows` of `dataset` (an INRDataset), with the encoder
    features [M, D] the encoder map was made from (so new INRs can be placed without encoding the mapped ones)."""
    tensors = {"raw_xy": raw_xy.float(), "inr_index": rows.long(), "labels": dataset.labels[rows],
               "image_index": dataset.image_index[rows], "seed": dataset.seed[rows],
               "is_train": dataset.is_train[rows]}
    if encoder_xy is not None:
        tensors["encoder_xy"] = encoder_xy.float()
    if encoder_features is not None:
        if encoder_xy is None or encoder_features.ndim != 2 or encoder_features.shape[0] != encoder_xy.shape[0]:
            raise ValueError(f"encoder features {list(encoder_features.shape)} do not match the encoder map's "
                             f"{None if encoder_xy is None else encoder_xy.shape[0]} points")
        tensors["encoder_features"] = encoder_features.detach().float().cpu()
    return save_tensors({k: v.contiguous() for k, v in tensors.items()}, metadata={
        "format": EMBEDDING_FORMAT, "class_names": json.dumps(list(dataset.class_names))})


def _load_maps_tensors(artifact) -> tuple[dict, dict]:
    data = _read(artifact)
    meta = _metadata(data)
    if meta.get("format") != EMBEDDING_FORMAT:
        raise InvalidArtifact(f"artifact {artifact.pk} is not an embedding map ({meta.get('format')!r})")
    return load_tensors(data), meta


def load_maps(run) -> dict:
    """An embedding run's maps for the explorer: {"classes", "labels", "inr_index", "image_index", "seed", "split",
    "encoder": {"x", "y"} (None for a raw-weights run), "raw": {"x", "y"}} with plain lists."""
    artifact = run.artifact("embedding")
    if artifact is None:
        raise LookupError(f"run {run.pk} has no embedding artifact (status {run.status})")
    t, meta = _load_maps_tensors(artifact)

    def xy(key: str) -> dict | None:
        return {"x": t[key][:, 0].tolist(), "y": t[key][:, 1].tolist()} if key in t else None

    return {"classes": json.loads(meta["class_names"]), "labels": t["labels"].tolist(),
            "inr_index": t["inr_index"].tolist(), "image_index": t["image_index"].tolist(),
            "seed": t["seed"].tolist() if "seed" in t else None,
            "split": ["train" if b else "test" for b in t["is_train"].tolist()],
            "encoder": xy("encoder_xy"), "raw": xy("raw_xy")}


def load_map_tensors(run) -> tuple[dict[str, torch.Tensor], list[str]]:
    """An embedding run's map tensors (the module docstring lists them) and class names, for downloads."""
    artifact = run.artifact("embedding")
    if artifact is None:
        raise LookupError(f"run {run.pk} has no embedding artifact (status {run.status})")
    t, meta = _load_maps_tensors(artifact)
    return t, json.loads(meta["class_names"])


@dataclass
class EncoderMap:
    """The encoder map of an embedding run, as arrays for placing new INRs on it."""

    inr_index: np.ndarray  # [M] int64 rows of the INR set
    xy: np.ndarray  # [M, 2] map positions
    features: np.ndarray | None  # [M, D] float32 encoder features; None in maps made before they were stored


def load_encoder_map(run) -> EncoderMap | None:
    """An embedding run's encoder map with the features it was made from; None for a raw-weights run."""
    artifact = run.artifact("embedding")
    if artifact is None:
        raise LookupError(f"run {run.pk} has no embedding artifact (status {run.status})")
    t, _ = _load_maps_tensors(artifact)
    if "encoder_xy" not in t:
        return None
    xy, rows = t["encoder_xy"].double().numpy(), t["inr_index"].numpy()
    features = t.get("encoder_features")
    if features is not None:
        if features.ndim != 2 or features.shape[0] != xy.shape[0] or not bool(torch.isfinite(features).all()):
            raise InvalidArtifact(f"artifact {artifact.pk}: encoder_features {list(features.shape)} are not finite "
                                  f"features of its {xy.shape[0]} mapped INRs")
        features = features.float().numpy()
    return EncoderMap(inr_index=rows, xy=xy, features=features)
