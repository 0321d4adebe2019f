"""Rendering one INR to a PNG, optionally through weight-space augmentations (the render endpoint and the dashboard).

The augmentations act on the WEIGHTS (inr.rotate, inr.translate, ...), then the field is sampled on a grid of any
size: what the user sees is exactly the INR an encoder would be given.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image as PILImage

import inr

MAX_RENDER_SIZE = 512


@dataclass(frozen=True)
class RenderOptions:
    """Query parameters of GET /api/inrsets/<id>/inrs/<index>/render.png (validated by RenderQuerySerializer)."""

    size: int | None = None  # output height in pixels (width keeps the aspect ratio); None = the dataset's size
    rotate: float = 0.0  # degrees, counter-clockwise in the (row, column) frame as inr.rotate defines it
    translate: tuple[float, float] = (0.0, 0.0)  # (rows, columns) in coordinate units (the image spans [-1, 1])
    scale: float = 1.0
    noise: float = 0.0  # std relative to each tensor's per-INR std (inr.add_noise)
    dropout: float = 0.0  # probability of zeroing each weight (inr.dropout)
    permute: bool = False  # random hidden-neuron permutation: the picture must not change
    augment: bool = False  # one draw of inr.random_augment with the default AugmentPolicy
    seed: int = 0  # seeds the generator of noise, dropout, permute and augment
    spectrum: bool = False  # centred log-magnitude spectrum of the render (the paper's Figure 2) instead


def output_size(options: RenderOptions, height: int, width: int) -> tuple[int, int]:
    if options.size is None:
        return height, width
    out_h = options.size
    out_w = max(1, min(MAX_RENDER_SIZE, round(options.size * width / height)))
    return out_h, out_w


def augment(spec: inr.FieldSpec, params: inr.Params, options: RenderOptions) -> inr.Params:
    """Applies the requested augmentations to a batch of INRs, in a fixed order."""
    generator = torch.Generator().manual_seed(options.seed)
    if options.augment:
        params = inr.random_augment(spec, params, inr.AugmentPolicy(), generator)
    if options.permute:
        params = inr.permute(spec, params, generator)
    if options.scale != 1.0:
        params = inr.scale(spec, params, options.scale)
    if options.rotate != 0.0:
        params = inr.rotate(spec, params, math.radians(options.rotate))
    if options.translate != (0.0, 0.0):
        params = inr.translate(spec, params, torch.tensor(options.translate, dtype=torch.float32))
    if options.noise > 0.0:
        params = inr.add_noise(spec, params, options.noise, generator)
    if options.dropout > 0.0:
        params = inr.dropout(spec, params, options.dropout, generator)
    return params


def render_image(spec: inr.FieldSpec, params: inr.Params, height: int, width: int,
                 options: RenderOptions) -> np.ndarray:
    """One INR (batch of 1) -> uint8 array [H, W] (1 channel) or [H, W, 3]."""
    out_h, out_w = output_size(options, height, width)
    with torch.no_grad():
        params = augment(spec, params, options)
        pixels = inr.render(spec, params, out_h, out_w).clamp(0.0, 1.0)  # [1, C, H, W]
        if options.spectrum:
            spec_img = inr.spectrum(pixels)[0]  # [H, W] centred log-magnitude
            lo, hi = spec_img.min(), spec_img.max()
            spec_img = (spec_img - lo) / (hi - lo) if hi > lo else torch.zeros_like(spec_img)
            return (spec_img * 255.0).round().to(torch.uint8).numpy()
    img = (pixels[0] * 255.0).round().to(torch.uint8)  # [C, H, W]
    if img.shape[0] == 1:
        return img[0].numpy()
    return img[:3].permute(1, 2, 0).contiguous().numpy()


def png_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    PILImage.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def render_png(spec: inr.FieldSpec, params: inr.Params, height: int, width: int, options: RenderOptions) -> bytes:
    return png_bytes(render_image(spec, params, height, width, options))
