"""Fused forward and backward passes for fitting (what `inr.fit` spends nearly all its time in).

Writing the backward pass by hand (instead of autograd) lets it fold SIREN's omega0 into small weight tensors,
reuse the pre-activation buffers for the cosines, skip every gradient nobody needs (the coordinates'), and write
every large intermediate into a buffer that is allocated once per chunk instead of once per step.
`tests/test_fields.py` checks the gradients against autograd in float64.

Packed parameters. `inr.fit` keeps a chunk's parameters in one flat `[B, D]` tensor (so Adam is a handful of
elementwise ops). Here every linear layer (SIREN layer, MFN linear) is stored as one block `[B, out, in + 1]`: the
weight's columns, then the bias as the last column; an MFN's filters as one bank `[B, filters * hidden, 3]`
(omega_rows, omega_cols, phi). With a row of ones appended to each layer's input (`[B, in + 1, P]`, written once), a
layer is one batched product with no separate bias pass, and its weight and bias gradients are one product too.
`packed_views` gives the usual parameter names as (strided) views of such a tensor. Activations are neuron-major
(`[B, width, P]`), so that the first layer (SIREN) or the filter bank (MFN), whose input (the coordinates) all INRs
share, is a single `[B * width, 3] x [3, P]` matrix product.

The sines and cosines, with the elementwise products around them, go through `inr.native` (glibc's vector sine for
float32 CPU tensors, torch ops otherwise), bound to the buffers once; on that path SIREN's first layer is computed
inside its sine and cosine kernels instead of by that product.
"""

from __future__ import annotations

import torch

from inr import native
from inr.spec import FieldSpec

Params = dict[str, torch.Tensor]


def packed_size(spec: FieldSpec) -> int:
    """Floats per INR in the packed layout (the number of parameters)."""
    return spec.num_params


def packed_views(spec: FieldSpec, flat: torch.Tensor) -> Params:
    """The parameters (name -> `[B, *shape]`) as views of a packed `[B, packed_size(spec)]` tensor."""
    out: Params = {}
    if spec.arch == "siren":
        for i, block in enumerate(_siren_blocks(spec, flat)):
            fan_in = block.shape[2] - 1
            out[f"layer{i}.weight"] = block[:, :, :fan_in]
            out[f"layer{i}.bias"] = block[:, :, fan_in]
        return out
    filters, hidden = spec.filters, spec.hidden
    bank = filter_bank(spec, flat)
    for i in range(filters):
        out[f"filter{i}.omega"] = bank[:, i * hidden:(i + 1) * hidden, :2]
        out[f"filter{i}.phi"] = bank[:, i * hidden:(i + 1) * hidden, 2]
    for i, block in enumerate(_mfn_linear_blocks(spec, flat)):
        fan_in = block.shape[2] - 1
        out[f"linear{i}.weight"] = block[:, :, :fan_in]
        out[f"linear{i}.bias"] = block[:, :, fan_in]
    return out


def filter_bank(spec: FieldSpec, flat: torch.Tensor) -> torch.Tensor:
    """MFN: all filters of a packed tensor as one view `[B, filters * hidden, 3]`: (omega_rows, omega_cols, phi) per
    neuron, filter 0's neurons first."""
    return flat[:, :spec.filters * spec.hidden * 3].view(flat.shape[0], spec.filters * spec.hidden, 3)


def _mfn_linear_blocks(spec: FieldSpec, flat: torch.Tensor) -> list[torch.Tensor]:
    return _linear_blocks(spec.layer_sizes()[1:], flat, offset=spec.filters * spec.hidden * 3)  # after the bank


def _siren_blocks(spec: FieldSpec, flat: torch.Tensor) -> list[torch.Tensor]:
    return _linear_blocks(spec.layer_sizes(), flat, offset=0)


def _linear_blocks(sizes: list[int], flat: torch.Tensor, offset: int) -> list[torch.Tensor]:
    # layer i (sizes[i] -> sizes[i + 1]) -> [B, out, in + 1] view of flat, one after another from offset
    blocks = []
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

    coords `[P, 2]` (any points), target `[B, P, out_dim]`. The buffers are allocated here, once; `flat` may change
    between calls (Adam updates it in place), coords and target may not.
    """

    def __init__(self, spec: FieldSpec, flat: torch.Tensor, grad: torch.Tensor, coords: torch.Tensor,
                 target: torch.Tensor) -> None:
        step = _SirenStep if spec.arch == "siren" else _MfnStep
        self._step = step(spec, flat, grad, coords, target)

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
        # h_{i+1} = sin(a_i), and e_i = cos(a_i) * dloss/dh_{i+1} into a_i's buffer, bound to their buffers once
        # (inr.native). The first layer's a_0 = w0 W_0 x + b_0 (x: the shared coordinates) is computed inside both.
        outs = [h[:, :a.shape[1]] for a, h in zip(self.pre, self.inputs[1:], strict=True)]
        factors = [self.dh[:, :a.shape[1]] for a in self.pre]
        if channels == 1:  # the last hidden layer's: times dloss/dy only (w_last goes into the small tensors)
            factors[-1] = self.y
        self.sines = [native.bind_sin_affine(self.scaled[0], self.x, outs[0], scratch=self.pre[0])]
        self.sines += [native.bind_sin(a, out) for a, out in zip(self.pre[1:], outs[1:], strict=True)]
        self.cosines = [native.bind_cos_affine_mul(self.scaled[0], self.x, factors[0], out=self.pre[0])]
        self.cosines += [native.bind_cos_mul(a, d, out=a) for a, d in zip(self.pre[1:], factors[1:], strict=True)]

    def __call__(self) -> torch.Tensor:
        w0, last, weights, grads = self.w0_t, self.last, self.weights, self.grads
        batch = self.y.shape[0]
        for i in range(last):
            scaled = torch.mul(weights[i], w0, out=self.scaled[i])  # [B, out, in + 1]
            if i > 0:  # (the first layer's product is inside its sine)
                torch.bmm(scaled, self.inputs[i], out=self.pre[i])
            self.sines[i]()
        y = torch.bmm(weights[last], self.inputs[last], out=self.y)  # [B, C, P]
        r = y.sub_(self.target)
        n = r.shape[1] * r.shape[2]
        loss = torch.linalg.vector_norm(r, dim=(1, 2)).square_().div_(n)
        dy = r.mul_(2.0 / n)  # dloss/dy [B, C, P]
        torch.bmm(dy, self.inputs[last].transpose(1, 2), out=self.grads_t[last])  # [B, C, in + 1]
        grads[last].copy_(self.grads_t[last])

        # e: dloss/da_i up to a per-neuron factor w_out [B, out, 1] where it is not None, kept out of the large tensor:
        # with one output channel dloss/da = cos(a) * w_last * dy, and w_last goes into small tensors.
        e = self.pre[last - 1]
        width = e.shape[1]
        if dy.shape[1] == 1:
            w_out = weights[last][:, 0, :width].unsqueeze(2)
            col = w_out * w0
        else:
            torch.bmm(weights[last][:, :, :width].transpose(1, 2), dy, out=self.dh[:, :width])
            col = None
        self.cosines[last - 1]()
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
            torch.bmm(w.transpose(1, 2), e, out=self.dh[:, :fan_in])
            self.cosines[i - 1]()
            e = self.pre[i - 1]
            col = None
        return loss


class _MfnStep:
    """MFN: A = omega x + phi for all filters at once `[B, k*hidden, P]`, g_i = sin(A_i); z_0 = g_0,
    u_i = L_i z_i + b_i, z_{i+1} = u_i * g_{i+1}; the last u is the output. Activations neuron-major, z_i with a row of
    ones for the bias. (On a grid the filters are separable into sine tables, but the batched products of many tiny
    [28, 2] x [2, 28] tables that this needs measured slower here than the sines and cosines over the grid.)"""

    def __init__(self, spec: FieldSpec, flat: torch.Tensor, grad: torch.Tensor, coords: torch.Tensor,
                 target: torch.Tensor) -> None:
        batch, pixels, channels = target.shape
        self.k, self.hidden = spec.filters, spec.hidden
        self.bank, self.grad_bank = filter_bank(spec, flat), filter_bank(spec, grad)
        self.linears, self.grad_linears = _mfn_linear_blocks(spec, flat), _mfn_linear_blocks(spec, grad)

        def buffer(*shape: int) -> torch.Tensor:
            return torch.empty(shape, dtype=flat.dtype, device=flat.device)

        neurons = self.k * self.hidden
        self.x = torch.cat([coords.t(), torch.ones_like(coords[:, :1]).t()])  # [3, P], shared by all INRs
        self.bank_copy = buffer(batch, neurons, 3)  # contiguous, for one [B*k*hidden, 3] x [3, P] product
        self.a = buffer(batch, neurons, pixels)  # A, then dloss/dA = cos(A) * dloss/dg
        self.g = buffer(batch, neurons, pixels)  # g_i = sin(A_i) for i >= 1, then dloss/du_{i-1} (filter 0's unused)
        self.z = []  # z_i with a ones row [B, hidden + 1, P]
        for _ in range(self.k):
            z = buffer(batch, self.hidden + 1, pixels)
            z[:, self.hidden].fill_(1.0)
            self.z.append(z)
        self.u = [buffer(batch, self.hidden, pixels) for _ in range(self.k - 1)]
        self.dz = buffer(batch, self.hidden, pixels)
        self.grads_t = [buffer(batch, w.shape[2], w.shape[1]) for w in self.linears[:-1]]
        self.grads_t.append(buffer(*self.linears[-1].shape))
        self.grad_bank_t = buffer(3, batch * neurons)
        self.target = target.transpose(1, 2).contiguous()  # [B, C, P]
        self.y = buffer(batch, channels, pixels)

        # the elementwise passes around the sines, bound to their buffers once (inr.native): forward g_0 = sin(A_0)
        # into z_0; g_{i+1} = sin(A_{i+1}), z_{i+1} = u_i g_{i+1}; backward, in place, dloss/du_i = g_{i+1} dz and
        # dloss/dA_{i+1} = cos(A_{i+1}) u_i dz, and dloss/dA_0 = cos(A_0) dz (dz = dloss/dz_{i+1}: dloss/dy with one
        # output channel for the last z, else self.dz)
        a, g, hidden = self.a, self.g, self.hidden
        last_dz = self.y if channels == 1 else self.dz
        self.sine0 = native.bind_sin(self._filter(a, 0), self.z[0][:, :hidden])
        self.sin_muls = [native.bind_sin_mul(self._filter(a, i + 1), self.u[i], self._filter(g, i + 1),
                                             self.z[i + 1][:, :hidden]) for i in range(self.k - 1)]
        self.backs = [native.bind_mfn_back(self._filter(a, i + 1), self._filter(g, i + 1), self.u[i],
                                           last_dz if i == self.k - 2 else self.dz,
                                           du=self._filter(g, i + 1), da=self._filter(a, i + 1))
                      for i in range(self.k - 1)]
        self.cosine0 = native.bind_cos_mul(self._filter(a, 0), last_dz if self.k == 1 else self.dz,
                                           out=self._filter(a, 0))

    def _filter(self, t: torch.Tensor, i: int) -> torch.Tensor:
        return t[:, i * self.hidden:(i + 1) * self.hidden]

    def __call__(self) -> torch.Tensor:
        k, hidden, lin = self.k, self.hidden, self.linears
        batch = self.y.shape[0]
        bank = self.bank_copy.copy_(self.bank)
        torch.mm(bank.view(-1, 3), self.x, out=self.a.view(-1, self.a.shape[2]))
        self.sine0()
        for i in range(k - 1):
            torch.bmm(lin[i], self.z[i], out=self.u[i])
            self.sin_muls[i]()  # g_{i+1} = sin(A_{i+1}), z_{i+1} = u_i * g_{i+1}
        y = torch.bmm(lin[k - 1], self.z[k - 1], out=self.y)  # [B, C, P]
        r = y.sub_(self.target)
        n = r.shape[1] * r.shape[2]
        loss = torch.linalg.vector_norm(r, dim=(1, 2)).square_().div_(n)
        du = r.mul_(2.0 / n)  # dloss/dy [B, C, P]

        # dz (self.dz, or dloss/dy itself with one output channel): dloss/dz_i up to a per-neuron factor w_out
        # [B, hidden, 1] where it is not None: with one output channel dloss/dz = w_last * dy, and w_last goes into
        # the small gradient tensors instead.
        if du.shape[1] == 1:
            w_out = lin[k - 1][:, 0, :hidden].unsqueeze(2)
        else:
            torch.bmm(lin[k - 1][:, :, :hidden].transpose(1, 2), du, out=self.dz)
            w_out = None
        da_factor = [None] * k  # self.a's filter i holds dloss/dA_i up to da_factor[i] where that is not None
        torch.bmm(du, self.z[k - 1].transpose(1, 2), out=self.grads_t[k - 1])  # [B, C, hidden + 1]
        self.grad_linears[k - 1].copy_(self.grads_t[k - 1])
        for i in reversed(range(k - 1)):  # from dz_{i+1} to layer i's gradients and dz_i
            # dloss/du_i = g_{i+1} dz and dloss/dA_{i+1} = cos(A_{i+1}) u_i dz (both up to w_out), in place
            self.backs[i]()
            du, da_factor[i + 1] = self._filter(self.g, i + 1), w_out
            g_t = torch.bmm(self.z[i], du.transpose(1, 2), out=self.grads_t[i]).transpose(1, 2)  # [B, out, in + 1]
            if w_out is None:
                self.grad_linears[i].copy_(g_t)
                w = lin[i][:, :, :hidden]
            else:
                torch.mul(g_t, w_out, out=self.grad_linears[i])
                w = lin[i][:, :, :hidden] * w_out
            torch.bmm(w.transpose(1, 2), du, out=self.dz)
            w_out = None
        self.cosine0()  # z_0 = g_0 (with one filter and one channel, dz is dy broadcast)
        da_factor[0] = w_out
        da = self.a
        torch.mm(self.x, da.view(-1, da.shape[2]).t(), out=self.grad_bank_t)  # [3, B*k*hidden]
        grad_bank = self.grad_bank_t.view(3, batch, k * hidden).permute(1, 2, 0)  # [B, k*hidden, 3]
        for i in range(k):
            if da_factor[i] is None:
                self._filter(self.grad_bank, i).copy_(self._filter(grad_bank, i))
            else:
                torch.mul(self._filter(grad_bank, i), da_factor[i], out=self._filter(self.grad_bank, i))
        return loss


def mse_and_grad(spec: FieldSpec, params: Params, coords: torch.Tensor, target: torch.Tensor,
                 grads: Params | None = None) -> tuple[torch.Tensor, Params]:
    """Per-INR mean squared error `[B]` of the fields at `coords` (`[P, 2]`) against `target` (`[B, P, out_dim]`),
    and its gradient with respect to every parameter (the gradient of the sum of the per-INR losses, so each INR
    gets its own gradient). Results are written into `grads` (same names and shapes as params) when given.

    A loop calling this repeatedly should hold its parameters packed and call a `FusedStep` instead."""
    if grads is None:
        grads = {name: torch.empty_like(t) for name, t in params.items()}
    any_param = next(iter(params.values()))
    flat = pack(spec, params, any_param.new_empty(any_param.shape[0], packed_size(spec)))
    grad = torch.empty_like(flat)
    loss = FusedStep(spec, flat, grad, coords, target)()
    for name, view in packed_views(spec, grad).items():
        grads[name].copy_(view)
    return loss, grads
