"""Reading INR weights sent to the model API: safetensors files (as `inr.save` writes them) or JSON arrays.

Every reader returns one `WeightBatch` (spec + params with a leading batch dim) or raises `BadWeights`, whose
message says what is wrong; the API answers it with HTTP 400. Nothing here touches the database or the disk.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass

import torch

import inr
from cinr_web.bounds import spec_limits
from inr.io import spec_from_dict

# Per request: how many INRs in all, and how many bytes per weight file. A default SIREN INR is ~5 KB.
MAX_INRS_PER_REQUEST = 1024
MAX_FILE_BYTES = 8 * 1024 * 1024
MAX_FILES_PER_REQUEST = 256
MAX_REQUEST_BYTES = 64 * 1024 * 1024  # the whole body, checked from Content-Length before anything is read


class BadWeights(ValueError):
    """Weights the API cannot use; the message is shown to the client."""


@dataclass
class WeightBatch:
    spec: inr.FieldSpec
    params: dict[str, torch.Tensor]  # name -> [B, *shape], CPU float32
    sources: list[str]  # one label per INR, e.g. "file.safetensors[3]"

    @property
    def size(self) -> int:
        return len(self.sources)


def declared_length(meta: dict) -> int:
    """The request's Content-Length (0 when absent or unreadable)."""
    try:
        return max(0, int(meta.get("CONTENT_LENGTH") or 0))
    except ValueError:
        return 0


def check_finite_and_shapes(spec: inr.FieldSpec, params: dict[str, torch.Tensor], where: str) -> int:
    """Checks names, shapes and finiteness; returns the batch size."""
    try:
        batch = inr.check_params(spec, params)
    except ValueError as err:
        raise BadWeights(f"{where}: {err}") from None
    for name, t in params.items():
        if not torch.isfinite(t).all():
            raise BadWeights(f"{where}: {name} contains NaN or infinite values")
    if batch < 1:
        raise BadWeights(f"{where}: contains no INR (batch size 0)")
    return batch


def read_weight_file(name: str, data: bytes, max_bytes: int = MAX_FILE_BYTES) -> WeightBatch:
    """One safetensors weight file (one INR or a batch of them) -> WeightBatch."""
    if len(data) > max_bytes:
        raise BadWeights(f"{name}: {len(data)} bytes is over the limit of {max_bytes} bytes per weight file")
    try:
        spec, params, _metadata = inr.load(io.BytesIO(data), max_bytes=max_bytes, limits=spec_limits())
    except inr.InvalidWeights as err:
        raise BadWeights(f"{name}: {err}") from None
    params = {k: v.detach().to(torch.float32).cpu() for k, v in params.items()}
    batch = check_finite_and_shapes(spec, params, name)
    sources = [name] if batch == 1 else [f"{name}[{i}]" for i in range(batch)]
    return WeightBatch(spec, params, sources)


def spec_from_json(value: object, where: str = "spec") -> inr.FieldSpec:
    """A JSON spec, its sizes checked against the settings' limits before anything is allocated."""
    if not isinstance(value, dict):
        raise BadWeights(f"{where}: expected an object such as {{\"arch\": \"siren\", \"hidden\": 32, ...}}")
    try:
        return spec_from_dict(value, spec_limits())
    except inr.InvalidWeights as err:
        raise BadWeights(f"{where}: not a valid architecture ({err})") from None


def read_weight_json(items: Iterable[dict], default_spec: inr.FieldSpec) -> WeightBatch:
    """JSON INRs: each item {"spec": {...} (optional, default: the encoder's), "params": {name: array}}."""
    specs: list[inr.FieldSpec] = []
    parts: list[dict[str, torch.Tensor]] = []
    sources: list[str] = []
    for i, item in enumerate(items):
        where = f"inrs[{i}]"
        if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
            raise BadWeights(f"{where}: expected an object with a \"params\" object (name -> array)")
        spec = spec_from_json(item["spec"], f"{where}.spec") if item.get("spec") is not None else default_spec
        try:
            params = inr.params_from_arrays(spec, item["params"], max_inrs=MAX_INRS_PER_REQUEST)
        except inr.InvalidWeights as err:
            raise BadWeights(f"{where}: {err}") from None
        batch = check_finite_and_shapes(spec, params, where)
        specs.append(spec)
        parts.append(params)
        sources.extend([where] if batch == 1 else [f"{where}[{b}]" for b in range(batch)])
        if len(sources) > MAX_INRS_PER_REQUEST:
            raise BadWeights(f"too many INRs in one request: the limit is {MAX_INRS_PER_REQUEST}")
    return concatenate(specs, parts, sources)


def concatenate(specs: list[inr.FieldSpec], parts: list[dict[str, torch.Tensor]], sources: list[str]) -> WeightBatch:
    """Joins batches that must share one architecture into one WeightBatch."""
    if not parts:
        raise BadWeights("no INR weights in the request")
    first = specs[0]
    for spec, where in zip(specs, sources, strict=False):
        if spec != first:
            raise BadWeights(f"{where}: architecture {spec.to_json()} differs from the first INR's {first.to_json()}; "
                             "send INRs of one architecture per request")
    if len(sources) > MAX_INRS_PER_REQUEST:
        raise BadWeights(f"too many INRs in one request ({len(sources)}): the limit is {MAX_INRS_PER_REQUEST}")
    params = {name: torch.cat([p[name] for p in parts]) for name in first.param_shapes()}
    return WeightBatch(first, params, sources)


def require_spec(batch: WeightBatch, expected: inr.FieldSpec) -> None:
    """Architecture mismatch -> BadWeights naming both architectures and the first difference."""
    if batch.spec == expected:
        return
    got, want = batch.spec.to_dict(), expected.to_dict()
    diffs = [f"{k}={got.get(k)!r} (expected {want.get(k)!r})" for k in sorted(set(got) | set(want))
             if not _same(got.get(k), want.get(k))]
    raise BadWeights(f"architecture mismatch: the encoder takes {expected.to_json()}; got {', '.join(diffs)}")


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b)
    return a == b
