"""Relational Transformer over the computation graph of an INR (Zhang et al. 2023, "Neural networks are graphs";
Kofinas et al. 2024), written for CINR's `inr.Graph`.

Design, in words:
- Input embeddings (`training.graph_encoder.GraphEncoder`, shared with the other encoder): node and edge features
  standardised per group with dataset statistics; a small MLP embeds the scalars; a learned embedding of the node's
  position id (`inr.Graph.node_position`: one id per input/output neuron, ONE id shared by all neurons of a hidden
  layer) and of the edge's group is added.
- Attention along existing edges only. Every directed edge s -> t gives two messages: s to t ("forward") and t to s
  ("backward"), so input neurons hear from the layer above and output neurons from the layer below. Queries, keys and
  values are conditioned on the edge: q = Wq h_receiver + Eq(e), k = Wk h_sender + Ek(e), v = Wv h_sender * Em(e) +
  Ev(e), with separate edge projections per direction. The softmax runs over each receiver's incident edges (a
  segment softmax with `index_add_`), never over the dense N x N matrix: a SIREN 2-32-32-1 has 1,120 edges against
  4,489 node pairs.
- Edge updates for existing edges only: e <- LN(e + MLP(e W_e + h_s W_s + h_t W_t)), then a feed-forward block.
- Readout, invariant to hidden-neuron permutations: mean and max over each hidden layer's neurons, the input and
  output neurons' features in their fixed order, and the mean edge feature per edge group, then a linear map to
  `feature_dim`.

Optional extension (`probe_points > 0`, off by default as in the paper): probe features, the activation of every
neuron at `probe_points` learned input coordinates, embedded and added to the node embeddings. They make the encoder
query the field; the paper's results, and ours by default, use weights only.

`build_encoder(spec, config)` makes the encoder `config.kind` names: this one, or `training.gnn.WeightMessageGNN`.
"""

from __future__ import annotations

import math

import torch
from torch import nn

import inr
from training.gnn import WeightMessageGNN
from training.graph_encoder import (
    INFERENCE_EDGES,
    INFERENCE_EDGES_GPU,
    NEURON_STATS,
    Block,
    EncoderConfig,
    GraphEncoder,
    layer_activations,
    mlp,
    normalization_sample,
)

__all__ = ["INFERENCE_EDGES", "INFERENCE_EDGES_GPU", "NEURON_STATS", "EncoderConfig", "GraphEncoder", "RTLayer",
           "RelationalTransformer", "WeightMessageGNN", "build_encoder", "layer_activations", "normalization_sample"]


def build_encoder(spec: inr.FieldSpec, config: EncoderConfig | None = None) -> GraphEncoder:
    """The encoder `config.kind` names, for INRs of `spec`."""
    config = config or EncoderConfig()
    return WeightMessageGNN(spec, config) if config.kind == "gnn" else RelationalTransformer(spec, config)


class RTLayer(nn.Module):
    """One Relational Transformer block: edge-conditioned attention along edges, node FFN, edge update.

    Works block by block: `hs[l]` [B, n_l, dn] are graph layer l's nodes, `es[j]` [B, n_out, n_in, de] block j's
    edges. Messages only travel along edges, and each block is a dense tensor, so everything is batched matrix
    and broadcast arithmetic with memory and compute proportional to the number of edges E (not N^2), and no
    gather/scatter (slow on CPUs, in particular their backward)."""

    def __init__(self, cfg: EncoderConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.d_head = cfg.d_attn // cfg.heads
        dn, de, da = cfg.d_node, cfg.d_edge, cfg.d_attn
        self.node_qkv = nn.Linear(dn, 3 * da, bias=False)
        # Edge-conditioned parts of q, k, v (additive) and a multiplicative modulation of v, for both directions
        # (forward: sender src -> receiver dst; backward: sender dst -> receiver src).
        self.edge_qkvm = nn.Linear(de, 2 * 4 * da)
        self.attn_out = nn.Linear(da, dn)
        self.node_norm0 = nn.LayerNorm(dn)
        self.node_ff = mlp(dn, cfg.d_ff, dn)
        self.node_norm1 = nn.LayerNorm(dn)
        self.edge_in = nn.Linear(de, 2 * de)
        self.edge_src = nn.Linear(dn, 2 * de, bias=False)
        self.edge_dst = nn.Linear(dn, 2 * de, bias=False)
        self.edge_out = nn.Sequential(nn.GELU(), nn.Linear(2 * de, de))
        self.edge_norm0 = nn.LayerNorm(de)
        self.edge_ff = mlp(de, 2 * de, de)
        self.edge_norm1 = nn.LayerNorm(de)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, hs: list[torch.Tensor], es: list[torch.Tensor], blocks: list[Block]) -> tuple[
            list[torch.Tensor], list[torch.Tensor]]:
        hh, dh = self.heads, self.d_head
        scale = 1.0 / math.sqrt(dh)
        # unbind (not indexing): its backward stacks the gradients instead of zero-filling a full tensor per part.
        qkv = [self.node_qkv(h).unflatten(-1, (3, hh, dh)).unbind(2) for h in hs]  # per layer 3 x [B, n, H, dh]
        # Attention logits and values per block and direction; the softmax of a receiver spans all its edges.
        logits_f, logits_b, values_f, values_b = [], [], [], []
        lse_parts: list[list[torch.Tensor]] = [[] for _ in hs]  # per receiving layer: log-sum-exp over senders
        for blk, e in zip(blocks, es, strict=True):
            # Edge parts [B, o, i, H, dh]: forward (receiver o = dst, sender i = src) q, k, v, v-modulation, then
            # the same four for backward (receiver i, sender o).
            fq, fk, fv, fm, bq, bk, bv, bm = self.edge_qkvm(e).unflatten(-1, (8, hh, dh)).unbind(3)
            (q_src, k_src, v_src), (q_dst, k_dst, v_dst) = qkv[blk.src], qkv[blk.dst]  # [B, i|o, H, dh]
            lf = ((q_dst[:, :, None] + fq) * (k_src[:, None, :] + fk)).sum(-1) * scale  # [B, o, i, H]
            values_f.append(v_src[:, None, :] * fm + fv)  # [B, o, i, H, dh]
            lb = ((q_src[:, None, :] + bq) * (k_dst[:, :, None] + bk)).sum(-1) * scale  # [B, o, i, H]
            values_b.append(v_dst[:, :, None] * bm + bv)
            logits_f.append(lf)
            logits_b.append(lb)
            lse_parts[blk.dst].append(torch.logsumexp(lf, dim=2))  # [B, o, H]
            lse_parts[blk.src].append(torch.logsumexp(lb, dim=1))  # [B, i, H]
        lse = [torch.logsumexp(torch.stack(parts), dim=0) for parts in lse_parts]  # per layer [B, n, H]
        agg: list[torch.Tensor | None] = [None] * len(hs)
        for j, blk in enumerate(blocks):
            attn_f = self.dropout(torch.exp(logits_f[j] - lse[blk.dst][:, :, None]))  # [B, o, i, H]
            attn_b = self.dropout(torch.exp(logits_b[j] - lse[blk.src][:, None, :]))
            to_dst = (attn_f.unsqueeze(-1) * values_f[j]).sum(2)  # [B, o, H, dh]
            to_src = (attn_b.unsqueeze(-1) * values_b[j]).sum(1)  # [B, i, H, dh]
            agg[blk.dst] = to_dst if agg[blk.dst] is None else agg[blk.dst] + to_dst
            agg[blk.src] = to_src if agg[blk.src] is None else agg[blk.src] + to_src
        new_hs = []
        for h, a in zip(hs, agg, strict=True):
            h = self.node_norm0(h + self.dropout(self.attn_out(a.flatten(-2))))
            new_hs.append(self.node_norm1(h + self.dropout(self.node_ff(h))))

        # Edge update, for the existing edges only: e <- e + MLP(e W_e + h_src W_s + h_dst W_t).
        hs_src = [self.edge_src(h) for h in new_hs]  # per layer [B, n, 2de]
        hs_dst = [self.edge_dst(h) for h in new_hs]
        new_es = []
        for blk, e in zip(blocks, es, strict=True):
            upd = self.edge_in(e) + hs_src[blk.src][:, None, :] + hs_dst[blk.dst][:, :, None]  # [B, o, i, 2de]
            e = self.edge_norm0(e + self.dropout(self.edge_out(upd)))
            new_es.append(self.edge_norm1(e + self.dropout(self.edge_ff(e))))
        return new_hs, new_es


class RelationalTransformer(GraphEncoder):
    """Permutation-invariant encoder of INR weights: `model(graph) -> [B, feature_dim]`,
    `model.encode_params(params) -> [B, feature_dim]`."""

    def __init__(self, spec: inr.FieldSpec, config: EncoderConfig | None = None) -> None:
        config = config or EncoderConfig()
        if config.kind != "relational":
            raise ValueError(f"RelationalTransformer needs EncoderConfig.kind 'relational', got {config.kind!r}")
        super().__init__(spec, config)
        de = config.d_edge
        self.edge_embed = mlp(self.edge_dim, de, de)
        self.edge_group_embed = nn.Embedding(len(self.edge_blocks), de)
        nn.init.normal_(self.edge_group_embed.weight, std=0.02)  # small, as the position embedding (GraphEncoder)
        self.blocks = nn.ModuleList([RTLayer(config) for _ in range(config.layers)])
        readout_dim = self.readout_nodes * config.d_node + len(self.edge_blocks) * de
        self.readout = nn.Sequential(nn.LayerNorm(readout_dim), nn.Linear(readout_dim, config.feature_dim))

    def forward(self, graph: inr.Graph, params: inr.Params | None = None) -> torch.Tensor:
        """Features `[B, feature_dim]` of a batch of INR graphs. `params` are needed only with probe features."""
        h, edges = self.initial_states(graph, params)  # [B, N, dn], [B, E, Fe]
        e = self.edge_embed(edges) + self.edge_group_embed(self.edge_group)  # [B, E, de]
        hs, es = self.split_layers(h), self.split_blocks(e)  # per graph layer / per weight tensor
        for block in self.blocks:
            hs, es = block(hs, es, self.edge_blocks)
        # readout: the pooled nodes and the mean edge feature per weight tensor
        return self.readout(torch.cat([self.pool_nodes(hs), *[e.mean(dim=(1, 2)) for e in es]], dim=1))
