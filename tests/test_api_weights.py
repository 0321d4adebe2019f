"""Reading INR weights sent to the model API (cinr_web.api.weights): every bad input is a BadWeights naming it."""

import io
import json
import struct

import pytest
import torch

import inr
from cinr_web.api import weights

SPEC = inr.FieldSpec.siren(hidden=8, layers=3)


def weight_bytes(spec=SPEC, batch=1, seed=0, poison=None) -> bytes:
    """A weight file as inr.save writes it; `poison` names a tensor whose first value is overwritten with NaN
    in the file's bytes (inr.save itself refuses to write NaN)."""
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, batch, seed=seed))
    data = bytearray(buffer.getvalue())
    if poison is not None:
        header_len = struct.unpack("<Q", data[:8])[0]
        start = json.loads(data[8:8 + header_len])[poison]["data_offsets"][0] + 8 + header_len
        data[start:start + 4] = struct.pack("<f", float("nan"))
    return bytes(data)


def test_it_reads_one_file_and_a_batch_file():
    one = weights.read_weight_file("a.safetensors", weight_bytes())
    assert one.spec == SPEC and one.size == 1 and one.sources == ["a.safetensors"]
    many = weights.read_weight_file("b.safetensors", weight_bytes(batch=3))
    assert many.size == 3 and many.sources[2] == "b.safetensors[2]"
    joined = weights.concatenate([one.spec, many.spec], [one.params, many.params], one.sources + many.sources)
    assert joined.params["layer0.weight"].shape == (4, 8, 2)
    assert torch.equal(joined.params["layer0.weight"][1:], many.params["layer0.weight"])


def test_it_refuses_malformed_oversize_and_nan_files():
    with pytest.raises(weights.BadWeights, match="x.safetensors"):
        weights.read_weight_file("x.safetensors", b"this is not a safetensors file")
    data = weight_bytes()
    with pytest.raises(weights.BadWeights, match="over the limit"):
        weights.read_weight_file("big.safetensors", data, max_bytes=len(data) - 1)
    with pytest.raises(weights.BadWeights, match="NaN"):
        weights.read_weight_file("nan.safetensors", weight_bytes(poison="layer1.bias"))
    with pytest.raises(weights.BadWeights, match="truncated|bad|header"):
        weights.read_weight_file("cut.safetensors", data[: len(data) // 2])


def test_it_names_the_architecture_mismatch():
    batch = weights.read_weight_file("m.safetensors", weight_bytes(inr.FieldSpec.siren(hidden=16)))
    with pytest.raises(weights.BadWeights, match=r"architecture mismatch.*hidden=16 \(expected 8\)"):
        weights.require_spec(batch, SPEC)
    mfn = weights.read_weight_file("mfn.safetensors", weight_bytes(inr.FieldSpec.mfn(hidden=4)))
    with pytest.raises(weights.BadWeights, match="differs from the first"):
        weights.concatenate([SPEC, mfn.spec], [inr.init(SPEC, 1), mfn.params], ["a", "mfn.safetensors"])


def test_it_reads_json_arrays_with_and_without_batch_dim():
    params = inr.init(SPEC, 2, seed=3)
    one = {name: t[0].tolist() for name, t in params.items()}
    two = {name: t.tolist() for name, t in params.items()}
    batch = weights.read_weight_json([{"params": one}, {"spec": SPEC.to_dict(), "params": two}], SPEC)
    assert batch.sources == ["inrs[0]", "inrs[1][0]", "inrs[1][1]"]
    assert torch.allclose(batch.params["layer2.weight"][1:], params["layer2.weight"])


@pytest.mark.parametrize("item, message", [
    ({"params": "not an object"}, "expected an object"),
    ({"params": {"layer0.weight": [[0.0, 0.0]]}}, "missing"),
    ({"spec": {"arch": "resnet"}, "params": {}}, "architecture"),
    ({"spec": [1, 2], "params": {}}, "expected an object"),
])
def test_it_refuses_bad_json(item, message):
    with pytest.raises(weights.BadWeights, match=message):
        weights.read_weight_json([item], SPEC)


def test_it_refuses_ragged_and_wrongly_shaped_json():
    good = {name: t[0].tolist() for name, t in inr.init(SPEC, 1).items()}
    ragged = dict(good, **{"layer0.weight": [[0.0, 1.0], [2.0]]})
    with pytest.raises(weights.BadWeights, match="layer0.weight"):
        weights.read_weight_json([{"params": ragged}], SPEC)
    wrong = dict(good, **{"layer0.bias": [0.0] * 7})
    with pytest.raises(weights.BadWeights, match="layer0.bias"):
        weights.read_weight_json([{"params": wrong}], SPEC)
