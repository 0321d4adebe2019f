"""Inference for the model API and the dashboard's "Try it": embed INRs with a succeeded encoder run.

`embed_inrs(run, spec, params)` -> one dict per INR: embedding vector, predicted class name, class probabilities
(from the run's linear probe, or the supervised run's own head), and the 2-D position on the run's embedding map.
Loaded models are cached per run and refreshed when the run gets a newer probe or embedding map.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np
import torch

import inr
from cinr_web.api import weights
from cinr_web.runs.models import Run


class EncoderUnavailable(Exception):
    """The run cannot serve: not a succeeded encoder run, or its checkpoint is missing."""


@dataclass
class LoadedEncoder:
    run_id: int
    spec: inr.FieldSpec
    encoder: torch.nn.Module  # .encode_params(params) -> [B, D]
    class_names: list[str]
    classifier: str | None  # "probe run <id>" / "supervised head" / None
    predict_proba: object | None  # features [B, D] (numpy) -> probabilities [B, K]
    place: object | None  # features [B, D] (numpy) -> map positions [B, 2]
    lock: threading.Lock = field(default_factory=threading.Lock)

    def embed(self, params: inr.Params) -> list[dict]:
        """params: name -> [B, ...] of self.spec -> B result dicts (embedding, predicted_class, probabilities,
        map_position)."""
        with self.lock, torch.inference_mode():  # torch modules are not meant for concurrent calls
            features = self.encoder.encode_params(params).float().cpu().numpy()  # [B, D]
        probs = np.asarray(self.predict_proba(features)) if self.predict_proba is not None else None  # [B, K]
        positions = np.asarray(self.place(features)) if self.place is not None else None  # [B, 2]
        results = []
        for b in range(features.shape[0]):
            item: dict = {"embedding": features[b].tolist(), "predicted_class": None, "probabilities": {},
                          "map_position": positions[b].tolist() if positions is not None else None}
            if probs is not None:
                item["probabilities"] = {name: float(p) for name, p in zip(self.class_names, probs[b], strict=True)}
                item["predicted_class"] = self.class_names[int(probs[b].argmax())]
            results.append(item)
        return results


# run id -> (cache key, LoadedEncoder); the key changes when a newer probe/map artifact appears.
_CACHE: dict[int, tuple[tuple, LoadedEncoder]] = {}
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 8


def _latest_child_artifact(run: Run, kind: str, artifact_kind: str):
    """The newest artifact of `artifact_kind` of a succeeded child run of `kind` (probe / embedding)."""
    from cinr_web.runs.models import Artifact

    return (Artifact.objects.filter(run__parent=run, run__kind=kind, run__status=Run.Status.SUCCEEDED,
                                    kind=artifact_kind).order_by("-id").first())


def load_encoder(run: Run) -> LoadedEncoder:
    """The run's encoder with its classifier and map, loaded once and cached."""
    if run.kind not in (Run.Kind.SIMCLR, Run.Kind.SUPERVISED) or run.status != Run.Status.SUCCEEDED:
        raise EncoderUnavailable(f"run {run.pk} is a {run.status} {run.kind} run; an encoder is a succeeded simclr "
                                 "or supervised run")
    checkpoint = run.artifact("checkpoint")
    if checkpoint is None:
        raise EncoderUnavailable(f"run {run.pk} has no checkpoint artifact")
    probe = _latest_child_artifact(run, "probe", "probe")
    emap = _latest_child_artifact(run, "embedding", "embedding")
    key = (checkpoint.pk, probe.pk if probe else None, emap.pk if emap else None)
    with _CACHE_LOCK:
        hit = _CACHE.get(run.pk)
        if hit is not None and hit[0] == key:
            return hit[1]
    loaded = _load(run, checkpoint, probe, emap)
    with _CACHE_LOCK:
        _CACHE[run.pk] = (key, loaded)
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
    return loaded


def _load(run: Run, checkpoint, probe, emap) -> LoadedEncoder:
    from cinr_web.runs import artifacts  # web-backbone: reading artifact files into training objects

    encoder, head = artifacts.load_encoder(checkpoint)
    encoder.eval()
    spec = encoder.spec
    class_names = list(run.inrset.dataset.class_names) if run.inrset_id else []
    predict_proba, classifier = None, None
    if probe is not None:
        predict_proba = artifacts.load_probe(probe).predict_proba
        classifier = f"probe run {probe.run_id}"
    elif head is not None:  # a supervised run classifies with its own linear head
        def predict_proba(features: np.ndarray, head=head) -> np.ndarray:
            with torch.inference_mode():
                return torch.softmax(head(torch.as_tensor(features)), dim=1).numpy()
        classifier = "supervised head"
    place = artifacts.load_embedding_map(emap).place if emap is not None else None
    return LoadedEncoder(run.pk, spec, encoder, class_names, classifier, predict_proba, place)


def embed_inrs(run: Run, spec: inr.FieldSpec, params: inr.Params) -> list[dict]:
    """Embeds INRs (params name -> [B, ...]) with the encoder of `run`.

    Raises EncoderUnavailable when the run cannot serve and weights.BadWeights (a ValueError) when the INRs do not
    fit the encoder (architecture, shapes, NaN/inf). Returns one dict per INR: embedding (list of floats),
    predicted_class (str or None without a classifier), probabilities (class name -> float), map_position
    ([x, y] or None without an embedding map).
    """
    model = load_encoder(run)
    params = {k: torch.as_tensor(v).detach().to(torch.float32).cpu() for k, v in params.items()}
    weights.check_finite_and_shapes(spec, params, "INR weights")
    weights.require_spec(weights.WeightBatch(spec, params, []), model.spec)
    return model.embed(params)
