"""Sign, phase and scale symmetries: `inr.canonicalize` keeps the field, is idempotent, and maps every INR of a
symmetry orbit to the same weights; an encoder with `canonicalize=True` is invariant to those symmetries."""

import math

import pytest
import torch

import inr
from training.encoder import EncoderConfig, RelationalTransformer

SPECS = [inr.FieldSpec.siren(out_dim=1, hidden=6, layers=3), inr.FieldSpec.siren(out_dim=3, hidden=5, layers=4),
         inr.FieldSpec.mfn(out_dim=1, hidden=6, filters=3), inr.FieldSpec.mfn(out_dim=3, hidden=5, filters=2)]


def _fitted_like(spec, batch=4):
    """Weights away from the initialisation: phases spread over several periods, as after a fit."""
    gen = torch.Generator().manual_seed(0)
    params = inr.init(spec, batch, seed=3, grid_size=10, dtype=torch.float64)
    out = {}
    for name, t in params.items():
        t = t * (0.5 + torch.rand(t.shape, generator=gen, dtype=t.dtype))
        if name.endswith(".bias") or name.endswith(".phi"):
            t = t + 2.0 * torch.randn(t.shape, generator=gen, dtype=t.dtype)
        out[name] = t
    return out


def _symmetry_moves(spec, params, gen):
    """A random element of the sign/half-period/period (and MFN scale) group applied to every hidden neuron."""
    out = {k: v.clone() for k, v in params.items()}
    hidden_layers = spec.layers - 1 if spec.arch == "siren" else spec.filters
    for i in range(hidden_layers):
        if spec.arch == "siren":
            w, b, nxt, to_phase = f"layer{i}.weight", f"layer{i}.bias", f"layer{i + 1}.weight", spec.omega0
        else:
            w, b, nxt, to_phase = f"filter{i}.omega", f"filter{i}.phi", f"linear{i}.weight", 1.0
        shape = out[b].shape
        sign = torch.randint(0, 2, shape, generator=gen).double() * 2 - 1  # negate incoming weights and phase
        half = torch.randint(0, 2, shape, generator=gen).double()  # shift the phase by pi
        periods = torch.randint(-3, 4, shape, generator=gen).double()  # and by whole periods
        out[w] = out[w] * sign[:, :, None]
        out[b] = (sign * out[b] * to_phase + math.pi * half + 2 * math.pi * periods) / to_phase
        out[nxt] = out[nxt] * (sign * (1 - 2 * half))[:, None, :]
        if spec.arch == "mfn" and i > 0:
            s = torch.exp(torch.randn(shape, generator=gen, dtype=torch.float64))
            out[f"linear{i - 1}.weight"] = out[f"linear{i - 1}.weight"] * s[:, :, None]
            out[f"linear{i - 1}.bias"] = out[f"linear{i - 1}.bias"] * s
            out[nxt] = out[nxt] / s[:, None, :]
    return out


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_keeps_the_field_and_is_idempotent(spec):
    params = _fitted_like(spec)
    canonical = inr.canonicalize(spec, params)
    coords = inr.grid(9, 9, dtype=torch.float64)
    assert (inr.evaluate(spec, canonical, coords) - inr.evaluate(spec, params, coords)).abs().max() < 1e-9
    assert any(not torch.allclose(canonical[k], params[k]) for k in params)  # it did move the weights
    again = inr.canonicalize(spec, canonical)
    for name in params:
        torch.testing.assert_close(again[name], canonical[name], rtol=0, atol=1e-12)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_maps_a_whole_symmetry_orbit_to_one_point(spec):
    params = _fitted_like(spec)
    moved = _symmetry_moves(spec, params, torch.Generator().manual_seed(1))
    coords = inr.grid(9, 9, dtype=torch.float64)
    assert (inr.evaluate(spec, moved, coords) - inr.evaluate(spec, params, coords)).abs().max() < 1e-9
    assert any((moved[k] - params[k]).abs().max() > 0.1 for k in params)
    a, b = inr.canonicalize(spec, params), inr.canonicalize(spec, moved)
    for name in params:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=1e-9)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_puts_every_phase_in_a_quarter_period(spec):
    canonical = inr.canonicalize(spec, _fitted_like(spec))
    if spec.arch == "siren":
        phases = [spec.omega0 * canonical[f"layer{i}.bias"] for i in range(spec.layers - 1)]
    else:
        phases = [canonical[f"filter{i}.phi"] for i in range(spec.filters)]
        rows = [torch.cat([canonical[f"linear{i}.weight"], canonical[f"linear{i}.bias"][..., None]], -1)
                for i in range(spec.filters - 1)]
        assert all(torch.allclose(r.norm(dim=-1), torch.ones((), dtype=r.dtype)) for r in rows)
    assert all(bool(((p >= 0) & (p <= math.pi / 2 + 1e-12)).all()) for p in phases)


@pytest.mark.parametrize("spec", [SPECS[0], SPECS[2]], ids=str)
def test_it_makes_the_encoder_invariant_to_sign_and_phase(spec):
    torch.manual_seed(0)
    cfg = dict(d_node=16, d_edge=8, d_attn=8, heads=2, layers=2, d_ff=16, feature_dim=12)
    params = _fitted_like(spec)
    moved = _symmetry_moves(spec, params, torch.Generator().manual_seed(2))
    plain = RelationalTransformer(spec, EncoderConfig(**cfg, canonicalize=False)).double().eval()
    canon = RelationalTransformer(spec, EncoderConfig(**cfg, canonicalize=True)).double().eval()
    canon.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert (plain.encode_params(params) - plain.encode_params(moved)).abs().max() > 1e-3
        torch.testing.assert_close(canon.encode_params(params), canon.encode_params(moved), rtol=0, atol=1e-6)


def test_it_is_on_by_default_and_off_for_encoders_saved_before_it_existed(tmp_path):
    from training.checkpoint import load_encoder, save_checkpoint

    assert EncoderConfig().canonicalize and EncoderConfig.from_dict({"layers": 1}).canonicalize
    spec = SPECS[0]
    cfg = dict(d_node=16, d_edge=8, d_attn=8, heads=2, layers=1, d_ff=16, feature_dim=12)
    model = RelationalTransformer(spec, EncoderConfig(**cfg, canonicalize=False))
    old = EncoderConfig(**cfg).to_dict()
    del old["canonicalize"]  # the config of a checkpoint written before the field existed
    save_checkpoint(tmp_path / "old.safetensors", torch.nn.ModuleDict({"encoder": model}),
                    {"spec": spec.to_dict(), "encoder": old})
    assert not load_encoder(tmp_path / "old.safetensors").config.canonicalize
