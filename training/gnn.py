"""WeightMessageGNN: message passing over an INR's computation graph in which each edge's weight *scales* the
message it carries, as the INR's own forward pass (and its backpropagation) do.

Why: the Relational Transformer (training.encoder) turns every weight into a 16-dimensional embedding and runs an MLP
per edge in every layer; most of its cost is there (E = 1,120 edges for a SIREN 2-32-32-1, against N = 67 neurons),
and a weight only enters through that embedding. Weight-space networks that simulate the forward pass instead, where
a neuron's message is a weighted sum of its inputs' states (the neural-functional and graph-metanetwork line: Navon
et al. 2023, Zhou et al. 2023, Kalogeropoulos et al. 2024), keep per-edge work to a few multiply-adds per channel,
so that the cost sits in per-neuron MLPs (dense matrix products): 4 layers of it train at 2.4x (SIREN) and 1.6x
(MFN) the rate of the RT's 2 (bench.encoder). On the validation split of MNIST-5k it matched positive pairs and
probed the class far better (docs/RESULTS.md, "Round 10").

One layer, in words (h: a neuron's state, d_node wide; W: a weight tensor from layer s to layer t, standardised):
- channels: K functions of each weight, the weight itself and K - 1 learned ones (a small MLP per tensor and layer),
  phi(W) [B, n_t, n_s, K];
- forward messages, layer s -> t: m_t = sum_i sum_k phi_k(W_ti) (A_k LN(h_s,i)) / sqrt(n_s), one batched matrix
  product per tensor (A: a learned map per tensor, direction and channel);
- backward messages, layer t -> s: the same with W transposed, so inputs hear from above and outputs from below;
- a hidden layer's mean state, mapped, reaches each of its neurons (a DeepSets term: a neuron knows its layer);
- with `multiplicative` (MFN): a hidden layer that hears forward messages along two tensors (its filter's
  frequencies, the linear layer below) also hears their elementwise product, mapped, as an MFN multiplies the two;
- pre-norm residual updates: h <- h + out(m); h <- h + FFN(LN(h)) (with `gated_ff`, a GLU-style FFN).

Every operation is equivariant to permutations of a hidden layer's neurons (sums over a permuted layer, per-neuron
maps shared within a layer); the readout pools hidden layers by mean and max (`GraphEncoder.pool_nodes`), so the
features are invariant. No per-edge state is kept: the weights stay what they are, and the network reads them anew in
every layer through that layer's channel functions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import inr
from training.graph_encoder import Block, EncoderConfig, GatedMLP, GraphEncoder, mlp

# Edges per forward pass without autograd: this encoder keeps only weight_channels numbers per edge (the RT keeps
# 8 * d_attn), so a CPU chunk can hold ~16x the RT's 16,384 edges and still stay in cache.
GNN_INFERENCE_EDGES = 262_144


def scaled_sum(weights: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """sum_i sum_k weights[b, o, i, k] * states[b, i, k, :] / sqrt(n_in) -> [B, o, d]: one batched matrix product.
    The 1/sqrt(n_in) keeps a message's scale independent of the layer's width (standardised weights, unit states)."""
    b, o, i, k = weights.shape
    return (weights.reshape(b, o, i * k) @ states.reshape(b, i * k, -1)) / math.sqrt(i)


class MessageLayer(nn.Module):
    """One round of weight-scaled messages along every weight tensor, both directions (see the module docstring)."""

    def __init__(self, config: EncoderConfig, blocks: list[Block], edge_dim: int, hidden_layers: list[int]) -> None:
        super().__init__()
        d, dm, k = config.d_node, config.d_message, config.weight_channels
        if k < edge_dim:
            raise ValueError(f"EncoderConfig.weight_channels ({k}) must be at least the edge features ({edge_dim})")
        self.channels, self.d_message = k, dm
        self.hidden_layers = list(hidden_layers)
        self.norm0 = nn.LayerNorm(d)
        # learned functions of each weight beside the weight itself, per tensor
        self.weight_fns = nn.ModuleList([mlp(edge_dim, 16, k - edge_dim) for _ in blocks]) if k > edge_dim else None
        self.send_forward = nn.ModuleList([nn.Linear(d, k * dm, bias=False) for _ in blocks])
        self.send_backward = nn.ModuleList([nn.Linear(d, k * dm, bias=False) for _ in blocks])
        self.layer_mean = nn.Linear(d, dm, bias=False)
        self.product = nn.Linear(dm, dm, bias=False) if config.multiplicative else None
        self.out = nn.Linear(dm, d)
        self.dropout = nn.Dropout(config.dropout)
        self.norm1 = nn.LayerNorm(d)
        self.ff = (GatedMLP if config.gated_ff else mlp)(d, config.d_ff, d)

    def forward(self, hs: list[torch.Tensor], ws: list[torch.Tensor], blocks: list[Block]) -> list[torch.Tensor]:
        """hs: per graph layer [B, n_l, d]; ws: per weight tensor [B, n_out, n_in, Fe] standardised."""
        a = [self.norm0(h) for h in hs]
        messages: list[torch.Tensor | None] = [None] * len(hs)
        forward: list[list[torch.Tensor]] = [[] for _ in hs]  # forward messages per receiving layer

        def receive(layer: int, m: torch.Tensor) -> None:
            messages[layer] = m if messages[layer] is None else messages[layer] + m

        for j, (blk, w) in enumerate(zip(blocks, ws, strict=True)):
            phi = w if self.weight_fns is None else torch.cat([w, self.weight_fns[j](w)], dim=-1)  # [B, o, i, K]
            k, dm = self.channels, self.d_message
            sent_up = self.send_forward[j](a[blk.src]).unflatten(-1, (k, dm))  # [B, i, K, dm]
            forward[blk.dst].append(scaled_sum(phi, sent_up))  # [B, o, dm]
            receive(blk.dst, forward[blk.dst][-1])
            sent_down = self.send_backward[j](a[blk.dst]).unflatten(-1, (k, dm))  # [B, o, K, dm]
            receive(blk.src, scaled_sum(phi.transpose(1, 2), sent_down))  # [B, i, dm]
        for layer in self.hidden_layers:
            receive(layer, self.layer_mean(a[layer].mean(1, keepdim=True)))  # [B, 1, dm], to every neuron
            if self.product is not None and len(forward[layer]) == 2:  # filter and linear messages, multiplied
                receive(layer, self.product(forward[layer][0] * forward[layer][1]))  # [B, n, dm]
        hs = [h + self.dropout(self.out(m)) for h, m in zip(hs, messages, strict=True)]
        return [h + self.dropout(self.ff(self.norm1(h))) for h in hs]


class WeightMessageGNN(GraphEncoder):
    """Permutation-invariant encoder of INR weights with weight-scaled messages: `model(graph) -> [B, feature_dim]`,
    `model.encode_params(params) -> [B, feature_dim]`. Uses EncoderConfig's d_node, layers, d_ff, d_message,
    weight_channels, gated_ff, multiplicative, feature_dim, dropout (and the shared canonicalize / neuron_stats /
    probe_points)."""

    inference_edges = GNN_INFERENCE_EDGES

    def __init__(self, spec: inr.FieldSpec, config: EncoderConfig | None = None) -> None:
        config = config or EncoderConfig(kind="gnn")
        if config.kind != "gnn":
            raise ValueError(f"WeightMessageGNN needs EncoderConfig.kind 'gnn', got {config.kind!r}")
        super().__init__(spec, config)
        self.layers = nn.ModuleList([MessageLayer(config, self.edge_blocks, self.edge_dim, self.hidden_layers)
                                     for _ in range(config.layers)])
        self.final_norm = nn.LayerNorm(config.d_node)
        readout_dim = self.readout_nodes * config.d_node
        self.readout = nn.Sequential(nn.LayerNorm(readout_dim), nn.Linear(readout_dim, config.feature_dim))

    def forward(self, graph: inr.Graph, params: inr.Params | None = None) -> torch.Tensor:
        """Features `[B, feature_dim]` of a batch of INR graphs. `params` are needed only with probe features."""
        h, edges = self.initial_states(graph, params)  # [B, N, d], [B, E, Fe]
        hs, ws = self.split_layers(h), self.split_blocks(edges)  # per graph layer / per weight tensor
        for layer in self.layers:
            hs = layer(hs, ws, self.edge_blocks)
        return self.readout(self.pool_nodes([self.final_norm(h) for h in hs]))
