"""Feature extraction without autograd runs large batches in chunks: it must give the features of the whole batch."""

import pytest
import torch

import inr
from training.encoder import EncoderConfig, build_encoder

SMALL = dict(d_node=16, d_edge=8, d_attn=8, heads=2, layers=2, d_ff=16, feature_dim=12)


@pytest.mark.parametrize("kind", ["relational", "gnn"])
@pytest.mark.parametrize("probe_points", [0, 3])
@pytest.mark.parametrize("spec", [inr.FieldSpec.siren(1, hidden=8), inr.FieldSpec.mfn(3, hidden=6)],
                         ids=lambda s: s.arch)
def test_it_gives_the_same_features_in_chunks_without_autograd(spec, probe_points, kind, monkeypatch):
    torch.manual_seed(0)
    model = build_encoder(spec, EncoderConfig(**SMALL, kind=kind, probe_points=probe_points)).double().eval()
    params = inr.init(spec, 11, seed=3, dtype=torch.float64)
    model.set_normalization(params)
    whole = model.encode_params(params)  # autograd on: one pass over the whole batch
    assert whole.requires_grad
    # 3 INRs per pass: chunks of 3, 3, 3, 2
    monkeypatch.setattr(model, "inference_edges", 3 * model.num_edges)
    calls = []
    hook = model.register_forward_hook(lambda module, args, out: calls.append(out.shape[0]))
    with torch.inference_mode():
        chunked = model.encode_params(params)
    hook.remove()
    assert calls == [3, 3, 3, 2]
    torch.testing.assert_close(chunked, whole.detach(), rtol=0, atol=1e-10)
