"""INR weight files: safetensors with the spec and metadata in `__metadata__`; never pickle.

File layout (standard safetensors): tensors named like the params (`layer0.weight`, ... each `[B, ...]`), plus
per-INR metadata tensors `meta.<key>` (`[B, ...]`, e.g. `meta.image_index`, `meta.seed`, `meta.label`). The
`__metadata__` strings hold `format` ("cinr.inr/1"), `spec` (FieldSpec JSON) and every other metadata value as JSON
under `meta.<key>`.

`load` reads untrusted input: it bounds the size before reading (file size, then the sizes the header declares),
parses and checks the header itself, hands the bytes to the safetensors library (which never unpickles), and checks
names, shapes, dtypes and values against the spec. Every problem raises `InvalidWeights` with a message that names it.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from typing import BinaryIO

import numpy as np
import safetensors.torch
import torch

from inr import safejson
from inr.fields import Params, check_params
from inr.spec import LIBRARY_LIMITS, FieldSpec, SpecLimits

FORMAT = "cinr.inr/1"
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
META_PREFIX = "meta."
HEADER_MAX_DEPTH = 3  # {name: {"shape": [...], ...}, "__metadata__": {key: string}}: nothing deeper is valid
MAX_DIMS = 8  # of one tensor: a shape is checked with arithmetic, which must stay cheap
MAX_MESSAGE = 500  # characters of an InvalidWeights message: a file of millions of names gets a count, not a list

# safetensors dtype name -> (torch dtype, bytes per element)
PARAM_DTYPES = {"F16": (torch.float16, 2), "BF16": (torch.bfloat16, 2), "F32": (torch.float32, 4),
                "F64": (torch.float64, 8)}
META_DTYPES = {"I32": (torch.int32, 4), "I64": (torch.int64, 8), "BOOL": (torch.bool, 1), **PARAM_DTYPES}
_META_TORCH_DTYPES = {dtype for dtype, _ in META_DTYPES.values()}


class InvalidWeights(ValueError):
    """A weight file or weight arrays that cannot be used: the message says what is wrong (at most MAX_MESSAGE
    characters; the messages below already name things by `_short` and count long lists)."""

    def __init__(self, message: str) -> None:
        super().__init__(message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE - 3] + "...")


def _short(value: object, limit: int = 60) -> str:
    """A string as it is, anything else as its repr, cut to `limit` characters: names, dtypes and error texts in
    messages come from untrusted headers."""
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _names(names: list[str], limit: int = 5) -> str:
    """"['a', 'b']", or "1000000 names, first ['a', 'b', 'c', 'd', 'e']": a count, not a list of millions."""
    shown = [_short(n, 40) for n in names[:limit]]
    return repr(shown) if len(names) <= limit else f"{len(names)} names, first {shown!r}"


def _wrong_names(expected: set[str], found: set[str]) -> InvalidWeights:
    missing, extra = sorted(expected - found), sorted(found - expected)
    return InvalidWeights(f"wrong tensors for the spec: missing {_names(missing)}, unexpected {_names(extra)}")


FileLike = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


# -- save ----------------------------------------------------------------------------------------------------------

def _meta_tensor(key: str, value: torch.Tensor | np.ndarray, batch: int) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
    if t.dtype not in _META_TORCH_DTYPES:
        raise ValueError(f"metadata {key!r}: dtype {t.dtype} is not supported (use int32/int64/bool/float)")
    if t.dim() == 0 or t.shape[0] != batch:
        raise ValueError(f"metadata {key!r}: a tensor must hold one row per INR ({batch}), got shape {list(t.shape)}")
    return t.detach().cpu().contiguous().clone()


def to_bytes(spec: FieldSpec, params: Params, metadata: dict | None = None) -> bytes:
    """The safetensors bytes `save` writes."""
    batch = check_params(spec, params)
    if batch < 1:
        raise ValueError("nothing to save: the batch is empty")
    tensors: dict[str, torch.Tensor] = {}
    for name in spec.param_shapes():
        t = params[name]
        if t.dtype not in {dtype for dtype, _ in PARAM_DTYPES.values()}:
            raise ValueError(f"{name}: dtype {t.dtype} is not a floating-point type")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name}: contains NaN or infinite values")
        tensors[name] = t.detach().cpu().contiguous().clone()  # clone: safetensors refuses shared storage
    header = {"format": FORMAT, "spec": spec.to_json()}
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or not key:
            raise ValueError(f"metadata keys must be non-empty strings, got {key!r}")
        if isinstance(value, torch.Tensor | np.ndarray):
            tensors[META_PREFIX + key] = _meta_tensor(key, value, batch)
            continue
        try:
            header[META_PREFIX + key] = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as e:
            raise ValueError(f"metadata {key!r} is not JSON-serialisable: {e}") from e
    return safetensors.torch.save(tensors, metadata=header)


def save(file: str | os.PathLike | BinaryIO, spec: FieldSpec, params: Params, metadata: dict | None = None) -> None:
    """Writes INRs (one or a whole dataset) to `file` (a path, written atomically, or a binary file object).

    metadata: JSON-serialisable values, stored as JSON strings; tensors / numpy arrays with one row per INR (e.g.
    image_index, seed, label as int64 [B]) are stored as tensors `meta.<key>` and come back as torch tensors."""
    data = to_bytes(spec, params, metadata)
    if not isinstance(file, str | os.PathLike):
        file.write(data)
        return
    path = os.fspath(file)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# -- load ----------------------------------------------------------------------------------------------------------

def _oversize(what: str, size: int, max_bytes: int) -> InvalidWeights:
    return InvalidWeights(f"weight file too large: {what} {size} bytes, over the limit of {max_bytes} bytes")


def _looks_like_pickle(head: bytes) -> bool:
    return head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05")


def _parse_header(raw: bytes) -> tuple[dict, dict[str, str], int]:
    """Checks the JSON header; returns (tensor entries, __metadata__, total bytes of tensor data)."""
    try:
        header = safejson.loads(raw.decode("utf-8"), HEADER_MAX_DEPTH, "the header")
    except safejson.TooDeep as e:
        raise InvalidWeights(f"bad safetensors header: {e}") from None
    except (UnicodeDecodeError, ValueError) as e:  # ValueError: bad JSON, or an integer of over 4,300 digits
        raise InvalidWeights(f"bad safetensors header: not valid JSON ({_short(str(e), 200)})") from None
    if not isinstance(header, dict):
        raise InvalidWeights("bad safetensors header: not a JSON object")
    meta = header.pop("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise InvalidWeights("bad safetensors header: __metadata__ must map strings to strings")
    spans = []
    for name, entry in header.items():
        if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= set(entry):
            raise InvalidWeights(f"bad safetensors header: entry {_short(name)!r} lacks dtype, shape or data_offsets")
        dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
        if dtype not in META_DTYPES:
            raise InvalidWeights(f"wrong dtype: {_short(name)} is {_short(dtype)}; weights must be F16, BF16, F32 "
                                 "or F64 (metadata tensors also I32, I64, BOOL)")
        if (not isinstance(shape, list) or len(shape) > MAX_DIMS
                or not all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**48 for d in shape)):
            raise InvalidWeights(f"bad safetensors header: shape of {_short(name)!r} is not a list of at most "
                                 f"{MAX_DIMS} sizes")
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) and o >= 0 for o in offsets)
                or offsets[0] > offsets[1]):
            raise InvalidWeights(f"bad safetensors header: data_offsets of {_short(name)!r} are invalid")
        if offsets[1] - offsets[0] != math.prod(shape) * META_DTYPES[dtype][1]:
            raise InvalidWeights(f"bad safetensors header: {_short(name)!r} has {offsets[1] - offsets[0]} bytes of "
                                 f"data for shape {shape} of {dtype}")
        spans.append((offsets[0], offsets[1], name))
    end = 0
    for start, stop, name in sorted(spans):
        if start != end:
            raise InvalidWeights(f"bad safetensors header: data of {_short(name)!r} does not follow the previous "
                                 "tensor")
        end = stop
    return header, meta, end


def _read_exactly(f: BinaryIO, n: int, what: str) -> bytes:
    data = f.read(n)
    if data is None or len(data) < n:
        got = 0 if data is None else len(data)
        raise InvalidWeights(f"truncated weight file: expected {n} bytes of {what}, got {got}")
    return data


def _read_file(f: BinaryIO, max_bytes: int) -> tuple[bytes, dict, dict[str, str]]:
    """Reads one safetensors file from `f`, checking sizes before each read."""
    head = f.read(8) or b""
    if head[:2] == b"PK":
        raise InvalidWeights("not a safetensors file: it is a zip archive (torch.save / pickle format); "
                             "only safetensors weight files are accepted, pickles are never loaded")
    if len(head) < 8:
        if _looks_like_pickle(head):
            raise InvalidWeights("not a safetensors file: it is a Python pickle; pickles are never loaded")
        raise InvalidWeights(f"truncated weight file: {len(head)} bytes, too short for a safetensors header")
    header_len = int.from_bytes(head, "little")
    # A safetensors header is a JSON object, so its first byte is "{". Checking it (rather than only the first two
    # bytes) keeps valid files whose header length happens to begin with a pickle's protocol bytes. It is checked
    # before the declared length, so random bytes are "not a safetensors file" rather than "too large".
    first = f.read(1) or b""
    if first != b"{":
        if _looks_like_pickle(head):
            raise InvalidWeights("not a safetensors file: it is a Python pickle; pickles are never loaded")
        if not first:
            raise InvalidWeights("truncated weight file: no header after the 8-byte length")
        raise InvalidWeights("not a safetensors file: no JSON header after the 8-byte length")
    if 8 + header_len > max_bytes:
        raise _oversize("header declares a header of", header_len, max_bytes)
    if header_len < 2:
        raise InvalidWeights("bad safetensors header: empty header")
    raw_header = first + _read_exactly(f, header_len - 1, "header")
    entries, meta, data_len = _parse_header(raw_header)
    if 8 + header_len + data_len > max_bytes:
        raise _oversize("header declares a file of", 8 + header_len + data_len, max_bytes)
    data = _read_exactly(f, data_len, "tensor data")
    if f.read(1):
        raise InvalidWeights("bad weight file: unexpected bytes after the tensor data")
    return head + raw_header + data, entries, meta


def _open_and_read(file: FileLike, max_bytes: int) -> tuple[bytes, dict, dict[str, str]]:
    if isinstance(file, bytes | bytearray | memoryview):
        if len(file) > max_bytes:
            raise _oversize("size", len(file), max_bytes)
        return _read_file(io.BytesIO(bytes(file)), max_bytes)
    if isinstance(file, str | os.PathLike):
        size = os.path.getsize(file)
        if size > max_bytes:
            raise _oversize("size", size, max_bytes)
        with open(file, "rb") as f:
            return _read_file(f, max_bytes)
    if hasattr(file, "read"):
        return _read_file(file, max_bytes)
    raise TypeError(f"expected a path, bytes or a binary file object, got {type(file).__name__}")


def _load_spec(meta: dict[str, str], limits: SpecLimits) -> FieldSpec:
    if "format" in meta and meta["format"] != FORMAT:
        raise InvalidWeights(f"unsupported weight file format {_short(meta['format'])}; expected {FORMAT!r}")
    if "spec" not in meta:
        raise InvalidWeights("missing spec: the file's __metadata__ has no 'spec' entry (not a CINR weight file?)")
    try:
        spec_dict = safejson.loads(meta["spec"], what="the spec")
    except ValueError as e:
        raise InvalidWeights(f"bad spec: not valid JSON ({_short(str(e), 200)})") from None
    if not isinstance(spec_dict, dict):
        raise InvalidWeights("bad spec: not a JSON object")
    return spec_from_dict(spec_dict, limits)


def spec_from_dict(spec_dict: dict, limits: SpecLimits = LIBRARY_LIMITS) -> FieldSpec:
    """FieldSpec.from_dict, then its sizes against `limits`, before anything is allocated; InvalidWeights."""
    if spec_dict.get("arch") not in ("siren", "mfn"):
        raise InvalidWeights(f"unknown architecture {_short(spec_dict.get('arch'))!r} in spec; expected 'siren' "
                             "or 'mfn'")
    try:
        spec = FieldSpec.from_dict(spec_dict)
        spec.check_limits(limits)
    except (TypeError, ValueError) as e:
        raise InvalidWeights(f"bad spec: {_short(str(e), 200)}") from None
    return spec


def load(file: FileLike, max_bytes: int = DEFAULT_MAX_BYTES,
         limits: SpecLimits = LIBRARY_LIMITS) -> tuple[FieldSpec, Params, dict]:
    """Reads a weight file (path, bytes or binary file object) -> (spec, params, metadata).

    params keep the stored float dtype, on the CPU; metadata holds the JSON values and the per-INR tensors.
    Raises InvalidWeights for anything malformed: truncated, bad header (JSON nested deeper than a safetensors header
    is), oversize (> max_bytes), pickle, missing or unknown spec, a spec over `limits` (checked before its parameter
    names are listed), wrong names / shapes / dtype, NaN or infinite weights."""
    data, entries, meta = _open_and_read(file, max_bytes)
    spec = _load_spec(meta, limits)
    shapes = spec.param_shapes()
    names = {n for n in entries if not n.startswith(META_PREFIX)}
    if names != set(shapes):
        raise _wrong_names(set(shapes), names)
    first = next(iter(shapes))
    if not entries[first]["shape"]:
        raise InvalidWeights(f"wrong shapes: {first} has shape [], the spec needs [B, "
                             f"{', '.join(map(str, shapes[first]))}]")
    batch_size = entries[first]["shape"][0]
    if batch_size < 1:
        raise InvalidWeights("wrong shapes: the weights hold no INR (empty batch dimension)")
    for name, shape in shapes.items():
        entry = entries[name]
        if entry["dtype"] not in PARAM_DTYPES:
            raise InvalidWeights(f"wrong dtype: {name} is {entry['dtype']}; weights must be F16, BF16, F32 or F64")
        if entry["shape"] != [batch_size, *shape]:
            raise InvalidWeights(f"wrong shapes: {name} has shape {entry['shape']}, the spec needs "
                                 f"{[batch_size, *shape]}")
    for name, entry in entries.items():
        if name.startswith(META_PREFIX) and (not entry["shape"] or entry["shape"][0] != batch_size):
            raise InvalidWeights(f"wrong shapes: metadata tensor {_short(name)} has shape {entry['shape']}, "
                                 f"expected one row per INR ({batch_size})")
    try:
        tensors = safetensors.torch.load(data)
    except Exception as e:  # the library's SafetensorError is not exported under a stable name
        raise InvalidWeights(f"bad safetensors file: {_short(str(e), 200)}") from None
    params, metadata = params_and_metadata(shapes, tensors, meta)
    return spec, params, metadata


def params_and_metadata(names: Iterable[str], tensors: dict[str, torch.Tensor],
                        header_meta: dict[str, str]) -> tuple[Params, dict]:
    """The params named `names` from a file's tensors, checked finite, and its metadata: the JSON entries of the
    header's `__metadata__` and the per-INR tensors, both under META_PREFIX (inr.load and inr.rows.load_rows)."""
    params = {name: tensors[name] for name in names}
    for name, t in params.items():
        if not bool(torch.isfinite(t).all()):
            raise InvalidWeights(f"NaN or infinite values in {name}")
    metadata: dict = {}
    for key, value in header_meta.items():
        if key.startswith(META_PREFIX):
            try:
                metadata[key[len(META_PREFIX):]] = safejson.loads(value, what=f"metadata {_short(key)}")
            except ValueError as e:
                raise InvalidWeights(f"bad metadata {_short(key)!r}: {_short(str(e), 200)}") from None
    for name, t in tensors.items():
        if name.startswith(META_PREFIX):
            metadata[name[len(META_PREFIX):]] = t
    return params, metadata


# -- JSON arrays (REST API) ----------------------------------------------------------------------------------------

def params_from_arrays(spec: FieldSpec | dict, arrays: dict, max_inrs: int = 1024,
                       limits: SpecLimits = LIBRARY_LIMITS) -> Params:
    """Params (float32, CPU) from JSON-style nested lists: `{name: array}` with each array shaped like
    `spec.param_shapes()[name]` (one INR) or with a leading batch dimension (several; the same for every name).
    `spec` may be a FieldSpec or its dict (checked against `limits`). Raises InvalidWeights naming the problem."""
    if isinstance(spec, dict):
        spec = spec_from_dict(spec, limits)
    if not isinstance(arrays, dict):
        raise InvalidWeights("weights must be an object mapping parameter names to arrays")
    shapes = spec.param_shapes()
    if set(arrays) != set(shapes):
        raise _wrong_names(set(shapes), set(arrays))
    params: Params = {}
    batched: bool | None = None
    for name, shape in shapes.items():
        try:
            t = torch.tensor(arrays[name], dtype=torch.float64)
        except (TypeError, ValueError, RuntimeError, OverflowError) as e:
            raise InvalidWeights(f"{name}: not a rectangular array of numbers ({_short(str(e), 200)})") from None
        is_batched = tuple(t.shape[1:]) == shape and t.dim() == len(shape) + 1
        if tuple(t.shape) != shape and not is_batched:
            raise InvalidWeights(f"wrong shapes: {name} has shape {list(t.shape)}, the spec needs {list(shape)} "
                                 f"(or [B, {', '.join(map(str, shape))}])")
        if batched is None:
            batched = is_batched
        elif batched != is_batched:
            raise InvalidWeights(f"wrong shapes: {name} mixes batched and unbatched arrays")
        if not bool(torch.isfinite(t).all()):
            raise InvalidWeights(f"NaN or infinite values in {name}")
        params[name] = (t if is_batched else t.unsqueeze(0)).float()
    try:
        batch = check_params(spec, params)
    except ValueError as e:
        raise InvalidWeights(f"wrong shapes: {e}") from None
    if not 1 <= batch <= max_inrs:
        raise InvalidWeights(f"expected between 1 and {max_inrs} INRs, got {batch}")
    return params
