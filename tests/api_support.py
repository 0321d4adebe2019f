"""Helpers shared by the API tests (tests/test_api_*.py, test_schema.py): clients and fitted INR sets.

A fitted INR set is made with the backbone's own code path (inr.fit on the stored images, the chunk file format,
inrsets.services.merge_chunks), in-process, so tests that only read an INR set need no Celery worker.
"""

from __future__ import annotations

from rest_framework.test import APIClient

import inr

TINY_SPEC = inr.FieldSpec.siren(hidden=8, layers=3)


def client_for(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


# (spec, seeds, steps, pixels digest) -> FitResult: fitting is deterministic, so tests share one fit per setting.
_FITS: dict = {}


def fitted_inrset(dataset, spec: inr.FieldSpec = TINY_SPEC, seeds: int = 2, steps: int = 100, lr: float = 5e-3):
    """A succeeded INRSet of `dataset` (every image, `seeds` seeds) with real fitted weights (~50 dB on 8x8)."""
    import hashlib

    from cinr_web.inrsets.models import INRSet
    from cinr_web.inrsets.services import merge_chunks, save_chunk_result
    from cinr_web.storage import save_bytes
    from inr.fit import fit

    inrset = INRSet.objects.create(dataset=dataset, spec=spec.to_dict(), seeds_per_image=seeds,
                                   fit_config={"steps": steps, "lr": lr, "anti_alias": False, "shared_init": True})
    images = dataset.load().images
    key = (spec, seeds, steps, lr, hashlib.sha256(images.numpy().tobytes()).hexdigest())
    if key not in _FITS:
        _FITS[key] = fit(spec, images, seeds=seeds, steps=steps, lr=lr, device="cpu")
    chunk = save_bytes(f"inrsets/{inrset.pk}/chunk-0.safetensors", save_chunk_result(_FITS[key]))
    merge_chunks(inrset, [chunk], {"steps": steps})
    inrset.refresh_from_db()
    return inrset
