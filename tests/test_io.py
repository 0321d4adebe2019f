"""Weight files: exact round trips, and InvalidWeights with a clear message for every kind of bad input."""

import io
import json
import pickle

import numpy as np
import pytest
import safetensors.torch
import torch

import inr
from inr.io import to_bytes

SIREN = inr.FieldSpec.siren(out_dim=1, hidden=8, layers=3)
MFN = inr.FieldSpec.mfn(out_dim=3, hidden=6, filters=3, input_scale=3.46)


def raw_file(tensors: dict, metadata: dict | None) -> bytes:
    return safetensors.torch.save({k: v.contiguous() for k, v in tensors.items()}, metadata=metadata)


def spec_meta(spec) -> dict:
    return {"format": "cinr.inr/1", "spec": spec.to_json()}


@pytest.mark.parametrize("spec", [SIREN, MFN], ids=str)
def test_it_round_trips_one_inr_exactly(spec, tmp_path):
    params = inr.init(spec, 1, seed=7)
    inr.save(tmp_path / "one.safetensors", spec, params)
    spec2, params2, meta = inr.load(tmp_path / "one.safetensors")
    assert spec2 == spec and meta == {}
    assert set(params2) == set(params)
    for name in params:
        assert params2[name].dtype == torch.float32 and torch.equal(params2[name], params[name])
    assert not list(tmp_path.glob(".tmp-*"))  # the atomic write left no temp file


def test_it_round_trips_a_dataset_with_metadata(tmp_path):
    params = inr.init(MFN, 6, seed=0, dtype=torch.float64)
    metadata = {
        "image_index": torch.tensor([0, 0, 1, 1, 2, 2]),
        "seed": np.array([0, 1, 0, 1, 0, 1], dtype=np.int64),
        "label": torch.tensor([3, 3, 9, 9, 1, 1], dtype=torch.int64),
        "is_train": torch.tensor([True, True, False, False, True, True]),
        "psnr": torch.tensor([30.5, 31.0, 29.0, float("inf"), 33.0, 32.5]),
        "class_names": ["zero", "one", "two"],
        "fit": {"steps": 500, "lr": 0.01, "anti_alias": True},
    }
    path = tmp_path / "set.safetensors"
    inr.save(str(path), MFN, params, metadata)
    spec, loaded, meta = inr.load(path)
    assert spec == MFN
    assert all(loaded[n].dtype == torch.float64 and torch.equal(loaded[n], params[n]) for n in params)
    assert set(meta) == set(metadata)
    for key in ("image_index", "label", "is_train", "psnr"):
        assert meta[key].dtype == metadata[key].dtype and torch.equal(meta[key], metadata[key]), key
    assert meta["seed"].tolist() == [0, 1, 0, 1, 0, 1]
    assert meta["class_names"] == ["zero", "one", "two"] and meta["fit"] == metadata["fit"]
    # the same through bytes and a file object
    data = path.read_bytes()
    assert torch.equal(inr.load(data)[1]["linear0.weight"], params["linear0.weight"])
    assert inr.load(io.BytesIO(data))[2]["class_names"] == ["zero", "one", "two"]
    out = io.BytesIO()
    inr.save(out, MFN, params, metadata)
    _, again, meta_again = inr.load(out.getvalue())
    assert torch.equal(again["filter2.omega"], params["filter2.omega"])
    assert torch.equal(meta_again["seed"], meta["seed"])


def test_it_refuses_to_save_what_it_would_not_load():
    params = inr.init(SIREN, 2)
    with pytest.raises(ValueError, match="one row per INR"):
        to_bytes(SIREN, params, {"label": torch.tensor([1, 2, 3])})
    with pytest.raises(ValueError, match="JSON"):
        to_bytes(SIREN, params, {"when": object()})
    params["layer1.bias"][0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        to_bytes(SIREN, params)


def test_it_rejects_a_truncated_file():
    data = to_bytes(SIREN, inr.init(SIREN, 3))
    with pytest.raises(inr.InvalidWeights, match="truncated.*tensor data"):
        inr.load(data[:-10])
    with pytest.raises(inr.InvalidWeights, match="truncated.*header"):
        inr.load(data[:40])
    with pytest.raises(inr.InvalidWeights, match="truncated.*too short"):
        inr.load(data[:5])
    with pytest.raises(inr.InvalidWeights, match="unexpected bytes"):
        inr.load(data + b"\0")


def test_it_rejects_a_bad_header():
    body = b'{"a": [1, 2'
    with pytest.raises(inr.InvalidWeights, match="bad safetensors header: not valid JSON"):
        inr.load(len(body).to_bytes(8, "little") + body)
    header = json.dumps({"layer0.weight": {"dtype": "F32", "shape": [1, 8, 2], "data_offsets": [0, 10]}}).encode()
    with pytest.raises(inr.InvalidWeights, match="bad safetensors header: 'layer0.weight' has 10 bytes"):
        inr.load(len(header).to_bytes(8, "little") + header + b"\0" * 10)


@pytest.mark.parametrize("spec", [SIREN, MFN], ids=str)
def test_it_rejects_wrong_shapes(spec):
    params = {k: v.clone() for k, v in inr.init(spec, 2).items()}
    name = next(iter(params))
    params[name] = params[name][:, :-1]
    with pytest.raises(inr.InvalidWeights, match=f"wrong shapes: {name} has shape"):
        inr.load(raw_file(params, spec_meta(spec)))
    params = inr.init(spec, 2)
    del params[name]
    with pytest.raises(inr.InvalidWeights, match=f"missing \\['{name}'\\]"):
        inr.load(raw_file(params, spec_meta(spec)))


def test_it_rejects_wrong_dtypes():
    params = inr.init(SIREN, 2)
    params["layer0.bias"] = params["layer0.bias"].to(torch.int32)
    with pytest.raises(inr.InvalidWeights, match="wrong dtype: layer0.bias is I32"):
        inr.load(raw_file(params, spec_meta(SIREN)))
    params["layer0.bias"] = torch.zeros(2, 8, dtype=torch.uint8)
    with pytest.raises(inr.InvalidWeights, match="wrong dtype: layer0.bias is U8"):
        inr.load(raw_file(params, spec_meta(SIREN)))


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_it_rejects_non_finite_weights(bad):
    params = inr.init(MFN, 2)
    params["filter1.phi"][1, 3] = bad
    with pytest.raises(inr.InvalidWeights, match="NaN or infinite values in filter1.phi"):
        inr.load(raw_file(params, spec_meta(MFN)))


def test_it_rejects_unknown_architectures_and_missing_specs():
    params = inr.init(SIREN, 1)
    spec = SIREN.to_dict() | {"arch": "nerf"}
    with pytest.raises(inr.InvalidWeights, match="unknown architecture 'nerf'"):
        inr.load(raw_file(params, {"spec": json.dumps(spec)}))
    with pytest.raises(inr.InvalidWeights, match="missing spec"):
        inr.load(raw_file(params, {"other": "x"}))
    with pytest.raises(inr.InvalidWeights, match="missing spec"):
        inr.load(raw_file(params, None))
    with pytest.raises(inr.InvalidWeights, match="bad spec"):
        inr.load(raw_file(params, {"spec": json.dumps(SIREN.to_dict() | {"hidden": -4})}))


def test_it_never_unpickles(tmp_path):
    class Boom:
        def __reduce__(self):
            return (pytest.fail, ("a pickle was executed",))

    with pytest.raises(inr.InvalidWeights, match="pickle"):
        inr.load(pickle.dumps({"layer0.weight": Boom()}))
    buffer = io.BytesIO()
    torch.save(inr.init(SIREN, 1), buffer)
    path = tmp_path / "weights.pt"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(inr.InvalidWeights, match="zip archive.*pickles are never loaded"):
        inr.load(path)


def test_it_bounds_the_size_before_reading(tmp_path):
    data = to_bytes(SIREN, inr.init(SIREN, 50))
    with pytest.raises(inr.InvalidWeights, match="too large: size"):
        inr.load(data, max_bytes=1000)
    path = tmp_path / "big.safetensors"
    path.write_bytes(data)
    with pytest.raises(inr.InvalidWeights, match="too large"):
        inr.load(path, max_bytes=len(data) - 1)
    assert inr.load(path, max_bytes=len(data))[1]["layer0.weight"].shape[0] == 50

    class Stream(io.RawIOBase):  # a non-seekable stream that counts what is read from it
        def __init__(self, payload):
            self.inner, self.read_bytes = io.BytesIO(payload), 0

        def readable(self):
            return True

        def read(self, n=-1):
            chunk = self.inner.read(n)
            self.read_bytes += len(chunk)
            return chunk

    stream = Stream(data)
    with pytest.raises(inr.InvalidWeights, match="header declares a file of"):
        inr.load(stream, max_bytes=1000)
    assert stream.read_bytes < 1000  # it stopped after the header, before the tensor data
    # a header that claims an absurd length is refused before anything else is read
    stream = Stream((10**12).to_bytes(8, "little") + b"{}")
    with pytest.raises(inr.InvalidWeights, match="too large"):
        inr.load(stream)
    assert stream.read_bytes == 9  # the length and the header's first byte


def test_it_calls_random_bytes_not_a_safetensors_file_before_judging_their_size():
    noise = torch.Generator().manual_seed(0)
    for _ in range(20):  # the first 8 bytes read as an absurd header length; the 9th is not "{"
        data = bytes(torch.randint(0, 256, (4096,), generator=noise, dtype=torch.uint8).tolist())
        if data[8:9] == b"{":
            continue
        with pytest.raises(inr.InvalidWeights, match="^not a safetensors file"):
            inr.load(data)


def test_it_builds_params_from_json_arrays():
    params = inr.init(MFN, 2, seed=3)
    arrays = {k: v.tolist() for k, v in params.items()}
    got = inr.params_from_arrays(MFN, arrays)
    assert all(torch.equal(got[n], params[n]) for n in params)
    one = inr.params_from_arrays(MFN.to_dict(), {k: v[0].tolist() for k, v in params.items()})
    assert all(one[n].shape == (1, *params[n].shape[1:]) and torch.equal(one[n][0], params[n][0]) for n in params)
    # via JSON, as the REST API receives them
    assert inr.params_from_arrays(MFN, json.loads(json.dumps(arrays)))["filter0.omega"].dtype == torch.float32


def test_it_rejects_bad_json_arrays():
    params = {k: v[0].tolist() for k, v in inr.init(SIREN, 1).items()}
    with pytest.raises(inr.InvalidWeights, match="missing \\['layer2.bias'\\]"):
        inr.params_from_arrays(SIREN, {k: v for k, v in params.items() if k != "layer2.bias"})
    with pytest.raises(inr.InvalidWeights, match="wrong shapes: layer0.weight has shape \\[8, 3\\]"):
        inr.params_from_arrays(SIREN, params | {"layer0.weight": [[0.0] * 3] * 8})
    with pytest.raises(inr.InvalidWeights, match="layer1.bias: not a rectangular array of numbers"):
        inr.params_from_arrays(SIREN, params | {"layer1.bias": ["a"] * 8})
    with pytest.raises(inr.InvalidWeights, match="layer1.bias: not a rectangular"):
        inr.params_from_arrays(SIREN, params | {"layer1.bias": [[1.0], [1.0, 2.0]]})
    with pytest.raises(inr.InvalidWeights, match="NaN or infinite values in layer1.bias"):
        inr.params_from_arrays(SIREN, params | {"layer1.bias": [float("nan")] * 8})
    with pytest.raises(inr.InvalidWeights, match="unknown architecture"):
        inr.params_from_arrays({"arch": "resnet"}, params)
    with pytest.raises(inr.InvalidWeights, match="mixes batched and unbatched"):
        inr.params_from_arrays(SIREN, params | {"layer2.bias": [[0.1]]})


def test_it_loads_files_whose_header_length_looks_like_a_pickle_opcode():
    # A header of 640, 896, 1152 or 1408 bytes starts with b"\x80\x02".."\x80\x05", a pickle's first two bytes.
    spec = inr.FieldSpec.siren()
    params = inr.init(spec, 1)
    for pad in range(0, 1200, 4):
        data = to_bytes(spec, params, {"note": "x" * pad})
        if data[:1] == b"\x80" and data[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
            break
    else:
        pytest.fail("no padding gave a pickle-like header length")
    loaded_spec, loaded, _ = inr.load(data)
    assert loaded_spec == spec
    assert torch.equal(loaded["layer0.weight"], params["layer0.weight"])
