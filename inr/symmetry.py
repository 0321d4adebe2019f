"""Permutation symmetries of INRs: reorder each hidden layer's neurons without changing the function.

SIREN: the usual MLP symmetry, hidden layer l's neurons are the rows of layer{l}.weight/bias and the columns of
layer{l+1}.weight. MFN (paper eq. 5): hidden layer l (z^(l+1)) owns the rows of filter{l}.omega/phi, the rows of
linear{l-1}.weight/bias (l >= 1) and the columns of linear{l}.weight. Both follow from where each tensor sits in the
graph (`inr.graph.param_roles`), so a permutation of the INR is exactly a permutation of its graph's nodes.

A permutation set is a list with one `[B, hidden]` long tensor per hidden layer: new neuron j of layer l is old
neuron `perms[l][b, j]` (i.e. `new = old[perm]`).
"""

from __future__ import annotations

import torch

from inr.fields import Params, check_params
from inr.graph import graph_layout
from inr.spec import FieldSpec


def random_permutations(spec: FieldSpec, batch: int, generator: torch.Generator | None = None,
                        device: torch.device | str | None = None) -> list[torch.Tensor]:
    """One uniformly random permutation per INR and hidden layer: a list of `[B, hidden]` long tensors.

    Drawn on the generator's device (CPU for a default generator) and moved to `device`."""
    layout = graph_layout(spec)
    gen_device = generator.device if generator is not None else torch.device("cpu")
    perms = []
    for layer in layout.hidden_layers:
        keys = torch.rand(batch, layout.layer_sizes[layer], generator=generator, device=gen_device)
        perms.append(keys.argsort(dim=1).to(device if device is not None else gen_device))
    return perms


def _check_perms(spec: FieldSpec, perms: list[torch.Tensor], batch: int) -> list[torch.Tensor]:
    layout = graph_layout(spec)
    hidden = layout.hidden_layers
    if len(perms) != len(hidden):
        raise ValueError(f"expected {len(hidden)} permutations (one per hidden layer), got {len(perms)}")
    out = []
    for layer, perm in zip(hidden, perms, strict=True):
        size = layout.layer_sizes[layer]
        if perm.dim() == 1:
            perm = perm.unsqueeze(0).expand(batch, -1)
        if tuple(perm.shape) != (batch, size):
            raise ValueError(f"permutation of hidden layer {layer}: expected shape [{batch}, {size}], "
                             f"got {list(perm.shape)}")
        if not torch.equal(perm.sort(dim=1).values, torch.arange(size, device=perm.device).expand(batch, -1)):
            raise ValueError(f"permutation of hidden layer {layer} is not a permutation of 0..{size - 1}")
        out.append(perm.long())
    return out


def apply_permutations(spec: FieldSpec, params: Params, perms: list[torch.Tensor]) -> Params:
    """Params with hidden neurons reordered by `perms` (one `[B, hidden]` or `[hidden]` tensor per hidden layer).
    The field is unchanged up to rounding."""
    batch = check_params(spec, params)
    layout = graph_layout(spec)
    perms = _check_perms(spec, perms, batch)
    perm_of_layer = dict(zip(layout.hidden_layers, perms, strict=True))
    out = dict(params)
    for role in layout.weights:  # [B, out, in]: rows belong to dst_layer, columns to src_layer
        w = out[role.name]
        if role.dst_layer in perm_of_layer:
            p = perm_of_layer[role.dst_layer].to(w.device)
            w = torch.gather(w, 1, p.unsqueeze(2).expand(-1, -1, w.shape[2]))
        if role.src_layer in perm_of_layer:
            p = perm_of_layer[role.src_layer].to(w.device)
            w = torch.gather(w, 2, p.unsqueeze(1).expand(-1, w.shape[1], -1))
        out[role.name] = w
    for role in layout.biases:  # [B, n]
        if role.layer in perm_of_layer:
            out[role.name] = torch.gather(out[role.name], 1, perm_of_layer[role.layer].to(out[role.name].device))
    return out


def permute(spec: FieldSpec, params: Params, generator: torch.Generator | None = None) -> Params:
    """Random hidden-neuron permutations, one per INR and hidden layer (eq. 5 for MFN): the same functions,
    different weights."""
    batch = check_params(spec, params)
    device = next(iter(params.values())).device
    return apply_permutations(spec, params, random_permutations(spec, batch, generator, device=device))


def node_permutation(spec: FieldSpec, perms: list[torch.Tensor]) -> torch.Tensor:
    """How graph nodes move under `perms`: `[B, N]` (or `[N]` if every perm is 1-D) node indices such that the graph
    of the permuted INR equals the original graph with nodes taken in this order:
    `to_graph(permuted).node_features[b] == to_graph(original).node_features[b, idx[b]]` and
    `edge_features[b] == original.edge_features[b][idx[b]][:, idx[b]]`. Inputs and outputs stay in place."""
    layout = graph_layout(spec)
    unbatched = all(p.dim() == 1 for p in perms)
    batch = 1 if unbatched else max(p.shape[0] for p in perms if p.dim() == 2)
    perms = _check_perms(spec, perms, batch)
    device = perms[0].device if perms else torch.device("cpu")
    idx = torch.arange(layout.num_nodes, device=device).repeat(batch, 1)
    for layer, perm in zip(layout.hidden_layers, perms, strict=True):
        start = layout.layer_offsets[layer]
        idx[:, start:start + layout.layer_sizes[layer]] = perm + start
    return idx[0] if unbatched else idx
