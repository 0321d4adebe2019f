"""Weight-space augmentations: exact geometric transforms (paper eq. 8), noise, dropout, random policy."""

import dataclasses
import math

import pytest
import torch

import inr

SPECS = [
    inr.FieldSpec.siren(out_dim=1, hidden=8, layers=3),
    inr.FieldSpec.siren(out_dim=3, hidden=8, layers=4),
    inr.FieldSpec.mfn(out_dim=1, hidden=8, filters=3),
    inr.FieldSpec.mfn(out_dim=3, hidden=8, filters=2),
]
B = 4


def rotation(angle: torch.Tensor) -> torch.Tensor:
    cos, sin = angle.cos(), angle.sin()
    return torch.stack([torch.stack([cos, -sin], -1), torch.stack([sin, cos], -1)], -2)  # [B, 2, 2]


def setup(spec):
    params = inr.init(spec, B, seed=3, grid_size=12, dtype=torch.float64)
    coords = inr.grid(12, 12, dtype=torch.float64)  # [P, 2]
    return params, coords, coords.expand(B, -1, -1)


def assert_same_field(a, b):
    assert a.shape == b.shape
    assert (a - b).abs().max().item() < 1e-6


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_rotates_exactly(spec):
    params, coords, batched = setup(spec)
    angle = torch.tensor([0.4, -1.3, math.pi, 2.2], dtype=torch.float64)
    got = inr.evaluate(spec, inr.rotate(spec, params, angle), coords)
    # g(x) = f(R^T x); with row vectors that is x @ R
    expected = inr.evaluate(spec, params, batched @ rotation(angle))
    assert_same_field(got, expected)
    assert (got - inr.evaluate(spec, params, coords)).abs().max() > 1e-2


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_translates_exactly(spec):
    params, coords, batched = setup(spec)
    shift = torch.tensor([[0.1, -0.2], [0.0, 0.5], [-0.3, 0.3], [0.25, 0.0]], dtype=torch.float64)
    got = inr.evaluate(spec, inr.translate(spec, params, shift), coords)
    assert_same_field(got, inr.evaluate(spec, params, batched - shift[:, None, :]))
    assert (got - inr.evaluate(spec, params, coords)).abs().max() > 1e-2


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_scales_exactly(spec):
    params, coords, batched = setup(spec)
    factor = torch.tensor([0.5, 1.3, 2.0, -0.8], dtype=torch.float64)
    got = inr.evaluate(spec, inr.scale(spec, params, factor), coords)
    assert_same_field(got, inr.evaluate(spec, params, batched / factor[:, None, None]))
    assert (got - inr.evaluate(spec, params, coords)).abs().max() > 1e-2


@pytest.mark.parametrize("spec", SPECS[:1] + SPECS[2:3], ids=str)
def test_it_accepts_one_value_for_the_whole_batch(spec):
    params, coords, batched = setup(spec)
    got = inr.evaluate(spec, inr.rotate(spec, params, 0.7), coords)
    expected = inr.evaluate(spec, params, batched @ rotation(torch.full((B,), 0.7, dtype=torch.float64)))
    assert_same_field(got, expected)
    got = inr.evaluate(spec, inr.translate(spec, params, (0.2, -0.1)), coords)
    shift = torch.tensor([0.2, -0.1], dtype=torch.float64)
    assert_same_field(got, inr.evaluate(spec, params, coords - shift))
    got = inr.evaluate(spec, inr.scale(spec, params, 1.5), coords)
    assert_same_field(got, inr.evaluate(spec, params, coords / 1.5))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_composes_back_to_the_identity(spec):
    params, _, _ = setup(spec)
    angle = torch.tensor([0.4, -1.3, 3.0, 2.2], dtype=torch.float64)
    back = inr.rotate(spec, inr.rotate(spec, params, angle), -angle)
    shift = torch.tensor([0.3, -0.7], dtype=torch.float64)
    back = inr.translate(spec, inr.translate(spec, back, shift), -shift)
    back = inr.scale(spec, inr.scale(spec, back, 1.7), 1 / 1.7)
    for name in params:
        torch.testing.assert_close(back[name], params[name], rtol=1e-12, atol=1e-12)
    # only the input layer changes
    moved = inr.translate(spec, inr.rotate(spec, params, angle), shift)
    touched = {n for pair in inr.augment.input_layers(spec) for n in pair}
    for name in params:
        assert torch.equal(moved[name], params[name]) == (name not in touched), name


def test_it_rejects_values_of_the_wrong_shape():
    spec = SPECS[0]
    params, _, _ = setup(spec)
    with pytest.raises(ValueError, match="shape"):
        inr.rotate(spec, params, torch.zeros(B + 1))
    with pytest.raises(ValueError, match="shape"):
        inr.translate(spec, params, torch.zeros(B, 3))
    with pytest.raises(ValueError, match="non-zero"):
        inr.scale(spec, params, 0.0)


def test_it_adds_noise_relative_to_each_tensors_std():
    spec = inr.FieldSpec.siren(out_dim=1, hidden=64, layers=3)
    params = inr.init(spec, 50, seed=0, dtype=torch.float64)
    params["layer1.weight"] = params["layer1.weight"] * torch.linspace(0.1, 10, 50, dtype=torch.float64)[:, None, None]
    noisy = inr.add_noise(spec, params, 0.1, torch.Generator().manual_seed(0))
    for name in ("layer1.weight", "layer0.weight", "layer1.bias"):
        diff = (noisy[name] - params[name]).reshape(50, -1)
        ratio = diff.std(dim=1) / params[name].reshape(50, -1).std(dim=1, correction=0)
        assert abs(ratio.mean().item() - 0.1) < 0.01, name
        assert abs(diff.mean().item()) < 0.05 * diff.std().item()
    # one std per INR; zero leaves that INR untouched
    std = torch.zeros(50, dtype=torch.float64)
    std[::2] = 0.1
    noisy = inr.add_noise(spec, params, std, torch.Generator().manual_seed(1))
    for name in params:
        assert torch.equal(noisy[name][1::2], params[name][1::2])
        assert not torch.equal(noisy[name][::2], params[name][::2])
    # reproducible from the generator
    a = inr.add_noise(spec, params, 0.1, torch.Generator().manual_seed(5))
    b = inr.add_noise(spec, params, 0.1, torch.Generator().manual_seed(5))
    assert all(torch.equal(a[n], b[n]) for n in params)


def test_it_drops_entries_with_probability_p():
    spec = inr.FieldSpec.mfn(out_dim=1, hidden=32, filters=3)
    params = inr.init(spec, 40, seed=0, dtype=torch.float64)
    dropped = inr.dropout(spec, params, 0.2, torch.Generator().manual_seed(0))
    zeros = total = 0
    for name in params:
        kept = dropped[name] != 0
        assert torch.equal(dropped[name][kept], params[name][kept])  # survivors unchanged, not rescaled
        zeros += int((~kept).sum())
        total += kept.numel()
    assert abs(zeros / total - 0.2) < 0.01
    p = torch.tensor([0.0, 0.5] * 20, dtype=torch.float64)
    dropped = inr.dropout(spec, params, p, torch.Generator().manual_seed(0))
    w = dropped["linear1.weight"]
    assert torch.equal(w[0::2], params["linear1.weight"][0::2])
    assert abs((w[1::2] == 0).double().mean().item() - 0.5) < 0.05
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        inr.dropout(spec, params, 1.5)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_changes_intensity_exactly(spec):
    params, coords, _ = setup(spec)
    gain = torch.tensor([0.5, 1.3, 2.0, 0.9], dtype=torch.float64)
    offset = torch.tensor([0.1, -0.2, 0.0, 0.3], dtype=torch.float64)
    got = inr.evaluate(spec, inr.intensity(spec, params, gain, offset), coords)
    # g(x) = gain * f(x) + offset, every channel alike
    assert_same_field(got, gain[:, None, None] * inr.evaluate(spec, params, coords) + offset[:, None, None])
    weight, bias = inr.output_layer(spec)
    untouched = [n for n in params if n not in (weight, bias)]
    assert all(torch.equal(inr.intensity(spec, params, gain, offset)[n], params[n]) for n in untouched)


@pytest.mark.parametrize("spec", SPECS[1:3], ids=str)
def test_it_draws_intensity_only_when_asked(spec):
    params, coords, _ = setup(spec)
    off = inr.sample_augmentation(inr.AugmentPolicy(), 64, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert torch.equal(off.gain, torch.ones(64, dtype=torch.float64)) and not off.offset.any()
    policy = inr.AugmentPolicy(rotation_prob=0, scale_prob=0, translation_prob=0, noise_prob=0, dropout_prob=0,
                               intensity_prob=0.5)
    draw = inr.sample_augmentation(policy, 64, torch.Generator().manual_seed(0), dtype=torch.float64)
    on = draw.gain != 1
    assert 0.25 < on.double().mean().item() < 0.75
    assert torch.equal(on, draw.offset != 0)
    assert draw.gain.max() <= policy.max_gain and draw.gain.min() >= 1 / policy.max_gain
    assert draw.offset.abs().max() <= policy.max_offset
    # the older augmentations draw the same values as without intensity
    assert torch.equal(draw.angle, inr.sample_augmentation(
        dataclasses.replace(policy, intensity_prob=0), 64, torch.Generator().manual_seed(0), dtype=torch.float64).angle)
    small = inr.sample_augmentation(policy, B, torch.Generator().manual_seed(5), dtype=torch.float64)
    out = inr.random_augment(spec, params, policy, torch.Generator().manual_seed(5))
    expected = small.gain[:, None, None] * inr.evaluate(spec, params, coords) + small.offset[:, None, None]
    assert_same_field(inr.evaluate(spec, out, coords), expected)


def test_it_validates_the_policy():
    with pytest.raises(ValueError, match="rotation_prob"):
        inr.AugmentPolicy(rotation_prob=1.5)
    with pytest.raises(ValueError, match="min_scale"):
        inr.AugmentPolicy(min_scale=2.0, max_scale=1.0)
    with pytest.raises(ValueError, match="max_gain"):
        inr.AugmentPolicy(max_gain=0.5)


@pytest.mark.parametrize("spec", SPECS[1:3], ids=str)
def test_it_draws_one_augmentation_per_inr(spec):
    params = inr.init(spec, 64, seed=0, dtype=torch.float64)
    policy = inr.AugmentPolicy()
    out = inr.random_augment(spec, params, policy, torch.Generator().manual_seed(0))
    again = inr.random_augment(spec, params, policy, torch.Generator().manual_seed(0))
    assert all(torch.equal(out[n], again[n]) for n in params)
    draw = inr.sample_augmentation(policy, 64, torch.Generator().manual_seed(0), dtype=torch.float64)
    for values in (draw.angle, draw.factor - 1, draw.shift[:, 0]):
        on = values != 0
        assert 0.25 < on.double().mean().item() < 0.75  # each applied with its own probability (0.5)
        assert len(set(values[on].tolist())) == int(on.sum())  # a different value per INR
    for values in (draw.noise_std, draw.dropout):
        assert 0.25 < (values != 0).double().mean().item() < 0.75
    assert not torch.equal(draw.angle != 0, draw.noise_std != 0)  # independent choices
    assert not draw.permute.any()  # permute_prob defaults to 0
    assert draw.angle.abs().max() <= policy.max_rotation
    assert draw.factor.min() >= policy.min_scale and draw.factor.max() <= policy.max_scale
    assert draw.shift.abs().max() <= policy.max_translation
    # a policy that does nothing returns the same weights
    same = inr.random_augment(spec, params, inr.AugmentPolicy.none(), torch.Generator().manual_seed(0))
    assert all(torch.equal(same[n], params[n]) for n in params)


@pytest.mark.parametrize("spec", SPECS[1:3], ids=str)
def test_it_applies_the_drawn_geometry_exactly(spec):
    params, coords, batched = setup(spec)
    policy = inr.AugmentPolicy(rotation_prob=0.7, scale_prob=0.7, translation_prob=0.7, noise_prob=0,
                               dropout_prob=0, permute_prob=0.5)
    out = inr.random_augment(spec, params, policy, torch.Generator().manual_seed(11))
    draw = inr.sample_augmentation(policy, B, torch.Generator().manual_seed(11), dtype=torch.float64)
    # g(x) = f(R^T (x - t) / s)
    x = ((batched - draw.shift[:, None, :]) / draw.factor[:, None, None]) @ rotation(draw.angle)
    assert_same_field(inr.evaluate(spec, out, coords), inr.evaluate(spec, params, x))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_changes_colours_exactly(spec):
    params, coords, _ = setup(spec)
    c = spec.out_dim
    gains = torch.exp(torch.randn(B, c, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 0.2)
    saturation = torch.linspace(0.0, 1.5, B, dtype=torch.float64)
    matrix = inr.colour_matrix(gains, saturation)
    got = inr.evaluate(spec, inr.colour(spec, params, matrix), coords)
    values = inr.evaluate(spec, params, coords)  # [B, P, C]
    # g(x) = M f(x), written out: per-channel gains, then a blend with the luminance
    balanced = values * gains[:, None, :]
    luma = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64) if c == 3 else torch.full((c,), 1.0 / c,
                                                                                            dtype=torch.float64)
    grey = (balanced * luma).sum(-1, keepdim=True)
    s = saturation[:, None, None]
    assert_same_field(got, s * balanced + (1 - s) * grey)
    weight, bias = inr.output_layer(spec)
    assert all(torch.equal(inr.colour(spec, params, matrix)[n], params[n]) for n in params if n not in (weight, bias))
    with pytest.raises(ValueError, match="colour matrix"):
        inr.colour(spec, params, torch.eye(c + 1))


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_draws_colour_only_when_asked(spec):
    params, coords, _ = setup(spec)
    c = spec.out_dim
    off = inr.sample_augmentation(inr.AugmentPolicy(), 64, torch.Generator().manual_seed(0), dtype=torch.float64,
                                  channels=c)
    assert torch.equal(off.colour, torch.eye(c, dtype=torch.float64).expand(64, -1, -1))
    policy = dataclasses.replace(inr.AugmentPolicy.none(), colour_prob=0.5)
    draw = inr.sample_augmentation(policy, 64, torch.Generator().manual_seed(0), dtype=torch.float64, channels=c)
    on = (draw.colour != torch.eye(c, dtype=torch.float64)).flatten(1).any(1)
    assert 0.25 < on.double().mean().item() < 0.75
    # the older augmentations draw the same values as without colour
    older = inr.sample_augmentation(dataclasses.replace(policy, colour_prob=0), 64, torch.Generator().manual_seed(0),
                                    dtype=torch.float64, channels=c)
    assert torch.equal(draw.gain, older.gain) and torch.equal(draw.angle, older.angle)
    small = inr.sample_augmentation(policy, B, torch.Generator().manual_seed(5), dtype=torch.float64, channels=c)
    out = inr.random_augment(spec, params, policy, torch.Generator().manual_seed(5))
    expected = torch.einsum("bij,bpj->bpi", small.colour, inr.evaluate(spec, params, coords))
    assert_same_field(inr.evaluate(spec, out, coords), expected)
    with pytest.raises(ValueError, match="max_channel_gain"):
        inr.AugmentPolicy(max_channel_gain=0.5)
    with pytest.raises(ValueError, match="max_saturation"):
        inr.AugmentPolicy(max_saturation=1.5)
