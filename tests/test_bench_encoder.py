"""bench.encoder: its baselines compute exactly what the encoder computes, and the bench fails (no timing) when one
does not."""

from __future__ import annotations

import json

import pytest
import torch

import inr
from bench import encoder as encoder_bench
from training.encoder import EncoderConfig, RelationalTransformer
from training.threads import THREADS_ENV

TINY = EncoderConfig(d_node=16, d_edge=8, d_attn=8, heads=2, layers=2, d_ff=16, feature_dim=16)
ARGS = ["--batch", "3", "--repeats", "1", "--no-profile", "--config", json.dumps(TINY.to_dict()),
        "--gnn-config", json.dumps({"d_node": 16, "layers": 2, "d_ff": 16, "d_message": 8, "feature_dim": 16})]


@pytest.fixture
def one_thread(monkeypatch):
    """The bench sets torch's threads from the policy: one thread here, and the test process's count restored."""
    monkeypatch.setenv(THREADS_ENV, "1")
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_it_checks_that_the_edge_list_and_dense_baselines_give_the_encoders_features():
    for spec in (inr.FieldSpec.siren(hidden=8), inr.FieldSpec.mfn(hidden=4)):
        torch.manual_seed(0)
        model = RelationalTransformer(spec, TINY)
        params = inr.init(spec, 3, seed=1)
        model.set_normalization(params)
        with torch.no_grad():
            features = model.encode_params(params)
            for baseline in (encoder_bench.edge_list_forward, encoder_bench.dense_forward):
                assert encoder_bench.check_same_features(features, baseline(model, params), "x") <= 1e-5


def test_it_exits_non_zero_without_timing_when_a_baseline_drifts(monkeypatch, capsys, one_thread):
    real = encoder_bench.edge_list_forward

    def without_canonicalisation(model, params):  # the bug the bench used to time and call equal
        model.config.canonicalize = False
        try:
            return real(model, params)
        finally:
            model.config.canonicalize = True

    monkeypatch.setattr(encoder_bench, "edge_list_forward", without_canonicalisation)
    code = encoder_bench.main(["--arch", "siren", *ARGS])
    out, err = capsys.readouterr()
    assert code == 1
    assert "edge list differs from training.encoder" in err and "INRs/s" not in out


def test_it_times_the_encoder_against_both_baselines_when_they_agree(capsys, one_thread):
    code = encoder_bench.main(["--arch", "mfn", *ARGS])
    out = capsys.readouterr().out
    assert code == 0
    assert "edge list baseline" in out and "dense N x N baseline" in out and "1 torch threads" in out
    assert "training.gnn (2 layers)" in out
    assert "machine: " in out and "at the end" in out
