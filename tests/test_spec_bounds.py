"""inr bounds every size a weight file or a JSON spec claims before any allocation: spec sizes (layers, hidden width,
filters, output channels, parameters), JSON nesting of the header, the spec and the metadata; its errors are short."""

from __future__ import annotations

import io
import json
import math
import time

import pytest

import inr
from inr import safejson
from inr.io import HEADER_MAX_DEPTH, MAX_MESSAGE, spec_from_dict


def raw_file(header: dict | str, data: bytes = b"") -> bytes:
    """A safetensors file from its header as given (dict or JSON text): nothing checks it on the way."""
    text = header if isinstance(header, str) else json.dumps(header)
    raw = text.encode()
    return len(raw).to_bytes(8, "little") + raw + data


def spec_file(spec: dict) -> bytes:
    return raw_file({"__metadata__": {"format": "cinr.inr/1", "spec": json.dumps(spec)}})


def test_it_counts_parameters_without_listing_them():
    for spec in [inr.FieldSpec.siren(), inr.FieldSpec.siren(3, 64, 5), inr.FieldSpec.siren(1, 8, 2),
                 inr.FieldSpec.mfn(), inr.FieldSpec.mfn(3, 32, 1), inr.FieldSpec.mfn(2, 7, 5)]:
        assert spec.num_params == sum(math.prod(s) for s in spec.param_shapes().values()), spec


@pytest.mark.parametrize("field, arch", [("layers", "siren"), ("hidden", "siren"), ("out_dim", "mfn"),
                                         ("filters", "mfn")])
def test_it_refuses_a_spec_just_over_the_library_limits(field, arch):
    limit = getattr(inr.LIBRARY_LIMITS, field)
    at_limit = {"arch": arch, field: limit} if field in ("layers", "filters") else {"arch": arch, field: 1}
    inr.FieldSpec.from_dict(at_limit)  # the limit itself is allowed
    with pytest.raises(ValueError, match=f"{field}={limit + 1} is over the limit of {limit}"):
        inr.FieldSpec.from_dict({"arch": arch, field: limit + 1})


def test_it_refuses_too_many_parameters_and_wrong_types():
    with pytest.raises(ValueError, match="parameters per INR is over the limit"):
        inr.FieldSpec.siren(hidden=8192, layers=10)  # each size allowed, 600M parameters not
    for bad in [{"hidden": 32.5}, {"hidden": True}, {"layers": "3"}, {"omega0": float("inf")}]:
        with pytest.raises(ValueError, match="must be"):
            inr.FieldSpec.from_dict({"arch": "siren", **bad})
    import numpy as np
    assert inr.FieldSpec.siren(hidden=np.int64(8)) == inr.FieldSpec.siren(hidden=8)


def test_it_checks_a_service_s_tighter_limits():
    limits = inr.SpecLimits(out_dim=3, hidden=64, layers=4, filters=4, params=8_000)
    spec_from_dict({"arch": "siren", "hidden": 64, "layers": 3}, limits)
    with pytest.raises(inr.InvalidWeights, match="hidden=65 is over the limit of 64"):
        spec_from_dict({"arch": "siren", "hidden": 65}, limits)
    with pytest.raises(inr.InvalidWeights, match="out_dim=4 is over the limit of 3"):
        spec_from_dict({"arch": "mfn", "out_dim": 4}, limits)
    with pytest.raises(inr.InvalidWeights, match="parameters per INR is over the limit of 8000"):
        spec_from_dict({"arch": "siren", "hidden": 64, "layers": 4}, limits)
    with pytest.raises(inr.InvalidWeights, match="layers=5 is over the limit of 4"):
        inr.load(spec_file({"arch": "siren", "layers": 5}), limits=limits)
    with pytest.raises(inr.InvalidWeights, match="layers=5"):
        inr.params_from_arrays({"arch": "siren", "layers": 5}, {}, limits=limits)


def test_it_refuses_a_tiny_file_claiming_millions_of_layers_at_once():
    data = spec_file({"arch": "siren", "layers": 5_000_000})
    assert len(data) < 300
    started = time.perf_counter()
    with pytest.raises(inr.InvalidWeights, match="layers=5000000 is over the limit") as info:
        inr.load(data)
    assert time.perf_counter() - started < 0.5
    assert len(str(info.value)) < 200


def test_it_counts_wrong_tensor_names_instead_of_listing_them():
    spec = inr.FieldSpec.siren(hidden=4)
    header = {"__metadata__": {"spec": spec.to_json()}}
    for i in range(10_000):
        header[f"junk{i:05d}"] = {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
    with pytest.raises(inr.InvalidWeights) as info:
        inr.load(raw_file(header))
    message = str(info.value)
    assert "missing 6 names" in message and "unexpected 10000 names" in message and "junk00000" in message
    assert "junk09999" not in message and len(message) <= MAX_MESSAGE


def test_it_cuts_long_names_and_caps_every_message():
    long_name = "x" * 100_000
    with pytest.raises(inr.InvalidWeights) as info:
        inr.load(raw_file({long_name: {"dtype": "F32"}}))
    assert "lacks dtype" in str(info.value) and len(str(info.value)) < 200
    assert len(str(inr.InvalidWeights("y" * 10_000))) == MAX_MESSAGE


def test_it_bounds_json_nesting_before_decoding():
    assert safejson.nesting_depth('{"a": [[1, "]]]"], {"b": "[[[["}]}') == 3
    assert safejson.nesting_depth(r'["\"[[[", [[2]]]') == 3
    assert safejson.nesting_depth(b"[" * 200_000) == 200_000  # counted without recursion
    assert safejson.loads("[[1]]", max_depth=2) == [[1]]
    with pytest.raises(safejson.TooDeep, match="nested 3 levels deep; the limit is 2"):
        safejson.loads("[[[1]]]", max_depth=2)


def test_it_refuses_a_header_nested_just_deeper_than_a_safetensors_header():
    spec = inr.FieldSpec.siren(hidden=4)
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, 1))
    inr.load(buffer.getvalue())  # a real header is exactly HEADER_MAX_DEPTH deep
    nested = "[" * HEADER_MAX_DEPTH + "]" * HEADER_MAX_DEPTH
    with pytest.raises(inr.InvalidWeights, match=f"nested {HEADER_MAX_DEPTH + 1} levels deep"):
        inr.load(raw_file('{"a": ' + nested + "}"))
    with pytest.raises(inr.InvalidWeights, match="nested 100000 levels deep"):  # RecursionError before the bound
        inr.load(raw_file('{"a": ' + "[" * 99_999 + "]" * 99_999 + "}"))


def test_it_refuses_a_spec_or_metadata_nested_too_deep():
    deep = "[" * (safejson.DEFAULT_MAX_DEPTH + 1) + "]" * (safejson.DEFAULT_MAX_DEPTH + 1)
    with pytest.raises(inr.InvalidWeights, match="bad spec: .*nested"):
        inr.load(raw_file({"__metadata__": {"spec": deep}}))
    spec = inr.FieldSpec.siren(hidden=4)
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, 1), metadata={"note": [[1]]})
    data = buffer.getvalue()
    header_len = int.from_bytes(data[:8], "little")
    header = json.loads(data[8:8 + header_len])
    header["__metadata__"]["meta.note"] = deep
    tensors = data[8 + header_len:]
    with pytest.raises(inr.InvalidWeights, match="bad metadata 'meta.note': .*nested"):
        inr.load(raw_file(header, tensors))


def test_it_bounds_the_dimensions_of_a_declared_shape():
    shape = [2**40] * 100_000  # math.prod of this would take minutes
    started = time.perf_counter()
    with pytest.raises(inr.InvalidWeights, match="not a list of at most 8 sizes"):
        inr.load(raw_file({"t": {"dtype": "F32", "shape": shape, "data_offsets": [0, 4]}}))
    assert time.perf_counter() - started < 2
