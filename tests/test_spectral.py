"""inr.spectrum and inr.out_of_band_energy on signals whose spectra are known."""

import math

import pytest
import torch

import inr
from inr.spectral import band_mask


def test_it_centres_the_spectrum_and_finds_a_tone():
    h, w = 32, 32
    rows = torch.arange(h, dtype=torch.float64)[:, None].expand(h, w)
    tone = 0.5 + 0.4 * torch.cos(2 * math.pi * 5 * rows / h)  # 5 cycles down the image, constant across
    spec = inr.spectrum(tone[None, None])
    assert spec.shape == (1, h, w) and spec.dtype == torch.float32
    centre = spec[0, :, w // 2]
    assert int(centre.argmax()) == h // 2  # the mean (DC) is the strongest
    assert centre[h // 2 + 5] > centre[h // 2 + 9] + 2 and torch.isclose(centre[h // 2 + 5], centre[h // 2 - 5])
    assert spec[0, h // 2 + 5, w // 2 + 6] < centre[h // 2 + 5] - 2  # nothing across the columns
    # grey [B, H, W] and one-channel [B, 1, H, W] give the same; RGB combines channels
    torch.testing.assert_close(inr.spectrum(tone[None]), spec)
    assert inr.spectrum(tone[None, None].expand(2, 3, h, w)).shape == (2, h, w)
    with pytest.raises(ValueError, match="shape"):
        inr.spectrum(tone)


def test_it_draws_the_band_box_around_the_original_nyquist():
    mask = band_mask(28, 28, 4, guard=0)
    assert mask.shape == (112, 112)
    inside = mask[56].nonzero().flatten() - 56
    assert int(inside.min()) == -13 and int(inside.max()) == 13  # 112 * 27 / (2 * 111) = 13.6 bins
    assert band_mask(28, 28, 4).sum() > mask.sum()


def _one_tone_mfn(freq: float) -> tuple[inr.FieldSpec, dict]:
    """An MFN with a single filter computing 0.5 + 0.3 sin(freq * column)."""
    spec = inr.FieldSpec.mfn(hidden=1, filters=1)
    params = {
        "filter0.omega": torch.tensor([[[0.0, freq]]]),
        "filter0.phi": torch.zeros(1, 1),
        "linear0.weight": torch.full((1, 1, 1), 0.3),
        "linear0.bias": torch.full((1, 1), 0.5),
    }
    return spec, params


def test_it_measures_energy_beyond_the_band():
    nyq = inr.nyquist(16, 16)[1]
    spec, low = _one_tone_mfn(0.5 * nyq)
    _, high = _one_tone_mfn(1.8 * nyq)  # aliases on the 16x16 grid, shows up on the 4x render
    torch.testing.assert_close(inr.band_limit(spec, high), torch.tensor([[0.0, 1.8 * nyq]]))
    low_leak = float(inr.out_of_band_energy(spec, low, 16, 16)[0])
    high_leak = float(inr.out_of_band_energy(spec, high, 16, 16, factor=4)[0])
    assert low_leak < 1e-6
    assert 0.05 < high_leak < 0.5  # the tone's share of the energy, next to the constant 0.5
    with pytest.raises(ValueError, match="factor"):
        inr.out_of_band_energy(spec, low, 16, 16, factor=0)
