"""Graph view of INRs: the computation graph with biases as node features and weights as edge features.

Nodes, in order: the 2 input coordinates, then each hidden layer's neurons, then the out_dim outputs.

SIREN (paper eq. 3): hidden layer l is the output of layer{l}; layer{i}.weight [out, in] gives the edges from graph
layer i to graph layer i + 1 and layer{i}.bias the node features of graph layer i + 1 (Fn = 1).

MFN (paper eq. 4 and Figure 1): hidden layer l is z^(l+1) = (linear{l-1}(z^(l))) * sin(omega_l x + phi_l). Edges from
the inputs to hidden layer l carry filter{l}.omega (the filters all read the input directly); hidden layer l -> l + 1
carry linear{l}.weight; the last hidden layer -> outputs carry the output weights. Node features (Fn = 2) of hidden
layer l: [bias of linear{l-1} (0 for l = 0), phi of filter l]; outputs: [output bias, 0]; inputs: zeros.

Edge features are one scalar per edge (Fe = 1), stored raw (SIREN's omega0 is not folded in). Every tensor here keeps
the [out, in] layout of a weight matrix, so an element (o, i) is the edge from source neuron i to destination
neuron o; the edge order of `edge_index` is the parameter order of `FieldSpec.param_shapes`, each weight flattened
row-major. That makes the sparse edge values a plain concatenation of the flattened weights, and the dense tensor one
index_copy of them: no Python loop over INRs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from inr.fields import Params, check_params
from inr.spec import FieldSpec

NODE_INPUT, NODE_HIDDEN, NODE_OUTPUT = 0, 1, 2
EDGE_FEATURES = 1


@dataclass(frozen=True)
class WeightRole:
    """A weight tensor [out, in] whose elements are the edges from graph layer `src_layer` to `dst_layer`."""

    name: str
    src_layer: int
    dst_layer: int


@dataclass(frozen=True)
class BiasRole:
    """A vector [n] that is feature `slot` of the nodes of graph layer `layer`."""

    name: str
    layer: int
    slot: int


@dataclass(frozen=True)
class GraphLayout:
    """The batch-free part of the graph of every INR of one spec. Tensors are on the CPU; treat them as read-only
    (layouts are cached per spec and shared)."""

    spec: FieldSpec
    num_nodes: int  # N
    node_features: int  # Fn
    edge_features: int  # Fe
    layer_sizes: tuple[int, ...]  # neurons per graph layer, input first
    layer_offsets: tuple[int, ...]  # index of each graph layer's first node
    node_layer: torch.Tensor  # [N] long, 0 = input, ..., len(layer_sizes) - 1 = output
    node_kind: torch.Tensor  # [N] long, NODE_INPUT / NODE_HIDDEN / NODE_OUTPUT
    node_position: torch.Tensor  # [N] long positional-embedding ids; one shared id per hidden layer
    num_positions: int
    edge_index: torch.Tensor  # [2, E] long (src, dst)
    edge_mask: torch.Tensor  # [N, N] bool, edge_mask[src, dst]
    edge_flat: torch.Tensor  # [E] long, src * N + dst: where each edge goes in a flattened [N * N] dense tensor
    weights: tuple[WeightRole, ...]  # in edge order
    biases: tuple[BiasRole, ...]

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    @property
    def hidden_layers(self) -> tuple[int, ...]:
        """Graph-layer ids of the hidden (permutable) layers."""
        return tuple(range(1, len(self.layer_sizes) - 1))


@dataclass
class Graph:
    """Graphs of a batch of B INRs of one spec (the batch-free fields are shared by all of them)."""

    node_features: torch.Tensor  # [B, N, Fn] float
    edge_features: torch.Tensor  # [B, N, N, Fe] float, edge_features[b, src, dst]; zero where there is no edge
    edge_mask: torch.Tensor  # [N, N] bool
    edge_index: torch.Tensor  # [2, E] long (src, dst)
    edge_values: torch.Tensor  # [B, E, Fe] float, the same edges in sparse form
    node_layer: torch.Tensor  # [N] long
    node_kind: torch.Tensor  # [N] long
    node_position: torch.Tensor  # [N] long
    num_positions: int

    @property
    def batch_size(self) -> int:
        return int(self.node_features.shape[0])

    @property
    def num_nodes(self) -> int:
        return int(self.node_features.shape[1])


def param_roles(spec: FieldSpec) -> tuple[tuple[WeightRole, ...], tuple[BiasRole, ...]]:
    """Where each parameter tensor sits in the graph (also used by `inr.symmetry` to permute neurons)."""
    if spec.arch == "siren":
        weights = tuple(WeightRole(f"layer{i}.weight", i, i + 1) for i in range(spec.layers))
        biases = tuple(BiasRole(f"layer{i}.bias", i + 1, 0) for i in range(spec.layers))
        return weights, biases
    k = spec.filters
    weights = tuple(WeightRole(f"filter{i}.omega", 0, i + 1) for i in range(k))
    weights += tuple(WeightRole(f"linear{i}.weight", i + 1, i + 2) for i in range(k))
    biases = tuple(BiasRole(f"filter{i}.phi", i + 1, 1) for i in range(k))
    biases += tuple(BiasRole(f"linear{i}.bias", i + 2, 0) for i in range(k))
    return weights, biases


@functools.lru_cache(maxsize=64)
def graph_layout(spec: FieldSpec) -> GraphLayout:
    """Node ids, edge structure and parameter placement for `spec` (cached; shared, read-only tensors)."""
    sizes = tuple(spec.layer_sizes())
    offsets = tuple(sum(sizes[:i]) for i in range(len(sizes)))
    n = sum(sizes)
    last = len(sizes) - 1
    node_layer = torch.cat([torch.full((s,), i, dtype=torch.long) for i, s in enumerate(sizes)])
    node_kind = torch.full((n,), NODE_HIDDEN, dtype=torch.long)
    node_kind[: sizes[0]] = NODE_INPUT
    node_kind[offsets[last]:] = NODE_OUTPUT
    # Positional ids: inputs 0..1, then one shared id per hidden layer, then one id per output neuron.
    num_hidden = last - 1
    positions = [torch.arange(sizes[0])]
    positions += [torch.full((sizes[layer],), sizes[0] + layer - 1, dtype=torch.long) for layer in range(1, last)]
    positions.append(torch.arange(sizes[last]) + sizes[0] + num_hidden)
    node_position = torch.cat(positions)
    num_positions = sizes[0] + num_hidden + sizes[last]

    weights, biases = param_roles(spec)
    shapes = spec.param_shapes()
    srcs, dsts = [], []
    for role in weights:
        n_out, n_in = shapes[role.name]
        assert (n_out, n_in) == (sizes[role.dst_layer], sizes[role.src_layer]), role
        dst, src = torch.meshgrid(torch.arange(n_out), torch.arange(n_in), indexing="ij")  # row-major over [out, in]
        srcs.append(src.reshape(-1) + offsets[role.src_layer])
        dsts.append(dst.reshape(-1) + offsets[role.dst_layer])
    edge_index = torch.stack([torch.cat(srcs), torch.cat(dsts)])
    edge_flat = edge_index[0] * n + edge_index[1]
    edge_mask = torch.zeros(n * n, dtype=torch.bool)
    edge_mask[edge_flat] = True
    if int(edge_mask.sum()) != edge_index.shape[1]:
        raise AssertionError("duplicate edges in the graph layout")
    return GraphLayout(
        spec=spec, num_nodes=n, node_features=1 if spec.arch == "siren" else 2, edge_features=EDGE_FEATURES,
        layer_sizes=sizes, layer_offsets=offsets, node_layer=node_layer, node_kind=node_kind,
        node_position=node_position, num_positions=num_positions, edge_index=edge_index,
        edge_mask=edge_mask.reshape(n, n), edge_flat=edge_flat, weights=weights, biases=biases,
    )


def edge_values(spec: FieldSpec, params: Params) -> torch.Tensor:
    """Sparse edge features `[B, E, Fe]` in `graph_layout(spec).edge_index` order: the flattened weights."""
    layout = graph_layout(spec)
    batch = check_params(spec, params)
    return torch.cat([params[r.name].reshape(batch, -1) for r in layout.weights], dim=1).unsqueeze(-1)


def node_features(spec: FieldSpec, params: Params) -> torch.Tensor:
    """Node features `[B, N, Fn]`: biases (and MFN phases) at their nodes, zeros elsewhere."""
    layout = graph_layout(spec)
    batch = check_params(spec, params)
    ref = params[layout.biases[0].name]
    out = ref.new_zeros(batch, layout.num_nodes, layout.node_features)
    for role in layout.biases:
        start = layout.layer_offsets[role.layer]
        out[:, start:start + layout.layer_sizes[role.layer], role.slot] = params[role.name]
    return out


def dense_edges(spec: FieldSpec, values: torch.Tensor) -> torch.Tensor:
    """Scatter sparse edge values `[B, E, Fe]` into the dense `[B, N, N, Fe]` tensor (zeros where no edge)."""
    layout = graph_layout(spec)
    batch, num_edges, fe = values.shape
    if num_edges != layout.num_edges:
        raise ValueError(f"expected {layout.num_edges} edges for this spec, got {num_edges}")
    n = layout.num_nodes
    dense = values.new_zeros(batch, n * n, fe)
    dense.index_copy_(1, layout.edge_flat.to(values.device), values)
    return dense.reshape(batch, n, n, fe)


def to_graph(spec: FieldSpec, params: Params, dense: bool = True) -> Graph:
    """The computation graphs of a batch of INRs. `dense=False` skips building the [B, N, N, Fe] tensor (its
    `edge_features` is then an empty [B, 0, 0, Fe] tensor) for encoders that only use the sparse form."""
    layout = graph_layout(spec)
    values = edge_values(spec, params)
    device = values.device
    if dense:
        edges = dense_edges(spec, values)
    else:
        edges = values.new_zeros(values.shape[0], 0, 0, values.shape[2])
    return Graph(
        node_features=node_features(spec, params), edge_features=edges,
        edge_mask=layout.edge_mask.to(device), edge_index=layout.edge_index.to(device), edge_values=values,
        node_layer=layout.node_layer.to(device), node_kind=layout.node_kind.to(device),
        node_position=layout.node_position.to(device), num_positions=layout.num_positions,
    )
