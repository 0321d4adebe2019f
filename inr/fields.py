"""Batched neural fields: B INRs evaluated at once with batched matrix products.

Params are a dict name -> tensor with one leading batch dimension B (see `FieldSpec.param_shapes`).
Coordinates are `[P, 2]` (shared by every INR) or `[B, P, 2]`, in [-1, 1], column 0 the row, column 1 the column.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

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


# -- fused forward and backward for fitting -----------------------------------------------------------------------
# `fit` spends nearly all its time here. Writing the backward pass by hand (instead of autograd) lets it fold
# SIREN's omega0 into the matrix products' scalars and the small weight tensors, reuse the pre-activation buffers
# for the cosines, skip every gradient nobody needs (the coordinates'), and write every large intermediate into a
# buffer that is allocated once per chunk (`Workspace`) instead of once per step. `tests/test_fields.py` checks the
# gradients against autograd in float64.


class Workspace:
    """Named scratch buffers, reused across calls with the same shapes."""

    def __init__(self) -> None:
        self._buffers: dict[str, torch.Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
        t = self._buffers.get(name)
        if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
            t = self._buffers[name] = torch.empty(shape, dtype=like.dtype, device=like.device)
        return t


def mse_and_grad(spec: FieldSpec, params: Params, coords: torch.Tensor, target: torch.Tensor,
                 grads: Params | None = None, workspace: Workspace | None = None,
                 grid_size: tuple[int, int] | None = None) -> tuple[torch.Tensor, Params]:
    """Per-INR mean squared error `[B]` of the fields at `coords` (`[P, 2]`) against `target` (`[B, P, out_dim]`),
    and its gradient with respect to every parameter (the gradient of the sum of the per-INR losses, so each INR
    gets its own gradient). Results are written into `grads` (same names and shapes as params) when given.

    `grid_size=(H, W)` says that coords is `grid(H, W)`; MFNs then take a faster path that uses the grid's
    separability (`_separable_sines`). (The same path for a SIREN's first layer measured no faster: not used.)"""
    if grads is None:
        grads = {name: torch.empty_like(t) for name, t in params.items()}
    ws = workspace or Workspace()
    if spec.arch == "mfn" and grid_size is not None:
        return _mfn_grid_mse_and_grad(spec, params, coords, grid_size, target, grads, ws), grads
    if spec.arch == "siren":
        return _siren_mse_and_grad(spec, params, coords, target, grads, ws), grads
    return _mfn_mse_and_grad(spec, params, coords, target, grads, ws), grads


def _residual(y: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    # y, target: [B, P, C] -> loss [B], dloss/dy [B, P, C] (y is overwritten)
    r = y.sub_(target)
    loss = torch.linalg.vector_norm(r, dim=(1, 2)).square_().div_(r.shape[1] * r.shape[2])
    return loss, r.mul_(2.0 / (r.shape[1] * r.shape[2]))


def _back_through_linear(du: torch.Tensor, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    # du [B, P, o] @ weight [B, o, i] -> [B, P, i]; one output channel is an outer product, cheaper as a broadcast
    if weight.shape[1] == 1:
        return torch.mul(du, weight, out=out)
    return torch.bmm(du, weight, out=out)


def _coords_and_ones(coords: torch.Tensor, batch: int, ws: Workspace) -> torch.Tensor:
    """`[B, 3, P]`: rows, columns, ones. Transposed it is the first layer's input; times dloss/da it gives the first
    layer's weight and bias gradients in one matrix product."""
    x = ws.get("coords_ones", (batch, 3, coords.shape[0]), coords)
    x[:, :2].copy_(coords.t().unsqueeze(0).expand(batch, -1, -1))
    x[:, 2].fill_(1.0)
    return x


def _siren_mse_and_grad(spec: FieldSpec, params: Params, coords: torch.Tensor, target: torch.Tensor,
                        grads: Params, ws: Workspace) -> torch.Tensor:
    w0, last = spec.omega0, spec.layers - 1
    batch, pixels, _ = target.shape
    x1 = _coords_and_ones(coords, batch, ws)
    hs, pre = [x1[:, :2].transpose(1, 2)], []  # layer inputs h_i [B, P, d_i]; a_i = w0 (h_i W_i^T + b_i)
    for i in range(last):
        weight = params[f"layer{i}.weight"]
        a = ws.get(f"a{i}", (batch, pixels, weight.shape[1]), target)
        torch.baddbmm(params[f"layer{i}.bias"].unsqueeze(1), hs[-1], weight.transpose(1, 2), beta=w0, alpha=w0,
                      out=a)
        pre.append(a)
        hs.append(torch.sin(a, out=ws.get(f"h{i + 1}", a.shape, a)))
    y = ws.get("y", target.shape, target)
    torch.baddbmm(params[f"layer{last}.bias"].unsqueeze(1), hs[-1], params[f"layer{last}.weight"].transpose(1, 2),
                  out=y)
    loss, dy = _residual(y, target)  # dy [B, P, C]
    torch.bmm(dy.transpose(1, 2), hs[-1], out=grads[f"layer{last}.weight"])
    torch.sum(dy, dim=1, out=grads[f"layer{last}.bias"])
    dh = _back_through_linear(dy, params[f"layer{last}.weight"], ws.get("dh", hs[-1].shape, dy))
    for i in reversed(range(last)):
        da = torch.cos(pre[i], out=pre[i]).mul_(dh)  # dloss / d(h_i W_i^T + b_i), up to the factor w0
        if i == 0:
            g0 = torch.bmm(x1, da).mul_(w0)  # [B, 3, d_1]: weight^T and bias
            grads["layer0.weight"].copy_(g0[:, :2].transpose(1, 2))
            grads["layer0.bias"].copy_(g0[:, 2])
            break
        torch.bmm(da.transpose(1, 2), hs[i], out=grads[f"layer{i}.weight"])
        grads[f"layer{i}.weight"].mul_(w0)
        torch.sum(da, dim=1, out=grads[f"layer{i}.bias"])
        grads[f"layer{i}.bias"].mul_(w0)
        if i > 0:
            dh = torch.bmm(da, params[f"layer{i}.weight"] * w0, out=ws.get("dh", hs[i].shape, da))
    return loss


def _mfn_mse_and_grad(spec: FieldSpec, params: Params, coords: torch.Tensor, target: torch.Tensor,
                      grads: Params, ws: Workspace) -> torch.Tensor:
    k, hidden = spec.filters, spec.hidden
    batch, pixels, _ = target.shape
    # All filters at once: A = x omega^T + phi, [B, P, k*hidden]; filter i is the slice i*hidden:(i+1)*hidden.
    omega = torch.cat([params[f"filter{i}.omega"] for i in range(k)], dim=1)  # [B, k*hidden, 2]
    phi = torch.cat([params[f"filter{i}.phi"] for i in range(k)], dim=1)  # [B, k*hidden]
    x1 = _coords_and_ones(coords, batch, ws)
    a = ws.get("a", (batch, pixels, k * hidden), target)
    torch.baddbmm(phi.unsqueeze(1), x1[:, :2].transpose(1, 2), omega.transpose(1, 2), out=a)
    g = torch.sin(a, out=ws.get("g", a.shape, a))

    def filt(t: torch.Tensor, i: int) -> torch.Tensor:
        return t[:, :, i * hidden:(i + 1) * hidden]

    zs, us = [filt(g, 0)], []  # z^(i+1) [B, P, hidden]; u_i = z W_i^T + b_i
    for i in range(k):
        weight = params[f"linear{i}.weight"]
        u = ws.get(f"u{i}", (batch, pixels, weight.shape[1]), target)
        torch.baddbmm(params[f"linear{i}.bias"].unsqueeze(1), zs[-1], weight.transpose(1, 2), out=u)
        if i < k - 1:
            us.append(u)
            zs.append(torch.mul(u, filt(g, i + 1), out=ws.get(f"z{i + 1}", u.shape, u)))
    loss, du = _residual(u, target)
    dg = ws.get("dg", a.shape, a)  # dloss/dg for every filter
    for i in reversed(range(k)):
        torch.bmm(du.transpose(1, 2), zs[i], out=grads[f"linear{i}.weight"])
        torch.sum(du, dim=1, out=grads[f"linear{i}.bias"])
        if i == 0:
            _back_through_linear(du, params[f"linear{i}.weight"], filt(dg, 0))
        else:
            dz = _back_through_linear(du, params[f"linear{i}.weight"], ws.get(f"dz{i % 2}", zs[i].shape, du))
            torch.mul(dz, us[i - 1], out=filt(dg, i))
            du = dz.mul_(filt(g, i))
    da = torch.cos(a, out=a).mul_(dg)
    grad = torch.bmm(x1, da)  # [B, 3, k*hidden]: omega^T (rows, cols) and phi of every filter
    for i in range(k):
        grads[f"filter{i}.omega"].copy_(grad[:, :2, i * hidden:(i + 1) * hidden].transpose(1, 2))
        grads[f"filter{i}.phi"].copy_(grad[:, 2, i * hidden:(i + 1) * hidden])
    return loss


def _separable_sines(r_arg: torch.Tensor, c_arg: torch.Tensor, out: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """On a grid, sin(R_i + C_j) = sin(R_i) cos(C_j) + cos(R_i) sin(C_j): the sines of n neurons over the H x W grid
    are one batched product with inner dimension 2 of small tables, with H + W sines and cosines per neuron instead of
    H * W. r_arg [B, d, H], c_arg [B, d, W] -> out [B, d, H*W]; returns the tables for `_separable_sines_backward`."""
    batch, d, height = r_arg.shape
    width = c_arg.shape[2]
    sr, cr, sc, cc = torch.sin(r_arg), torch.cos(r_arg), torch.sin(c_arg), torch.cos(c_arg)
    left = torch.stack([sr, cr], dim=3).view(batch * d, height, 2)
    right = torch.stack([cc, sc], dim=2).view(batch * d, 2, width)
    torch.bmm(left, right, out=out.view(batch * d, height, width))
    return sr, cr, sc, cc, right


def _separable_sines_backward(grad: torch.Tensor, tables: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """dloss/dR [B, d, H] and dloss/dC [B, d, W] from dloss/dsin(R_i + C_j) (`grad` [B, d, H*W]): since
    d sin(R + C) = cos(R_i) cos(C_j) - sin(R_i) sin(C_j), two batched products of grad with the tables, and no cosine
    over the grid."""
    sr, cr, sc, cc, right = tables
    batch, d, height = sr.shape
    width = sc.shape[2]
    n = batch * d
    g = grad.view(n, height, width)
    m_rows = torch.bmm(g, right.transpose(1, 2))  # [n, H, 2]: sum_j g cos C_j, sum_j g sin C_j
    m_cols = torch.bmm(g.transpose(1, 2), torch.stack([cr, sr], dim=3).view(n, height, 2))  # [n, W, 2]
    d_r = cr * m_rows[..., 0].view(batch, d, height) - sr * m_rows[..., 1].view(batch, d, height)
    d_c = cc * m_cols[..., 0].view(batch, d, width) - sc * m_cols[..., 1].view(batch, d, width)
    return d_r, d_c


def _mfn_grid_mse_and_grad(spec: FieldSpec, params: Params, coords: torch.Tensor, grid_size: tuple[int, int],
                           target: torch.Tensor, grads: Params, ws: Workspace) -> torch.Tensor:
    """MFN step on a full grid, activations neuron-major (`[B, hidden, P]`).

    On a grid a filter is separable: sin(w_r r_i + w_c c_j + phi) = sin(R_i) cos(C_j) + cos(R_i) sin(C_j) with
    R = w_r r + phi, C = w_c c. So the filter bank is one batched product with inner dimension 2 of small sine tables
    ([H, 2] x [2, W] per neuron), with H + W sines and cosines per neuron instead of H * W; and the filters'
    gradients need no cosine over the grid: two batched products of dloss/dg with the same tables.
    """
    k, hidden = spec.filters, spec.hidden
    height, width = grid_size
    batch, pixels, channels = target.shape
    rows, cols = coords[::width, 0], coords[:width, 1]  # [H], [W]
    omega = torch.cat([params[f"filter{i}.omega"] for i in range(k)], dim=1)  # [B, k*hidden, 2]
    phi = torch.cat([params[f"filter{i}.phi"] for i in range(k)], dim=1)  # [B, k*hidden]
    r_arg = torch.addcmul(phi.unsqueeze(2), omega[:, :, 0:1], rows)  # R [B, k*hidden, H]
    c_arg = omega[:, :, 1:2] * cols  # C [B, k*hidden, W]
    g = ws.get("g", (batch, k * hidden, pixels), target)
    tables = _separable_sines(r_arg, c_arg, g)

    def filt(t: torch.Tensor, i: int) -> torch.Tensor:
        return t[:, i * hidden:(i + 1) * hidden]  # [B, hidden, P]

    zs, us = [filt(g, 0)], []  # z^(i+1) [B, hidden, P]; u_i = W_i z + b_i
    for i in range(k):
        weight = params[f"linear{i}.weight"]
        u = ws.get(f"u{i}", (batch, weight.shape[1], pixels), target)
        torch.baddbmm(params[f"linear{i}.bias"].unsqueeze(2), weight, zs[-1], out=u)
        if i < k - 1:
            us.append(u)
            zs.append(torch.mul(u, filt(g, i + 1), out=ws.get(f"z{i + 1}", u.shape, u)))
    loss, du = _residual(u, target.transpose(1, 2))  # du [B, C, P]
    dg = ws.get("dg", g.shape, g)  # dloss/dg for every filter
    for i in reversed(range(k)):
        weight = params[f"linear{i}.weight"]
        torch.bmm(du, zs[i].transpose(1, 2), out=grads[f"linear{i}.weight"])
        torch.sum(du, dim=2, out=grads[f"linear{i}.bias"])
        dz = filt(dg, 0) if i == 0 else ws.get(f"dz{i % 2}", zs[i].shape, du)
        if weight.shape[1] == 1:  # one output channel: an outer product
            torch.mul(weight.transpose(1, 2), du, out=dz)
        else:
            torch.bmm(weight.transpose(1, 2), du, out=dz)
        if i > 0:
            torch.mul(dz, us[i - 1], out=filt(dg, i))
            du = dz.mul_(filt(g, i))
    d_r, d_c = _separable_sines_backward(dg, tables)
    grad_phi = d_r.sum(dim=2)
    grad_omega = torch.stack([d_r @ rows, d_c @ cols], dim=2)  # [B, k*hidden, 2]
    for i in range(k):
        grads[f"filter{i}.omega"].copy_(grad_omega[:, i * hidden:(i + 1) * hidden])
        grads[f"filter{i}.phi"].copy_(grad_phi[:, i * hidden:(i + 1) * hidden])
    return loss
