"""The symmetries of sine networks beyond permutations, and a canonical form that removes them.

A hidden neuron of a SIREN computes h = sin(omega0 (w . x + b)); of an MFN, a filter g = sin(omega . x + phi) times
(for every hidden layer but the first) the output of a linear layer. Besides permutations, three exact symmetries
change the weights and not the function:

- period: the phase theta = omega0 b (SIREN) or phi (MFN) only matters modulo 2 pi;
- half period: theta + pi negates the neuron (sin(t + pi) = -sin t), undone by negating its outgoing weights;
- sign: negating the incoming weights and the phase negates the neuron (sin is odd), undone the same way;
- MFN only, scale: hidden layer l >= 1 multiplies its filter by a linear layer's output a = W z + c, so scaling
  that row of W and c by s > 0 and the neuron's outgoing weights by 1 / s changes nothing.

INRs fitted from independent initialisations land anywhere in these orbits. `canonicalize` moves every hidden neuron
to one representative: phase in [0, pi / 2] (by the half-period and sign moves), and for MFN layers >= 1 a linear row
(weights and bias together) of unit norm. The field is unchanged (up to float rounding); what remains is the
permutation symmetry, which the Relational Transformer is built to ignore. Ties (a phase exactly at a boundary) have
measure zero.
"""

from __future__ import annotations

import math

import torch

from inr.fields import Params, check_params
from inr.spec import FieldSpec


def _canonical_phase(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-> (phase in [0, pi/2], flip_in, flip_out): theta [B, n] any real; flip_in / flip_out are +-1 factors for the
    neuron's incoming weights and its outgoing weights."""
    theta = torch.remainder(theta + math.pi, 2 * math.pi) - math.pi  # [-pi, pi)
    half = theta.abs() > math.pi / 2  # move by pi into [-pi/2, pi/2], negating the neuron
    theta = torch.where(half, theta - torch.copysign(torch.full_like(theta, math.pi), theta), theta)
    neg = theta < 0  # sign move: negate incoming weights and phase, negating the neuron again
    theta = theta.abs()
    one = torch.ones_like(theta)
    flip_in = torch.where(neg, -one, one)
    flip_out = torch.where(half ^ neg, -one, one)
    return theta, flip_in, flip_out


def canonicalize(spec: FieldSpec, params: Params) -> Params:
    """The same fields, each hidden neuron moved to its canonical representative (see the module docstring).
    Returns new tensors; `params` is not modified. Applying it twice gives the same result as once."""
    check_params(spec, params)
    out = {name: t.clone() for name, t in params.items()}
    if spec.arch == "siren":
        for i in range(spec.layers - 1):  # hidden layer i: rows of layer{i}, columns of layer{i+1}
            w, b, nxt = f"layer{i}.weight", f"layer{i}.bias", f"layer{i + 1}.weight"
            theta, flip_in, flip_out = _canonical_phase(spec.omega0 * out[b])
            out[b] = theta / spec.omega0
            out[w] = out[w] * flip_in[:, :, None]
            out[nxt] = out[nxt] * flip_out[:, None, :]
        return out
    for i in range(spec.filters):  # hidden layer i: filter i, rows of linear{i-1}, columns of linear{i}
        om, phi, nxt = f"filter{i}.omega", f"filter{i}.phi", f"linear{i}.weight"
        theta, flip_in, flip_out = _canonical_phase(out[phi])
        out[phi] = theta
        out[om] = out[om] * flip_in[:, :, None]
        out[nxt] = out[nxt] * flip_out[:, None, :]
        if i > 0:  # the multiplying linear row (weights and bias) to unit norm, its scale moved downstream
            w, c = f"linear{i - 1}.weight", f"linear{i - 1}.bias"
            norm = torch.sqrt(out[w].square().sum(-1) + out[c].square())  # [B, hidden]
            norm = torch.where(norm > 0, norm, torch.ones_like(norm))
            out[w] = out[w] / norm[:, :, None]
            out[c] = out[c] / norm
            out[nxt] = out[nxt] * norm[:, None, :]
    return out
