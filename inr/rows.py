"""Some INRs of a large weight file without reading the rest: a page of a 100,000-INR set.

`inr.load` reads and checks a whole file, which is right for an upload and wasteful for a web page that shows one INR
or a hundred of a set of hundreds of megabytes. `load_rows(path, start, stop)` checks the header as `load` does
(format, spec, parameter names, shapes and dtypes, one row per INR in every metadata tensor), then reads only the rows
[start, stop) of each tensor through safetensors' slices of the memory-mapped file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from safetensors import SafetensorError, safe_open

from inr.fields import Params
from inr.io import META_PREFIX, PARAM_DTYPES, InvalidWeights, _load_spec, params_and_metadata
from inr.spec import LIBRARY_LIMITS, FieldSpec, SpecLimits


@dataclass(frozen=True)
class Rows:
    """INRs [start, start + len) of a weight file that holds `count` INRs.

    params: name -> [rows, ...] as stored; metadata: the file's JSON values, and its per-INR tensors (`meta.<key>`)
    cut to the same rows."""

    spec: FieldSpec
    count: int
    start: int
    params: Params
    metadata: dict


def load_rows(path: str | os.PathLike, start: int, stop: int, limits: SpecLimits = LIBRARY_LIMITS) -> Rows:
    """The INRs [start, stop) of the weight file at `path`, clipped to the INRs it holds (an empty page past its end).

    Raises InvalidWeights for a malformed header, as `inr.load` would, and for NaN or infinite weights in the rows
    read (the other rows are not read, so not checked)."""
    if start < 0 or stop < start:
        raise ValueError(f"rows [{start}, {stop}): expected 0 <= start <= stop")
    try:
        with safe_open(os.fspath(path), framework="pt") as f:
            header = f.metadata() or {}
            spec = _load_spec(header, limits)
            slices = {name: f.get_slice(name) for name in f.keys()}
            count = _check_shapes(spec, slices)
            start, stop = min(start, count), min(stop, count)
            tensors = {name: piece[start:stop] for name, piece in slices.items()}
    except SafetensorError as e:
        raise InvalidWeights(f"bad safetensors file: {str(e)[:200]}") from None
    params, metadata = params_and_metadata(spec.param_shapes(), tensors, header)
    return Rows(spec=spec, count=count, start=start, params=params, metadata=metadata)


def _check_shapes(spec: FieldSpec, slices: dict) -> int:
    """The number of INRs, after the checks `inr.load` makes of names, shapes and dtypes."""
    shapes = spec.param_shapes()
    names = {n for n in slices if not n.startswith(META_PREFIX)}
    if names != set(shapes):
        raise InvalidWeights(f"wrong parameter names: the spec needs {sorted(shapes)}, the file has "
                             f"{sorted(names)[:10]}")
    count = slices[next(iter(shapes))].get_shape()[:1]
    if not count or count[0] < 1:
        raise InvalidWeights("wrong shapes: the weights hold no INR (empty batch dimension)")
    count = count[0]
    for name, shape in shapes.items():
        if slices[name].get_dtype() not in PARAM_DTYPES:
            raise InvalidWeights(f"wrong dtype: {name} is {slices[name].get_dtype()}; weights must be F16, BF16, "
                                 "F32 or F64")
        if list(slices[name].get_shape()) != [count, *shape]:
            raise InvalidWeights(f"wrong shapes: {name} has shape {slices[name].get_shape()}, the spec needs "
                                 f"{[count, *shape]}")
    for name, piece in slices.items():
        if name.startswith(META_PREFIX) and piece.get_shape()[:1] != [count]:
            raise InvalidWeights(f"wrong shapes: metadata tensor {name[:60]} has shape {piece.get_shape()}, "
                                 f"expected one row per INR ({count})")
    return count
