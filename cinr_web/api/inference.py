"""Inference for the model API and the dashboard's "Try it": embed INRs with a succeeded encoder run.

`embed_inrs(run, spec, params)` -> one dict per INR: embedding vector, predicted class name, class probabilities
(from the run's linear probe, or the supervised run's own head), and the 2-D position on the run's embedding map.
Loaded models are cached per run and refreshed when the run gets a newer probe or embedding map.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np
import torch

import inr
from cinr_web.api import weights
from cinr_web.runs.models import Run
from training.threads import apply_thread_policy


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


# run id -> (artifact ids, LoadedEncoder, when checked); a newer probe or map changes the ids and is picked up
# within RECHECK_SECONDS.
_CACHE: dict[int, tuple[tuple, LoadedEncoder, float]] = {}
RECHECK_SECONDS = 5.0
# Maps made before embedding artifacts stored the encoder features: at most this many mapped INRs (evenly spread
# over the map's rows) are encoded once when the encoder is loaded, to compare new points with. Newer maps hold the
# features of all their INRs, and placement uses all of them without encoding anything.
MAP_REFERENCE_POINTS = 2000
_CACHE_LOCK = threading.Lock()
_CACHE_MAX = 8


def _artifacts(run: Run) -> tuple:
    """(checkpoint, newest probe, newest embedding map) of an encoder run, in one query. Probes and maps are the
    artifacts of succeeded child runs (kind probe / embedding) whose parent is this run."""
    from django.db.models import Q

    from cinr_web.runs.models import Artifact

    rows = (Artifact.objects.filter(Q(run=run, kind="checkpoint")
                                    | Q(run__parent=run, run__status=Run.Status.SUCCEEDED, run__kind="probe",
                                        kind="probe")
                                    | Q(run__parent=run, run__status=Run.Status.SUCCEEDED, run__kind="embedding",
                                        kind="embedding"))
            .select_related("run").order_by("-id"))
    newest: dict = {}
    for artifact in rows:
        newest.setdefault(artifact.kind, artifact)
    return newest.get("checkpoint"), newest.get("probe"), newest.get("embedding")


def load_encoder(run: Run) -> LoadedEncoder:
    """The run's encoder with its classifier and map, loaded once and cached."""
    if run.kind not in (Run.Kind.SIMCLR, Run.Kind.SUPERVISED) or run.status != Run.Status.SUCCEEDED:
        raise EncoderUnavailable(f"run {run.pk} is a {run.status} {run.kind} run; an encoder is a succeeded simclr "
                                 "or supervised run")
    now = time.monotonic()
    with _CACHE_LOCK:
        hit = _CACHE.get(run.pk)
        if hit is not None and now - hit[2] < RECHECK_SECONDS:
            return hit[1]  # checked a moment ago: no queries on the hot path
    checkpoint, probe, emap = _artifacts(run)
    if checkpoint is None:
        raise EncoderUnavailable(f"run {run.pk} has no checkpoint artifact")
    key = (checkpoint.pk, probe.pk if probe else None, emap.pk if emap else None)
    if hit is not None and hit[0] == key:
        with _CACHE_LOCK:
            _CACHE[run.pk] = (key, hit[1], now)
        return hit[1]
    apply_thread_policy()  # torch may have loaded before cinr_web set the pools' variables: set its count explicitly
    loaded = _load(run, checkpoint, probe, emap)
    with _CACHE_LOCK:
        _CACHE[run.pk] = (key, loaded, time.monotonic())
        while len(_CACHE) > _CACHE_MAX:
            _CACHE.pop(next(iter(_CACHE)))
    return loaded


def _load(run: Run, checkpoint, probe, emap) -> LoadedEncoder:
    from cinr_web.runs import artifacts  # web-backbone: the one reader of artifact files

    try:
        encoder, head = artifacts.load_encoder(checkpoint)
    except (OSError, ValueError) as err:
        raise EncoderUnavailable(f"run {run.pk}: its checkpoint cannot be read ({err})") from None
    encoder.eval()
    class_names = list(run.inrset.dataset.class_names) if run.inrset_id else []
    predict_proba, classifier = None, None
    if probe is not None:
        head_of_probe = artifacts.load_probe(probe)
        predict_proba, classifier = head_of_probe.predict_proba, f"probe run {probe.run_id}"
        class_names = list(head_of_probe.class_names)
    elif head is not None:  # a supervised run classifies with its own linear head
        def predict_proba(features: np.ndarray, head=head) -> np.ndarray:
            with torch.inference_mode():
                return torch.softmax(head(torch.as_tensor(features, dtype=torch.float32)), dim=1).numpy()
        classifier = "supervised head"
    placer = _map_placer(run, encoder, emap) if emap is not None else None
    place = placer.place if placer is not None else None
    return LoadedEncoder(run.pk, encoder.spec, encoder, class_names, classifier, predict_proba, place)


class MapPlacer:
    """Puts new points on an existing 2-D map (t-SNE) by their nearest mapped neighbours in feature space.

    A new point lands at the inverse-distance weighted mean of the map positions of its k nearest mapped INRs
    (features standardised per dimension). This is how openTSNE starts new points before its optional
    optimisation (`prepare_partial`); the optimisation itself is skipped: it costs hundreds of milliseconds per
    call and barely moves a point that sits among its neighbours. A mapped INR placed again lands on itself.
    """

    def __init__(self, features: np.ndarray, xy: np.ndarray, k: int = 10) -> None:
        # features: [M, D] of the mapped INRs; xy: [M, 2] their map positions. The distances run in torch, on the
        # web process's torch threads: numpy's BLAS starts its own threads, which on a busy CPU made a batch's
        # distance matrix 30x slower (16 ms against 0.4 ms for 64 x 3,594).
        features = np.asarray(features, dtype=np.float64)
        self.mean = features.mean(axis=0)
        self.std = features.std(axis=0) + 1e-6
        self.ref = torch.from_numpy((features - self.mean) / self.std)  # [M, D] float64, for exact distances
        self.ref32 = self.ref.float()  # [M, D] float32, to find the nearest quickly
        self.ref32_sq = (self.ref32 ** 2).sum(dim=1)  # [M]
        self.xy = torch.from_numpy(np.asarray(xy, dtype=np.float64))  # [M, 2]
        self.k = min(k, len(xy))

    CHUNK = 128  # new points per distance matrix: [128, M] float32 is 10 MiB for a 20,000-point map

    def place(self, features: np.ndarray) -> np.ndarray:
        z = torch.from_numpy((np.asarray(features, dtype=np.float64) - self.mean) / self.std)  # [B, D]
        with torch.inference_mode():
            parts = [self._place(z[s:s + self.CHUNK]) for s in range(0, len(z), self.CHUNK)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, 2))

    def _place(self, z: torch.Tensor) -> torch.Tensor:
        # z: [B, D] float64. The k nearest by float32 |z|^2 + |r|^2 - 2 z.r (one matrix product), then their exact
        # distances in float64 (the expanded form cancels: a mapped INR would be ~1e-3 away from itself).
        z32 = z.float()
        d2 = (z32 ** 2).sum(dim=1, keepdim=True) + self.ref32_sq[None] - 2.0 * z32 @ self.ref32.T  # [B, M]
        near = torch.topk(d2, self.k, dim=1, largest=False).indices  # [B, k]
        dist = (self.ref[near] - z[:, None, :]).square().sum(dim=2).sqrt()  # [B, k]
        weight = 1.0 / (dist + 1e-6)
        weight /= weight.sum(dim=1, keepdim=True)
        return (weight[:, :, None] * self.xy[near]).sum(dim=1)  # [B, 2]


def _map_placer(run: Run, encoder: torch.nn.Module, emap) -> MapPlacer | None:
    """The embedding run's encoder map with the encoder's features of the mapped INRs: stored in the artifact, or
    (maps made before features were stored) computed here once per load for at most MAP_REFERENCE_POINTS of them."""
    from cinr_web.runs import artifacts

    encoder_map = artifacts.load_encoder_map(emap.run)
    if encoder_map is None:
        return None  # a raw-weights map cannot place encoder features
    if encoder_map.features is not None and encoder_map.features.shape[1] == encoder.feature_dim:
        return MapPlacer(encoder_map.features, encoder_map.xy)
    rows, xy = torch.as_tensor(encoder_map.inr_index, dtype=torch.long), encoder_map.xy
    if len(rows) > MAP_REFERENCE_POINTS:  # bound the one-off cost of encoding the mapped INRs at load
        keep = np.linspace(0, len(rows) - 1, MAP_REFERENCE_POINTS).round().astype(np.int64)
        rows, xy = rows[torch.as_tensor(keep)], xy[keep]
    dataset = run.inrset.load()
    features = []
    with torch.inference_mode():
        for start in range(0, len(rows), 256):
            chunk = rows[start:start + 256]
            features.append(encoder.encode_params({k: v[chunk] for k, v in dataset.params.items()}).float())
    return MapPlacer(torch.cat(features).numpy(), xy)


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
