"""INR-set services: start a (chunked) fit, merge the chunks atomically, load a set's INRs."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from django.conf import settings
from django.db import transaction

import inr
from cinr_web.datasets.models import ImageDataset
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.defaults import FIT as FIT_DEFAULTS
from cinr_web.runs.defaults import fit_defaults
from cinr_web.storage import kept_local_path, local_path, save_file
from inr import FieldSpec
from inr.fit import DEFAULT_FIT, FitResult
from inr.io import to_bytes
from training.data import INRDataset

MAX_SEEDS_PER_IMAGE = 64
MAX_FIT_STEPS = 100_000
HISTOGRAM_BINS = 20


def normalise_fit_config(spec: FieldSpec, fit_config: dict | None) -> dict:
    """steps / lr / anti_alias / shared_init with the architecture's defaults filled in; ValueError on bad values."""
    fit_config = dict(fit_config or {})
    unknown = set(fit_config) - {"steps", "lr", "anti_alias", "shared_init"}
    if unknown:
        raise ValueError(f"unknown fit settings {sorted(unknown)}; expected steps, lr, anti_alias, shared_init")
    defaults, service = DEFAULT_FIT[spec.arch], fit_defaults(spec.arch, spec.out_dim)
    steps = _first_given(fit_config.get("steps"), service["steps"], defaults.steps)
    lr = _first_given(fit_config.get("lr"), service["lr"], defaults.lr)
    steps, lr = int(steps), float(lr)
    if not 1 <= steps <= MAX_FIT_STEPS:
        raise ValueError(f"steps must lie in [1, {MAX_FIT_STEPS}], got {steps}")
    if not (math.isfinite(lr) and 0 < lr <= 1):
        raise ValueError(f"lr must lie in (0, 1], got {lr}")
    # left out (None): on for an MFN, as the preset fits them (band limit clamped to Nyquist), off for a SIREN
    anti_alias = fit_config.get("anti_alias")
    anti_alias = spec.arch == "mfn" if anti_alias is None else bool(anti_alias)
    if anti_alias and spec.arch != "mfn":
        raise ValueError("anti_alias applies to MFNs only")
    shared_init = bool(fit_config.get("shared_init", FIT_DEFAULTS["shared_init"]))
    return {"steps": steps, "lr": lr, "anti_alias": anti_alias, "shared_init": shared_init}


def _first_given(*values):
    return next(v for v in values if v is not None)


def chunk_bounds(num_images: int, chunk_images: int) -> list[tuple[int, int]]:
    """[start, stop) image ranges of the fit chunks."""
    chunk_images = max(1, int(chunk_images))
    return [(lo, min(num_images, lo + chunk_images)) for lo in range(0, num_images, chunk_images)]


def start_fit(dataset: ImageDataset, spec: FieldSpec | dict, fit_config: dict | None = None,
              seeds_per_image: int = 1, user=None, *, name: str = "", chunk_images: int | None = None,
              max_seconds: float | None = None) -> INRSet:
    """Creates an INR set and its fit Run (split into chunk tasks of `chunk_images` images, default
    CINR_FIT_CHUNK_IMAGES) and enqueues the chunks when the transaction commits. max_seconds: a wall-clock budget
    per chunk task. Raises ValueError on bad settings."""
    from cinr_web.runs.models import FitChunk, Run
    from cinr_web.runs.services import dispatch

    spec = spec if isinstance(spec, FieldSpec) else FieldSpec.from_dict(spec)
    if spec.out_dim != dataset.channels:
        raise ValueError(f"the spec has out_dim {spec.out_dim} but dataset {dataset.name!r} has {dataset.channels} "
                         "channel(s)")
    if not 1 <= int(seeds_per_image) <= MAX_SEEDS_PER_IMAGE:
        raise ValueError(f"seeds_per_image must lie in [1, {MAX_SEEDS_PER_IMAGE}], got {seeds_per_image}")
    if not dataset.arrays:
        raise ValueError(f"dataset {dataset.name!r} has no stored images")
    fit_config = normalise_fit_config(spec, fit_config)
    extra = {}
    if max_seconds is not None:
        if not (isinstance(max_seconds, int | float) and math.isfinite(max_seconds) and max_seconds > 0):
            raise ValueError(f"max_seconds must be a positive number, got {max_seconds!r}")
        extra["max_seconds"] = float(max_seconds)
    chunk_images = int(chunk_images or settings.CINR_FIT_CHUNK_IMAGES)
    bounds = chunk_bounds(dataset.num_images, chunk_images)
    with transaction.atomic():
        inrset = INRSet.objects.create(dataset=dataset, name=name, spec=spec.to_dict(), fit_config=fit_config,
                                       seeds_per_image=int(seeds_per_image),
                                       created_by=user if user is not None and user.is_authenticated else None)
        run = Run.objects.create(kind=Run.Kind.FIT, inrset=inrset, created_by=inrset.created_by,
                                 config={"spec": spec.to_dict(), **fit_config, "seeds_per_image": int(seeds_per_image),
                                         "chunk_images": chunk_images, **extra})
        FitChunk.objects.bulk_create([
            FitChunk(run=run, index=i, start=lo, stop=hi, total=(hi - lo) * int(seeds_per_image))
            for i, (lo, hi) in enumerate(bounds)])
        dispatch(run)
    return inrset


def save_chunk_result(result: FitResult) -> bytes:
    """One chunk's fitted INRs as weight-file bytes (params + per-INR image_index / seed / psnr)."""
    return to_bytes(result.spec, result.params, metadata={
        "image_index": result.image_index, "seed": result.seed, "psnr": result.psnr})


def load_chunk_result(name: str) -> SimpleNamespace:
    """A stored chunk as the FitResult fields INRDataset.from_fit reads."""
    with local_path(name, ".safetensors") as path:
        spec, params, meta = inr.load(path, max_bytes=8 << 30)
    return SimpleNamespace(spec=spec, params=params, image_index=meta["image_index"], seed=meta["seed"],
                           psnr=meta["psnr"])


def psnr_histogram(psnr: torch.Tensor, bins: int = HISTOGRAM_BINS) -> dict:
    values = psnr.detach().to(torch.float64).numpy()
    counts, edges = np.histogram(values, bins=bins)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def merge_chunks(inrset: INRSet, chunk_files: list[str], meta: dict) -> INRDataset:
    """Builds the set's INRDataset from its chunk files (in any order: rows are sorted by image, seed), writes it as
    ONE safetensors file, and points the INRSet at it with its PSNR statistics. Call inside the transaction that
    marks the fit finished: the set switches to the new file only if that commits."""
    image_set = inrset.dataset.load()
    results = [load_chunk_result(name) for name in chunk_files]
    dataset = INRDataset.from_fit(image_set, results, meta)
    expected = inrset.dataset.num_images * inrset.seeds_per_image
    if len(dataset) != expected or dataset.image_index.unique().numel() != inrset.dataset.num_images:
        raise ValueError(f"merge of {len(chunk_files)} chunks gave {len(dataset)} INRs; expected {expected}")
    with tempfile.TemporaryDirectory(prefix="cinr-merge-") as tmp:
        path = Path(tmp) / "weights.safetensors"
        dataset.save(path)
        stored = save_file(f"inrsets/{inrset.pk}/weights.safetensors", path)
    old = inrset.weights.name if inrset.weights else ""
    inrset.weights.name = stored
    inrset.num_inrs = len(dataset)
    inrset.psnr_mean = float(dataset.psnr.mean())
    inrset.psnr_min = float(dataset.psnr.min())
    inrset.psnr_max = float(dataset.psnr.max())
    inrset.psnr_histogram = psnr_histogram(dataset.psnr)
    inrset.status = "succeeded"
    inrset.save(update_fields=["weights", "num_inrs", "psnr_mean", "psnr_min", "psnr_max", "psnr_histogram",
                               "status"])
    if old and old != stored:
        transaction.on_commit(lambda: _delete(old))
    return dataset


def _delete(name: str) -> None:
    from cinr_web.storage import delete_quietly

    delete_quietly([name])


def load_inr_dataset(inrset: INRSet) -> INRDataset:
    """The set's INRs (raises ValueError while the fit has not produced weights)."""
    if not inrset.weights:
        raise ValueError(f"INR set {inrset.pk} has no weights yet (status {inrset.status})")
    with local_path(inrset.weights.name, ".safetensors") as path:
        return INRDataset.load(path)


def load_inr_rows(inrset: INRSet, start: int, stop: int) -> tuple[INRDataset, int]:
    """(the set's INRs [start, stop), how many INRs it holds), reading only those rows of its weight file: a page of a
    100,000-INR set costs its own bytes, not the whole file's (raises ValueError while there are no weights)."""
    if not inrset.weights:
        raise ValueError(f"INR set {inrset.pk} has no weights yet (status {inrset.status})")
    return INRDataset.load_rows(kept_local_path(inrset.weights.name, ".safetensors"), start, stop)
