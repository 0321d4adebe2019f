"""The supervised baseline: metrics per step, cancel, test accuracy, and a checkpoint the web layer can read."""

import pytest
import torch

import inr
from training.checkpoint import load_checkpoint, load_encoder
from training.data import INRDataset
from training.encoder import EncoderConfig
from training.loop import Cancelled
from training.supervised import SupervisedConfig, evaluate_classifier, train_supervised

SPEC = inr.FieldSpec.mfn(1, hidden=4, filters=2)
TINY = EncoderConfig(d_node=16, d_edge=8, d_attn=8, heads=2, layers=1, d_ff=16, feature_dim=8)


def _dataset(images=20, seeds=2):
    params = inr.init(SPEC, images * seeds, seed=0, grid_size=8)
    image_index = torch.arange(images).repeat_interleave(seeds)
    # Labels follow a property of the weights (the sign of the output bias), so the task is learnable.
    labels = (params["linear1.bias"][:, 0] > 0).long()
    return INRDataset(spec=SPEC, params=params, labels=labels, image_index=image_index,
                      seed=torch.arange(seeds).repeat(images), is_train=image_index < 15,
                      psnr=torch.full((images * seeds,), 30.0), class_names=["neg", "pos"])


def test_it_trains_reports_and_evaluates(tmp_path):
    data = _dataset()
    seen = []
    config = SupervisedConfig(encoder=TINY, batch_size=16, steps=40, augment=inr.AugmentPolicy(dropout_prob=0.0))
    result = train_supervised(data, config, device="cpu", checkpoint_dir=tmp_path,
                              on_step=lambda step, m: seen.append(m))
    assert len(seen) == 40 and {"loss", "lr", "accuracy"} <= set(seen[0])
    assert 0.0 <= result.metrics["test_accuracy"] <= 100.0
    assert result.metrics["test_accuracy"] == evaluate_classifier(result.model, data.test())
    assert sum(m["loss"] for m in seen[-10:]) < sum(m["loss"] for m in seen[:10])
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.config["kind"] == "supervised" and ckpt.state_dict["head.weight"].shape == (2, TINY.feature_dim)
    encoder = load_encoder(result.checkpoint)
    sample = {k: v[:3] for k, v in data.params.items()}
    with torch.no_grad():
        torch.testing.assert_close(encoder.encode_params(sample), result.encoder.encode_params(sample))


def test_it_cancels():
    with pytest.raises(Cancelled):
        train_supervised(_dataset(), SupervisedConfig(encoder=TINY, batch_size=8, steps=20), device="cpu",
                         on_step=lambda step, m: step < 1)
