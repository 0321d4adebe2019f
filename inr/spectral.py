"""2-D magnitude spectra (the paper's Figure 2) and how much of a field's energy lies outside the grid's band."""

from __future__ import annotations

import torch

from inr.fields import Params, check_params, render
from inr.spec import FieldSpec


def _hann(n: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    # symmetric Hann window; images are not periodic, so without it the borders leak energy into every frequency
    return torch.hann_window(n, periodic=False, device=device, dtype=dtype) if n > 1 else torch.ones(1, device=device,
                                                                                                       dtype=dtype)


def _power(images: torch.Tensor) -> torch.Tensor:
    """Hann-windowed power spectrum, zero frequency at the centre, summed over channels: [B, C, H, W] -> [B, H, W]."""
    _, _, h, w = images.shape
    x = images.to(torch.float64)
    window = _hann(h, x.device, x.dtype)[:, None] * _hann(w, x.device, x.dtype)[None, :]
    f = torch.fft.fftshift(torch.fft.fft2(x * window), dim=(-2, -1))
    return f.abs().square().sum(dim=1)


def spectrum(images: torch.Tensor) -> torch.Tensor:
    """Centred log-magnitude spectrum `[B, H, W]` (float32) of images `[B, C, H, W]` or `[B, H, W]`:
    log(1 + |FFT2(image * Hann)|), the channels' magnitudes combined as sqrt(sum |F_c|^2). Zero frequency sits at
    (H // 2, W // 2)."""
    if images.dim() == 3:
        images = images.unsqueeze(1)
    if images.dim() != 4:
        raise ValueError(f"images must have shape [B, C, H, W] or [B, H, W], got {list(images.shape)}")
    return torch.log1p(_power(images).sqrt()).to(torch.float32)


# The Hann window turns a pure tone into a main lobe two bins wide on each side: a tone just inside the band edge
# puts energy into the first two bins past it. Those bins count as in band, so that only frequencies really above the
# grid's Nyquist show up as out of band.
HANN_GUARD_BINS = 2


def band_mask(height: int, width: int, factor: int, guard: int = HANN_GUARD_BINS) -> torch.Tensor:
    """`[factor*H, factor*W]` bool, True for the centred FFT bins of a factor x render whose frequency lies within
    the original H x W grid's Nyquist band (per axis |f| <= pi / original pixel spacing) plus `guard` bins."""
    masks = []
    for n in (height, width):
        fine = factor * n
        # bin k of the fine render is 2 pi k / (fine * fine_spacing) radians per unit; the band edge is
        # pi / spacing with spacing = 2 / (n - 1), fine_spacing = 2 / (fine - 1)
        edge = fine * (n - 1) / (2.0 * (fine - 1))
        k = torch.arange(fine) - fine // 2
        masks.append(k.abs().to(torch.float64) <= edge + guard + 1e-9)
    return masks[0][:, None] & masks[1][None, :]


def out_of_band_energy(spec: FieldSpec, params: Params, height: int, width: int, factor: int = 4) -> torch.Tensor:
    """Fraction `[B]` of the Hann-windowed spectral energy of each INR rendered at factor x the `height` x `width`
    grid that lies outside that grid's band (beyond the window's main lobe, see `band_mask`). An INR without
    aliasing puts (almost) nothing there: what it shows between the original pixels is the image, not frequencies
    the grid could not see."""
    check_params(spec, params)
    if factor < 1:
        raise ValueError(f"factor must be >= 1, got {factor}")
    with torch.no_grad():
        power = _power(render(spec, params, factor * height, factor * width))
    inside = band_mask(height, width, factor).to(power.device)
    total = power.sum(dim=(1, 2)).clamp_min(1e-300)
    return (power.masked_fill(inside, 0.0).sum(dim=(1, 2)) / total).to(torch.float32)
