"""The work of each run kind, given a claimed Run and its Reporter: calls into inr and training, stores artifacts.

Kept apart from tasks.py (the Celery plumbing: claiming, finishing, chaining) so each reads on its own.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import numpy as np
import torch

from cinr_web.runs.artifacts import json_safe, load_encoder, maps_bytes, probe_bytes
from cinr_web.runs.configs import training_config
from cinr_web.runs.models import Artifact, FitChunk, Run
from cinr_web.runs.progress import FitReporter, Reporter
from cinr_web.storage import save_bytes, save_file
from inr import FieldSpec
from inr.device import default_device
from inr.fit import FitResult, default_chunk_size
from inr.fit import fit as fit_inrs

FIT_CURVE_POINTS = 100  # steps of a fit's curve that are recorded; a fit is plotted, not logged step by step


def fit_chunk(run: Run, chunk: FitChunk, reporter: FitReporter) -> FitResult:
    """inr.fit on the images [chunk.start, chunk.stop) with image_offset = chunk.start, so the chunks of a fit give
    exactly the INRs one unchunked fit would. The reporter gets each of inr.fit's batches at every recorded step of
    the fit (its x axis: 1..steps), with the batch's number of INRs, so the curve is a mean over INRs."""
    config = run.config
    spec = FieldSpec.from_dict(config["spec"])
    images = run.inrset.dataset.load().images[chunk.start:chunk.stop]  # [n, C, H, W]
    steps = int(config["steps"])
    seeds = int(config["seeds_per_image"])
    device = default_device()
    # inr.fit's own default, passed explicitly so the callback knows how many INRs each batch holds.
    batch_images = default_chunk_size(spec, images.shape[2] * images.shape[3], seeds, device, images=len(images))
    stride = max(1, math.ceil(steps / FIT_CURVE_POINTS))
    reporter.check()

    def callback(step: int, stats: dict) -> bool:
        reporter.progress((stats["chunk"] + step / stats["steps"]) / stats["chunks"])
        if step == 1 or step % stride == 0 or step == steps:
            first_image = stats["done"] // seeds
            inrs = min(batch_images, len(images) - first_image) * seeds
            reporter.fit_step(step, inrs, stats["loss"], stats["psnr_mean"], last=step == steps)
        return reporter.tick()

    return fit_inrs(spec, images, seeds=seeds, steps=steps, lr=float(config["lr"]),
                   anti_alias=bool(config["anti_alias"]), shared_init=bool(config["shared_init"]),
                   device=device, chunk_size=batch_images, image_offset=chunk.start, callback=callback)


# -- encoder training ------------------------------------------------------------------------------------------------

def train_encoder(run: Run, reporter: Reporter) -> dict:
    """SimCLR pretraining or supervised training on the run's INR set; the encoder checkpoint becomes an Artifact."""
    from training.checkpoint import save_checkpoint

    dataset = run.inrset.load()
    config = training_config(run.kind, run.config)
    total = int(config.steps)
    reporter.check()

    def on_step(step: int, metrics: dict) -> bool:
        return reporter.step(step, metrics, fraction=step / total)

    device = default_device()
    if run.kind == Run.Kind.SIMCLR:
        from training.simclr import pretrain

        result = pretrain(dataset, config, on_step=on_step, device=device)
    else:
        from training.supervised import train_supervised

        result = train_supervised(dataset, config, on_step=on_step, device=device)
    reporter.flush()
    with tempfile.TemporaryDirectory(prefix="cinr-train-") as tmp:
        path = Path(tmp) / "encoder.safetensors"
        save_checkpoint(path, result.model.cpu(), {"kind": run.kind, "spec": dataset.spec.to_dict(),
                                                   "class_names": list(dataset.class_names),
                                                   **dataclasses.asdict(config)},
                        extra={"steps": result.steps, "run": run.pk})
        store_artifact(run, Artifact.Kind.CHECKPOINT, "encoder.safetensors", path,
                       {"spec": dataset.spec.to_dict(), "feature_dim": int(result.encoder.feature_dim),
                        "steps": int(result.steps)})
    last = result.history[-1] if result.history else {}
    return json_safe({**{k: v for k, v in last.items() if k != "step"}, **(result.metrics or {}),
                      "steps": int(result.steps), "seconds": float(result.seconds),
                      "reporting_seconds": float(reporter.seconds),  # unrounded: a short run's is under a millisecond
                      "feature_dim": int(result.encoder.feature_dim)})


def store_artifact(run: Run, kind: str, filename: str, path: Path, meta: dict) -> Artifact:
    stored = save_file(f"runs/{run.pk}/{filename}", path)
    return Artifact.objects.create(run=run, kind=kind, file=stored, meta=json_safe(meta))


def store_artifact_bytes(run: Run, kind: str, filename: str, data: bytes, meta: dict) -> Artifact:
    stored = save_bytes(f"runs/{run.pk}/{filename}", data)
    return Artifact.objects.create(run=run, kind=kind, file=stored, meta=json_safe(meta))


# -- features, probe ---------------------------------------------------------------------------------------------

def encoder_of(run: Run) -> Run | None:
    """The encoder run whose features a probe / embedding run uses (its parent), or None for raw weights."""
    parent = run.parent
    return parent if parent is not None and parent.is_encoder else None


def features(run: Run, dataset, encoder_run: Run | None) -> torch.Tensor:
    """[M, D] features of every INR of `dataset`: the encoder's, or the raw flattened weights."""
    from training.probe import extract_features, raw_weight_features

    if encoder_run is None:
        return raw_weight_features(dataset.spec, dataset.params)
    checkpoint = encoder_run.artifact(Artifact.Kind.CHECKPOINT)
    if checkpoint is None:
        raise ValueError(f"encoder run {encoder_run.pk} has no checkpoint artifact")
    encoder, _ = load_encoder(checkpoint)
    if encoder.spec != dataset.spec:
        raise ValueError(f"encoder run {encoder_run.pk} was trained on {encoder.spec.to_dict()}, "
                         f"the INR set holds {dataset.spec.to_dict()}")
    return extract_features(encoder, dataset, device=default_device())


def random_encoder_features(encoder_run: Run, dataset, train: torch.Tensor) -> torch.Tensor:
    """[M, D] features of an untrained encoder of the same architecture as `encoder_run`'s (seed 0), normalised on
    the training INRs as a trained one is (training.reproduce's random-encoder baseline)."""
    from training.encoder import build_encoder
    from training.probe import extract_features

    trained, _ = load_encoder(encoder_run.artifact(Artifact.Kind.CHECKPOINT))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        untrained = build_encoder(dataset.spec, trained.config)
    untrained.set_normalization({k: v[train] for k, v in dataset.params.items()}, dataset.labels[train])
    return extract_features(untrained, dataset, device=default_device())


def probe(run: Run, reporter: Reporter) -> dict:
    """Linear probe (logistic regression) on the train rows, evaluated on the test rows; with an encoder also the
    raw-weights baseline, for comparison. The head becomes a probe Artifact."""
    from training.probe import linear_probe, raw_weight_features

    dataset = run.inrset.load()
    train, test = dataset.is_train, ~dataset.is_train
    if not bool(train.any()) or not bool(test.any()):
        raise ValueError(f"INR set {run.inrset_id} needs INRs in both the train and the test split for a probe")
    encoder_run = encoder_of(run)
    reporter.progress(0.1)
    reporter.check()
    x = features(run, dataset, encoder_run)
    reporter.progress(0.5)
    reporter.check()
    y = dataset.labels
    result = linear_probe(x[train], y[train], x[test], y[test], dataset.class_names)
    out = {"accuracy": result.accuracy, "per_class_accuracy": result.per_class_accuracy,
           "confusion": result.confusion.tolist(), "class_names": list(result.class_names),
           "feature": "encoder" if encoder_run else "raw", "encoder_run": encoder_run.pk if encoder_run else None,
           "num_train": int(train.sum()), "num_test": int(test.sum()), "feature_dim": int(x.shape[1])}
    if encoder_run is not None:
        # The baselines beside it: the raw weights, and the same encoder untrained (what training added).
        reporter.progress(0.7)
        reporter.check()
        raw = raw_weight_features(dataset.spec, dataset.params)
        out["raw_weights_accuracy"] = linear_probe(raw[train], y[train], raw[test], y[test],
                                                   dataset.class_names).accuracy
        reporter.progress(0.8)
        reporter.check()
        random = random_encoder_features(encoder_run, dataset, train)
        out["random_encoder_accuracy"] = linear_probe(random[train], y[train], random[test], y[test],
                                                      dataset.class_names).accuracy
    store_artifact_bytes(run, Artifact.Kind.PROBE, "probe.safetensors", probe_bytes(result, out["feature"]),
                         {"feature": out["feature"], "accuracy": result.accuracy, "feature_dim": int(x.shape[1])})
    reporter.metrics(1, {"accuracy": result.accuracy})
    return json_safe(out)


# -- embedding maps ----------------------------------------------------------------------------------------------

def embedding(run: Run, reporter: Reporter) -> dict:
    """t-SNE maps of the encoder's features (with an encoder parent) and of the raw weights, over at most
    `max_points` INRs of the set: every image's first seed first, then further seeds, images drawn at random (with
    the config's seed) when there are more than fit."""
    from training.probe import raw_weight_features

    dataset = run.inrset.load()
    rows = map_rows(dataset, int(run.config.get("max_points", 5000)), int(run.config.get("seed", 0)))
    subset = dataset.subset(rows)
    encoder_run = encoder_of(run)
    reporter.progress(0.05)
    reporter.check()
    encoder_xy = encoder_features = None
    if encoder_run is not None:
        encoder_features = features(run, subset, encoder_run)  # [M, D], stored with the map for the model API
        encoder_xy = tsne(encoder_features, int(run.config.get("seed", 0)))
        reporter.progress(0.5)
        reporter.check()
    raw_xy = tsne(raw_weight_features(subset.spec, subset.params), int(run.config.get("seed", 0)))
    store_artifact_bytes(run, Artifact.Kind.EMBEDDING, "maps.safetensors",
                         maps_bytes(raw_xy=raw_xy, encoder_xy=encoder_xy, rows=rows, dataset=dataset,
                                    encoder_features=encoder_features),
                         {"points": int(rows.numel()), "encoder_run": encoder_run.pk if encoder_run else None})
    return {"points": int(rows.numel()), "encoder_run": encoder_run.pk if encoder_run else None,
            "maps": ["encoder", "raw"] if encoder_run else ["raw"]}


def map_rows(dataset, max_points: int, seed: int) -> torch.Tensor:
    """Sorted INR-set rows to put on a map: first seeds of all images before second seeds, random within a rank."""
    m = len(dataset)
    seeds = torch.unique(dataset.seed)  # sorted
    rank = torch.searchsorted(seeds, dataset.seed)  # [M] 0 for each image's first seed id, ...
    shuffle = torch.randperm(m, generator=torch.Generator().manual_seed(seed))
    position = torch.empty(m, dtype=torch.long)
    position[shuffle] = torch.arange(m)
    order = torch.argsort(rank * m + position)
    return order[:max_points].sort().values


def tsne(x: torch.Tensor, seed: int) -> torch.Tensor:
    """[M, D] features -> [M, 2] t-SNE coordinates (training.embed.tsne_map: standardised, seeded)."""
    from training.embed import tsne_map

    return torch.as_tensor(np.asarray(tsne_map(x, seed=seed).coordinates), dtype=torch.float32)
