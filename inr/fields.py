"""Batched neural fields: B INRs evaluated at once with batched matrix products.

Params are a dict name -> tensor with one leading batch dimension B (see `FieldSpec.param_shapes`).
Coordinates are `[P, 2]` (shared by every INR) or `[B, P, 2]`, in [-1, 1], column 0 the row, column 1 the column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from inr.fused import mse_and_grad  # noqa: F401 (re-exported: the fused step lives in inr.fused)
from inr.spec import FieldSpec

Params = dict[str, torch.Tensor]


def grid(height: int, width: int, device: torch.device | str | None = None,
         dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """`[H*W, 2]` pixel-centre coordinates in [-1, 1], row-major; column 0 is the row (top = -1), column 1 the
    column."""
    rows = torch.linspace(-1.0, 1.0, height, device=device, dtype=dtype)
    cols = torch.linspace(-1.0, 1.0, width, device=device, dtype=dtype)
    r, c = torch.meshgrid(rows, cols, indexing="ij")
    return torch.stack([r.reshape(-1), c.reshape(-1)], dim=-1)


def pixel_spacing(height: int, width: int) -> tuple[float, float]:
    """Distance between neighbouring pixels of `grid(height, width)` along (rows, columns)."""
    return (2.0 / max(height - 1, 1), 2.0 / max(width - 1, 1))


def nyquist(height: int, width: int) -> tuple[float, float]:
    """Nyquist frequency of the grid per axis (rows, columns), in radians per unit coordinate: pi / spacing."""
    dr, dc = pixel_spacing(height, width)
    return (math.pi / dr, math.pi / dc)


def _as_size(grid_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(grid_size, int):
        return (grid_size, grid_size)
    h, w = grid_size
    return (int(h), int(w))


def _init_one(spec: FieldSpec, gen: torch.Generator, grid_size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """One INR's parameters in float64 on the CPU, drawn from `gen` in a fixed order."""

    def uniform(shape: tuple[int, ...], bound: float) -> torch.Tensor:
        return (torch.rand(shape, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * bound

    shapes = spec.param_shapes()
    out: dict[str, torch.Tensor] = {}
    if spec.arch == "siren":
        # Sitzmann et al. 2020: first layer U(+-1/fan_in), hidden U(+-sqrt(6/fan_in)/omega0); biases as nn.Linear.
        for i in range(spec.layers):
            fan_out, fan_in = shapes[f"layer{i}.weight"]
            bound = 1.0 / fan_in if i == 0 else math.sqrt(6.0 / fan_in) / spec.omega0
            out[f"layer{i}.weight"] = uniform((fan_out, fan_in), bound)
            out[f"layer{i}.bias"] = uniform((fan_out,), 1.0 / math.sqrt(fan_in))
        return out
    # Fathony et al. 2021 (FourierNet): filter weights U(+-1/sqrt(2)) * input_scale / sqrt(filters), phases
    # U(-pi, pi). input_scale is in radians per pixel; convert to radians per unit coordinate per axis.
    h, w = grid_size
    dr, dc = pixel_spacing(h, w)
    per_axis = torch.tensor([1.0 / dr, 1.0 / dc], dtype=torch.float64)
    scale = spec.input_scale / math.sqrt(spec.filters)
    for i in range(spec.filters):
        out[f"filter{i}.omega"] = uniform((spec.hidden, 2), 1.0 / math.sqrt(2.0)) * scale * per_axis
        out[f"filter{i}.phi"] = uniform((spec.hidden,), math.pi)
    for i in range(spec.filters):
        fan_out, fan_in = shapes[f"linear{i}.weight"]
        last = i == spec.filters - 1
        bound = 1.0 / math.sqrt(fan_in) if last else math.sqrt(1.0 / spec.hidden)
        out[f"linear{i}.weight"] = uniform((fan_out, fan_in), bound)
        out[f"linear{i}.bias"] = uniform((fan_out,), 1.0 / math.sqrt(fan_in))
    return out


def init(spec: FieldSpec, batch: int, seed: int = 0, *, seeds: Sequence[int] | None = None,
         grid_size: int | Sequence[int] = 32, device: torch.device | str | None = None,
         dtype: torch.dtype = torch.float32) -> Params:
    """Initial parameters of `batch` INRs. INR b is drawn from its own generator seeded `seeds[b]` (default
    `seed + b`), so an INR's initialisation does not depend on what else is in the batch.

    `grid_size` (pixels, int or (H, W)) is the grid that the MFN's `input_scale` (radians per pixel) refers to;
    SIREN ignores it.
    """
    if seeds is None:
        seeds = [seed + b for b in range(batch)]
    if len(seeds) != batch:
        raise ValueError(f"got {len(seeds)} seeds for a batch of {batch}")
    size = _as_size(grid_size)
    cache: dict[int, dict[str, torch.Tensor]] = {}
    for s in seeds:
        if s not in cache:
            cache[int(s)] = _init_one(spec, torch.Generator().manual_seed(int(s)), size)
    return {name: torch.stack([cache[int(s)][name] for s in seeds]).to(device=device, dtype=dtype)
            for name in spec.param_shapes()}


def check_params(spec: FieldSpec, params: Params) -> int:
    """Checks names and shapes against the spec; returns the batch size."""
    shapes = spec.param_shapes()
    if set(params) != set(shapes):
        missing, extra = set(shapes) - set(params), set(params) - set(shapes)
        raise ValueError(f"params do not match the spec: missing {sorted(missing)}, unexpected {sorted(extra)}")
    batch = None
    for name, shape in shapes.items():
        t = params[name]
        if tuple(t.shape[1:]) != shape:
            raise ValueError(f"{name}: expected shape [B, {', '.join(map(str, shape))}], got {list(t.shape)}")
        if batch is None:
            batch = t.shape[0]
        elif t.shape[0] != batch:
            raise ValueError(f"{name}: batch size {t.shape[0]} differs from {batch}")
    return int(batch or 0)


def _linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    # x: [B, P, in] or [P, in]; weight: [B, out, in]; bias: [B, out] -> [B, P, out]
    if x.dim() == 2:
        x = x.unsqueeze(0).expand(weight.shape[0], -1, -1)
    return torch.baddbmm(bias.unsqueeze(1), x, weight.transpose(1, 2))


def evaluate(spec: FieldSpec, params: Params, coords: torch.Tensor) -> torch.Tensor:
    """Field values `[B, P, out_dim]` at `coords` (`[P, 2]` or `[B, P, 2]`)."""
    if spec.arch == "siren":
        h = coords
        for i in range(spec.layers):
            h = _linear(h, params[f"layer{i}.weight"], params[f"layer{i}.bias"])
            if i < spec.layers - 1:
                h = torch.sin(spec.omega0 * h)
        return h
    z = None
    for i in range(spec.filters):
        g = torch.sin(_linear(coords, params[f"filter{i}.omega"], params[f"filter{i}.phi"]))
        z = g if z is None else z * g
        z = _linear(z, params[f"linear{i}.weight"], params[f"linear{i}.bias"])
    return z


def render(spec: FieldSpec, params: Params, height: int, width: int, chunk: int = 65536) -> torch.Tensor:
    """The fields sampled on `grid(height, width)`: `[B, out_dim, H, W]`. Pixels go in chunks to bound memory."""
    any_param = next(iter(params.values()))
    coords = grid(height, width, device=any_param.device, dtype=any_param.dtype)
    parts = [evaluate(spec, params, coords[i:i + chunk]) for i in range(0, coords.shape[0], chunk)]
    out = torch.cat(parts, dim=1)  # [B, H*W, C]
    return out.transpose(1, 2).reshape(out.shape[0], spec.out_dim, height, width)
