"""The capacity check: with labels, the weights-only encoder memorises a small set of independently initialised
INRs. If it cannot (broken input scaling, normalisation, optimisation or readout), no pretext task will teach it the
class either (issue: 'features that know the class')."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import inr
from training.data import fit_inr_dataset
from training.encoder import EncoderConfig
from training.loop import OptimConfig
from training.sources import load_builtin
from training.supervised import SupervisedConfig, evaluate_classifier, train_supervised

SMALL = EncoderConfig(d_node=32, d_edge=8, d_attn=16, heads=2, layers=2, d_ff=64, feature_dim=32)


@pytest.mark.parametrize("kind, neuron_stats", [("relational", False), ("relational", True), ("gnn", True)],
                         ids=["default", "neuron_stats", "gnn"])
def test_it_memorises_40_independently_initialised_sirens(kind, neuron_stats):
    digits = load_builtin("digits")
    picked = torch.cat([torch.nonzero(digits.labels == c).reshape(-1)[:4] for c in range(10)]).sort().values
    dataset = fit_inr_dataset(digits.subset(picked, name="capacity40"), inr.FieldSpec.siren(hidden=16), 1,
                              steps=100, shared_init=False, device="cpu")
    dataset.is_train[:] = True  # every INR is a training INR: this measures fitting, not generalisation
    encoder = dataclasses.replace(SMALL, kind=kind, neuron_stats=neuron_stats)  # the cpu preset's encoder has them
    config = SupervisedConfig(encoder=encoder, augment=inr.AugmentPolicy.none(),
                              optim=OptimConfig(lr=1e-2, warmup_steps=10), batch_size=20, steps=150, seed=0)
    untrained = train_supervised(dataset, SupervisedConfig(**{**config.__dict__, "steps": 1}), device="cpu")
    assert evaluate_classifier(untrained.model, dataset, device="cpu") < 50.0  # far from memorised at the start
    trained = train_supervised(dataset, config, device="cpu")
    assert evaluate_classifier(trained.model, dataset, device="cpu") >= 99.0
