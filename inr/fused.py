"""Fused forward and backward passes for fitting (what `inr.fit` spends nearly all its time in).

Writing the backward pass by hand (instead of autograd) lets it fold SIREN's omega0 into small weight tensors,
reuse the pre-activation buffers for the cosines, skip every gradient nobody needs (the coordinates'), and write
every large intermediate into a buffer that is allocated once per chunk instead of once per step.
`tests/test_fields.py` checks the gradients against autograd in float64.

Packed parameters. `inr.fit` keeps a chunk's parameters in one flat `[B, D]` tensor (so Adam is a handful of
elementwise ops). Here a SIREN layer is stored as one block `[B, out, in + 1]`: the weight's columns, then the bias
as the last column. With a row of ones appended to each layer's input (`[B, in + 1, P]`, written once), a layer is
one batched product with no separate bias pass, and its weight and bias gradients are one product too.
`packed_views` gives the usual parameter names as (strided) views of such a tensor. Activations are neuron-major
(`[B, width, P]`), so that the first layer, whose input (the coordinates) all INRs share, is a single matrix product.
"""

from __future__ import annotations

import math

import torch

from inr.spec import FieldSpec

Params = dict[str, torch.Tensor]


def packed_size(spec: FieldSpec) -> int:
    """Floats per INR in the packed layout (the number of parameters)."""
    return spec.num_params


def packed_views(spec: FieldSpec, flat: torch.Tensor) -> Params:
    """The parameters (name -> `[B, *shape]`) as views of a packed `[B, packed_size(spec)]` tensor."""
    batch = flat.shape[0]
    out: Params = {}
    if spec.arch == "siren":
        for i, block in enumerate(_siren_blocks(spec, flat)):
            fan_in = block.shape[2] - 1
            out[f"layer{i}.weight"] = block[:, :, :fan_in]
            out[f"layer{i}.bias"] = block[:, :, fan_in]
        return out
    offset = 0
    for name, shape in spec.param_shapes().items():
        size = math.prod(shape)
        out[name] = flat[:, offset:offset + size].view(batch, *shape)
        offset += size
    return out


def _siren_blocks(spec: FieldSpec, flat: torch.Tensor) -> list[torch.Tensor]:
    # layer i -> [B, out, in + 1] view of flat
    sizes, blocks, offset = spec.layer_sizes(), [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        size = fan_out * (fan_in + 1)
        blocks.append(flat[:, offset:offset + size].view(flat.shape[0], fan_out, fan_in + 1))
        offset += size
    return blocks


def pack(spec: FieldSpec, params: Params, flat: torch.Tensor) -> torch.Tensor:
    """Copies params into the packed tensor `flat` `[B, packed_size(spec)]`; returns flat."""
    for name, view in packed_views(spec, flat).items():
        view.copy_(params[name])
    return flat


class FusedStep:
    """Forward and backward of the per-INR MSE for B INRs held packed in `flat` `[B, D]`; each call writes the
    gradient (of the sum of the per-INR losses) into `grad` `[B, D]` (same layout) and returns the losses `[B]`.

    coords `[P, 2]`, target `[B, P, out_dim]`; grid_size=(H, W) says coords is `grid(H, W)` (MFNs then use the
    separable filter step). The buffers are allocated here, once; `flat` may change between calls (Adam updates it
    in place), coords and target may not.
    """

    def __init__(self, spec: FieldSpec, flat: torch.Tensor, grad: torch.Tensor, coords: torch.Tensor,
                 target: torch.Tensor, grid_size: tuple[int, int] | None = None) -> None:
        self.spec = spec
        if spec.arch == "siren":
            self._step = _SirenStep(spec, flat, grad, coords, target)
            return
        params, grads, ws = packed_views(spec, flat), packed_views(spec, grad), Workspace()
        if grid_size is not None:
            self._step = lambda: _mfn_grid_mse_and_grad(spec, params, coords, grid_size, target, grads, ws)
        else:
            self._step = lambda: _mfn_mse_and_grad(spec, params, coords, target, grads, ws)

    def __call__(self) -> torch.Tensor:
        return self._step()


class _SirenStep:
    """SIREN: a_i = w0 (W_i h_i + b_i), h_{i+1} = sin(a_i); y = W_last h_last + b_last. All activations
    neuron-major `[B, width, P]`; layer inputs carry a row of ones for the bias."""

    def __init__(self, spec: FieldSpec, flat: torch.Tensor, grad: torch.Tensor, coords: torch.Tensor,
                 target: torch.Tensor) -> None:
        batch, pixels, channels = target.shape
        sizes = spec.layer_sizes()
        self.w0, self.last = spec.omega0, spec.layers - 1
        self.weights, self.grads = _siren_blocks(spec, flat), _siren_blocks(spec, grad)
        flat_last = self.weights[-1].shape

        def buffer(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=flat.dtype, device=flat.device)

        self.x = torch.cat([coords.t(), torch.ones_like(coords[:, :1]).t()])  # [3, P], shared by all INRs
        self.inputs = [self.x]  # h_i with a ones row: [B, in + 1, P] (the first one [3, P])
        self.pre = []  # a_i [B, out, P]
        for width in sizes[1:-1]:
            self.pre.append(buffer(batch, width, pixels))
            h = buffer(batch, width + 1, pixels)
            h[:, width].fill_(1.0)
            self.inputs.append(h)
        self.scaled = [buffer(*w.shape) for w in self.weights]  # w0 W_i, contiguous
        # gradient blocks, transposed [B, in + 1, out] but for the last layer's
        self.grads_t = [buffer(batch, w.shape[2], w.shape[1]) for w in self.weights[:-1]] + [buffer(*flat_last)]
        self.w0_t = torch.tensor(spec.omega0, dtype=flat.dtype, device=flat.device)  # 0-dim: no scalar wrapping
        self.grad0_t = buffer(3, batch * sizes[1])  # the first layer's gradient, [3, B*out]
        self.dh = buffer(batch, max(sizes[1:-1]), pixels)
        self.target = target.transpose(1, 2).contiguous()  # [B, C, P]
        self.y = buffer(batch, channels, pixels)

    def __call__(self) -> torch.Tensor:
        w0, last, weights, grads = self.w0_t, self.last, self.weights, self.grads
        batch = self.y.shape[0]
        for i in range(last):
            a = self.pre[i]
            scaled = torch.mul(weights[i], w0, out=self.scaled[i])  # [B, out, in + 1]
            if i == 0:  # the coordinates are shared: one [B*out, 3] x [3, P] product
                torch.mm(scaled.view(-1, 3), self.x, out=a.view(-1, a.shape[2]))
            else:
                torch.bmm(scaled, self.inputs[i], out=a)
            torch.sin(a, out=self.inputs[i + 1][:, :a.shape[1]])
        y = torch.bmm(weights[last], self.inputs[last], out=self.y)  # [B, C, P]
        r = y.sub_(self.target)
        n = r.shape[1] * r.shape[2]
        loss = torch.linalg.vector_norm(r, dim=(1, 2)).square_().div_(n)
        dy = r.mul_(2.0 / n)  # dloss/dy [B, C, P]
        torch.bmm(dy, self.inputs[last].transpose(1, 2), out=self.grads_t[last])  # [B, C, in + 1]
        grads[last].copy_(self.grads_t[last])

        # e: dloss/da_i up to a per-neuron factor w_out [B, out, 1] where it is not None, kept out of the large tensor:
        # with one output channel dloss/da = cos(a) * w_last * dy, and w_last goes into small tensors.
        width = self.pre[last - 1].shape[1]
        e = torch.cos(self.pre[last - 1], out=self.pre[last - 1])
        if dy.shape[1] == 1:
            e.mul_(dy)
            w_out = weights[last][:, 0, :width].unsqueeze(2)
            col = w_out * w0
        else:
            dh = torch.bmm(weights[last][:, :, :width].transpose(1, 2), dy, out=self.dh[:, :width])
            e.mul_(dh)
            col = None
        for i in reversed(range(last)):
            out_width = e.shape[1]
            if i == 0:  # [3, P] x [P, B*out]: weight and bias gradients of every INR in one product
                torch.mm(self.x, e.view(-1, e.shape[2]).t(), out=self.grad0_t)
                g = self.grad0_t.view(3, batch, out_width).permute(1, 2, 0)
            else:  # [B, in + 1, P] x [B, P, out]
                g = torch.bmm(self.inputs[i], e.transpose(1, 2), out=self.grads_t[i]).transpose(1, 2)
            torch.mul(g, w0 if col is None else col, out=grads[i])
            if i == 0:
                break
            fan_in = weights[i].shape[2] - 1
            w = self.scaled[i][:, :, :fan_in]  # w0 W_i
            if col is not None:
                w = w * w_out
            dh = torch.bmm(w.transpose(1, 2), e, out=self.dh[:, :fan_in])
            e = torch.cos(self.pre[i - 1], out=self.pre[i - 1]).mul_(dh)
            col = None
        return loss


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
    separability (`_separable_sines`). (The same path for a SIREN's first layer measured no faster: not used.)
    A loop calling this repeatedly should hold its parameters packed and call a `FusedStep` instead."""
    if grads is None:
        grads = {name: torch.empty_like(t) for name, t in params.items()}
    if spec.arch == "siren":
        any_param = next(iter(params.values()))
        flat = pack(spec, params, any_param.new_empty(any_param.shape[0], packed_size(spec)))
        grad = torch.empty_like(flat)
        loss = FusedStep(spec, flat, grad, coords, target)()
        for name, view in packed_views(spec, grad).items():
            grads[name].copy_(view)
        return loss, grads
    ws = workspace or Workspace()
    if grid_size is not None:
        return _mfn_grid_mse_and_grad(spec, params, coords, grid_size, target, grads, ws), grads
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
