"""Checkpoints: identical features after a round trip, the config reloads, and a resumed run equals an
uninterrupted one."""

import pytest
import torch

import inr
from training.checkpoint import InvalidCheckpoint, load_checkpoint, load_encoder, read_config, save_checkpoint
from training.data import INRDataset
from training.encoder import EncoderConfig
from training.loop import Cancelled
from training.probe import extract_features
from training.simclr import SimCLRConfig, pretrain

SPEC = inr.FieldSpec.siren(1, hidden=8)
TINY = EncoderConfig(d_node=16, d_edge=8, d_attn=8, heads=2, layers=1, d_ff=16, feature_dim=8)


def _dataset(images=12, seeds=2):
    params = inr.init(SPEC, images * seeds, seed=0)
    image_index = torch.arange(images).repeat_interleave(seeds)
    return INRDataset(spec=SPEC, params=params, labels=image_index % 3, image_index=image_index,
                      seed=torch.arange(seeds).repeat(images), is_train=image_index < 9,
                      psnr=torch.full((images * seeds,), 30.0), class_names=["a", "b", "c"])


def _config(steps=6):
    return SimCLRConfig(encoder=TINY, batch_size=4, steps=steps, checkpoint_every=3, projection_hidden=16,
                        projection_dim=8)


def test_it_round_trips_the_encoder_and_its_config(tmp_path):
    data = _dataset()
    result = pretrain(data, _config(), device="cpu", checkpoint_dir=tmp_path)
    assert result.checkpoint == str(tmp_path / "last.safetensors")
    before = extract_features(result.encoder, data)
    encoder = load_encoder(result.checkpoint)
    torch.testing.assert_close(extract_features(encoder, data), before, rtol=0, atol=0)
    config = read_config(result.checkpoint)
    assert config["kind"] == "simclr" and inr.FieldSpec.from_dict(config["spec"]) == SPEC
    reloaded = SimCLRConfig.from_dict({k: v for k, v in config.items() if k not in ("kind", "spec")})
    assert reloaded == _config()
    ckpt = load_checkpoint(result.checkpoint)
    assert ckpt.extra["step"] == 6 and ckpt.optimizer_state is not None


def test_it_resumes_where_a_cancelled_run_stopped(tmp_path):
    data = _dataset()
    whole = pretrain(data, _config(), device="cpu")

    with pytest.raises(Cancelled) as stopped:
        pretrain(data, _config(), device="cpu", checkpoint_dir=tmp_path, on_step=lambda step, m: step < 3)
    assert stopped.value.step == 3
    assert load_checkpoint(tmp_path / "last.safetensors").extra["step"] == 3
    resumed = pretrain(data, _config(), device="cpu", checkpoint_dir=tmp_path, resume=True)
    assert resumed.steps == 3  # only the remaining steps ran
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in whole.history[3:]], abs=1e-6)
    for name, value in whole.model.state_dict().items():
        torch.testing.assert_close(resumed.model.state_dict()[name], value, rtol=1e-5, atol=1e-6)


def test_it_refuses_files_that_are_not_checkpoints(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(InvalidCheckpoint):
        load_checkpoint(bad)
    with pytest.raises(InvalidCheckpoint, match="no such"):
        load_checkpoint(tmp_path / "missing.safetensors")
    weights = tmp_path / "weights.safetensors"
    inr.save(weights, SPEC, inr.init(SPEC, 1))
    with pytest.raises(InvalidCheckpoint, match="not a CINR checkpoint"):
        load_checkpoint(weights)


def test_it_writes_atomically_without_leftovers(tmp_path):
    model = torch.nn.Linear(2, 2)
    save_checkpoint(tmp_path / "a.safetensors", model, {"x": 1})
    save_checkpoint(tmp_path / "a.safetensors", model, {"x": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]
    assert read_config(tmp_path / "a.safetensors") == {"x": 2}
