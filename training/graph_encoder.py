"""What every CINR encoder of INR weights shares: its config, the computation graph's layout as dense weight blocks,
the input standardisation, the canonical form, the neurons' starting features and an invariant readout.

Two encoders build on it (`training.encoder.build_encoder` picks one by `EncoderConfig.kind`):
- `training.encoder.RelationalTransformer` (the paper's, Zhang et al. 2023): attention along edges, with an embedding
  per edge that is updated in every layer;
- `training.gnn.WeightMessageGNN`: messages along edges that the edge's weight *scales*, as the INR's own forward pass
  and backpropagation do, with no per-edge embedding.

Inputs, for both: each node's features (SIREN: bias; MFN: bias and filter phase) and each edge's value (a weight, or an
MFN filter frequency) are standardised per *group* with dataset statistics (`set_normalization`): a node group is a
layer, an edge group is a weight tensor. The groups are the same for every neuron of a hidden layer, so standardising
cannot break the permutation symmetry. Optional: the canonical form first (`EncoderConfig.canonicalize`), the neurons'
own incoming and outgoing weights as features (`neuron_stats`), probe features (`probe_points`, an extension that
queries the field; off by default, as in the paper).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

import inr

ENCODER_KINDS = ("relational", "gnn")


@dataclass
class EncoderConfig:
    """Size and kind of the encoder. The defaults are CPU-friendly; see bench/encoder.py for their speed."""

    # "relational": the Relational Transformer (the paper's encoder); "gnn": training.gnn.WeightMessageGNN.
    kind: str = "relational"
    d_node: int = 64  # node embedding width
    d_edge: int = 16  # relational: edge embedding width (per-edge work dominates the cost: E >> N)
    d_attn: int = 32  # relational: total width of queries/keys/values over all heads
    heads: int = 4  # relational
    layers: int = 2
    d_ff: int = 128  # hidden width of the node feed-forward block (relational edges use 2 * d_edge)
    feature_dim: int = 128  # width of the encoder's output features
    dropout: float = 0.0
    weight_channels: int = 4  # gnn: functions of each weight that scale its messages (the weight itself + learned)
    d_message: int = 64  # gnn: width of a message
    # gnn: a gated feed-forward block, W_o (GELU(W_g h) * W_v h) (the GLU family, Shazeer 2020), instead of
    # W_o GELU(W_i h): products of two projections of a neuron's state, as an MFN multiplies a filter by a linear
    # layer's output
    gated_ff: bool = False
    # gnn: where a layer hears forward messages along two weight tensors (an MFN's hidden layers >= 1: its filter's
    # frequencies from the input, a linear layer from the layer below), it also hears their elementwise product,
    # as the MFN's forward pass multiplies the two, z = (W z' + b) * sin(omega x + phi). No effect on SIREN.
    multiplicative: bool = False
    probe_points: int = 0  # > 0: add probe features at this many learned coordinates (extension, off by default)
    # Move every INR to the canonical representative of its sign/phase/scale orbit (`inr.canonicalize`) before
    # encoding: exact, weights only, and it removes the symmetries that permutation invariance leaves. On by default:
    # it raised the probe in 3 of the 4 cpu-preset cells (docs/RESULTS.md). Checkpoints saved before it existed load
    # with it off (training.checkpoint.load_encoder), as they were trained.
    canonicalize: bool = True
    # Give every neuron, as input features, its incoming and outgoing weights per weight tensor: in order where the
    # other side is the input or output layer (never permuted), else their statistics over the other side (mean,
    # std, min, max, root mean square of the standardised weights), a set summary and so exactly invariant to
    # permutations there; in the spirit of StatNN (Unterthiner et al. 2020) and of node features that carry a
    # neuron's incoming weights (Kofinas et al. 2024). Message passing then starts from neurons that already know
    # their fan-in and fan-out instead of having to gather it over the edges first.
    neuron_stats: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ENCODER_KINDS:
            raise ValueError(f"EncoderConfig.kind must be one of {', '.join(ENCODER_KINDS)}, got {self.kind!r}")
        if self.d_attn % self.heads != 0:
            raise ValueError(f"d_attn ({self.d_attn}) must be divisible by heads ({self.heads})")
        for name in ("d_node", "d_edge", "d_attn", "heads", "layers", "d_ff", "feature_dim", "weight_channels",
                     "d_message"):
            if getattr(self, name) < 1:
                raise ValueError(f"EncoderConfig.{name} must be positive")
        if self.probe_points < 0:
            raise ValueError("EncoderConfig.probe_points must be >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EncoderConfig:
        known = set(cls.__dataclass_fields__)
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown EncoderConfig fields: {sorted(unknown)}")
        return cls(**d)


# Edges per forward pass when encoding without autograd (encode_params). CPU: a SIREN 2-32-32-1 (1,120 edges) runs
# 14 INRs at a time, an MFN 3x16 (624 edges) 26; the widest per-edge tensor is then ~16 MiB (8 * d_attn floats per
# edge), which stays in cache. A GPU wants the opposite (on an H100, 14-INR chunks ran ~35x slower than one pass of
# 1,024): ~936 SIREN INRs per pass, the widest tensor ~1-2 GiB at d_attn 32-64.
INFERENCE_EDGES = 16_384
INFERENCE_EDGES_GPU = 1_048_576
NEURON_STATS = 5  # mean, std, min, max, rms over a hidden layer (EncoderConfig.neuron_stats)


def mlp(d_in: int, d_hidden: int, d_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, d_hidden), nn.GELU(), nn.Linear(d_hidden, d_out))


class GatedMLP(nn.Module):
    """W_o (GELU(W_g x) * W_v x): a feed-forward block whose output can hold products of two projections of x."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int) -> None:
        super().__init__()
        self.gate_value = nn.Linear(d_in, 2 * d_hidden)
        self.out = nn.Linear(d_hidden, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.gate_value(x).chunk(2, dim=-1)
        return self.out(nn.functional.gelu(gate) * value)


@dataclass(frozen=True)
class Block:
    """The edges of one weight tensor: a full bipartite block from graph layer `src` (n_in neurons) to `dst`
    (n_out neurons), stored in the sparse edge list at [start, start + n_out * n_in) row-major over [out, in]."""

    src: int
    dst: int
    start: int
    n_out: int
    n_in: int


class GraphEncoder(nn.Module):
    """The shared part of CINR's encoders (module docstring): `model(graph) -> [B, feature_dim]`,
    `model.encode_params(params) -> [B, feature_dim]`. Subclasses implement `forward`, starting from
    `initial_states`."""

    # Chunk size for inference (encode_params without autograd), in edges: see INFERENCE_EDGES.
    inference_edges = INFERENCE_EDGES

    def __init__(self, spec: inr.FieldSpec, config: EncoderConfig) -> None:
        super().__init__()
        self.spec = spec
        self.config = config
        layout = inr.graph_layout(spec)
        node_layer = layout.node_layer.clone()
        if bool((node_layer[1:] < node_layer[:-1]).any()):
            raise ValueError("inr.graph_layout must list nodes layer by layer")
        self.num_nodes = layout.num_nodes
        self.num_edges = layout.num_edges
        self.node_dim = layout.node_features
        self.edge_dim = layout.edge_features
        self.layer_sizes = list(layout.layer_sizes)
        self.hidden_layers = list(layout.hidden_layers)
        # One block (and one edge group) per weight tensor, in edge order.
        self.edge_blocks: list[Block] = []
        start = 0
        for role in layout.weights:
            n_out, n_in = self.layer_sizes[role.dst_layer], self.layer_sizes[role.src_layer]
            self.edge_blocks.append(Block(role.src_layer, role.dst_layer, start, n_out, n_in))
            start += n_out * n_in
        if start != self.num_edges:
            raise ValueError("the graph's weight blocks do not cover its edges")
        edge_group = torch.cat([torch.full((b.n_out * b.n_in,), j, dtype=torch.long)
                                for j, b in enumerate(self.edge_blocks)])
        self.register_buffer("edge_group", edge_group, persistent=False)
        self.register_buffer("node_layer", node_layer, persistent=False)
        self.register_buffer("node_position", layout.node_position.clone(), persistent=False)
        # Dataset statistics for standardising the raw features (set_normalization); identity until set.
        num_layers, num_groups = len(self.layer_sizes), len(self.edge_blocks)
        self.register_buffer("node_mean", torch.zeros(num_layers, self.node_dim))
        self.register_buffer("node_std", torch.ones(num_layers, self.node_dim))
        self.register_buffer("edge_mean", torch.zeros(num_groups, self.edge_dim))
        self.register_buffer("edge_std", torch.ones(num_groups, self.edge_dim))

        dn = config.d_node
        self.node_embed = mlp(self.node_dim, dn, dn)
        self.position_embed = nn.Embedding(layout.num_positions, dn)
        # A small constant embedding, so that at initialisation the features vary with the weights instead of being
        # dominated by what every INR shares (unit-variance embeddings gave a cosine similarity of 0.995 between
        # the features of different digits INRs).
        nn.init.normal_(self.position_embed.weight, std=0.02)
        if config.neuron_stats:
            self.stats_embed = mlp(sum(width for _, _, width in self._neuron_stats_slots()), dn, dn)
        if config.probe_points > 0:
            # Learned probe coordinates in [-1, 1]^2 (the fitting grid's range), and an embedding of activations.
            gen = torch.Generator().manual_seed(0)
            self.probe_coords = nn.Parameter(torch.rand(config.probe_points, 2, generator=gen) * 2 - 1)
            self.probe_embed = mlp(config.probe_points, dn, dn)

    @property
    def feature_dim(self) -> int:
        return self.config.feature_dim

    @property
    def readout_nodes(self) -> int:
        """Node vectors in the invariant readout (`pool_nodes`): mean and max per hidden layer, every input and
        output neuron."""
        return 2 * len(self.hidden_layers) + self.layer_sizes[0] + self.layer_sizes[-1]

    @torch.no_grad()
    def set_normalization(self, params: inr.Params, labels: torch.Tensor | None = None, max_inrs: int = 4096,
                          seed: int = 0) -> None:
        """Standardise inputs with per-group mean and std measured on `params`: all of them, or a random sample of
        `max_inrs` (class-balanced when `labels` `[B]` are given). Not the first rows: datasets are often sorted
        by class, and on MNIST-5k the first 4,096 rows hold classes 0-4 only."""
        batch = inr.check_params(self.spec, params)
        rows = normalization_sample(batch, labels, max_inrs, seed)
        take = {k: v[rows].to(self.node_mean.device, torch.float64) for k, v in params.items()}
        if self.config.canonicalize:
            take = inr.canonicalize(self.spec, take)
        g = inr.to_graph(self.spec, take, dense=False)
        nodes, edges = g.node_features, g.edge_values  # [B, N, Fn], [B, E, Fe]
        for layer in range(len(self.layer_sizes)):
            x = nodes[:, self.node_layer == layer].reshape(-1, self.node_dim)
            self.node_mean[layer] = x.mean(0).to(self.node_mean.dtype)
            self.node_std[layer] = _safe_std(x).to(self.node_std.dtype)
        for group in range(len(self.edge_blocks)):
            x = edges[:, self.edge_group == group].reshape(-1, self.edge_dim)
            self.edge_mean[group] = x.mean(0).to(self.edge_mean.dtype)
            self.edge_std[group] = _safe_std(x).to(self.edge_std.dtype)

    def initial_states(self, graph: inr.Graph, params: inr.Params | None = None) -> tuple[torch.Tensor,
                                                                                             torch.Tensor]:
        """(node states [B, N, d_node], standardised edge values [B, E, Fe]) of a batch of graphs: the embedded
        node features plus the position embedding (and the neuron statistics / probe features when configured)."""
        nodes = graph.node_features.to(self.node_mean.dtype)  # [B, N, Fn]
        edges = graph.edge_values.to(self.node_mean.dtype)  # [B, E, Fe]
        if nodes.shape[1] != self.num_nodes or edges.shape[1] != self.num_edges:
            raise ValueError(f"graph has {nodes.shape[1]} nodes and {edges.shape[1]} edges; this encoder expects "
                             f"{self.num_nodes} and {self.num_edges} ({self.spec})")
        nodes = (nodes - self.node_mean[self.node_layer]) / self.node_std[self.node_layer]
        edges = self._standardized_edges(edges)
        h = self.node_embed(nodes) + self.position_embed(self.node_position)  # [B, N, dn]
        if self.config.neuron_stats:
            h = h + self.stats_embed(self._neuron_stats(edges))
        if self.config.probe_points > 0:
            if params is None:
                raise ValueError("an encoder with probe features needs the params: use encode_params")
            h = h + self.probe_embed(self._probe_features(params))
        return h, edges

    def split_layers(self, h: torch.Tensor) -> list[torch.Tensor]:
        """[B, N, d] -> per graph layer [B, n_l, d], each contiguous (a Linear on a strided slice copies its input
        and runs a slow matmul with a separate bias add)."""
        return [part.contiguous() for part in h.split(self.layer_sizes, dim=1)]

    def split_blocks(self, e: torch.Tensor) -> list[torch.Tensor]:
        """[B, E, d] -> per weight tensor [B, n_out, n_in, d], each contiguous."""
        b = e.shape[0]
        return [e[:, blk.start:blk.start + blk.n_out * blk.n_in].reshape(b, blk.n_out, blk.n_in, -1).contiguous()
                for blk in self.edge_blocks]

    def pool_nodes(self, hs: list[torch.Tensor]) -> torch.Tensor:
        """[B, readout_nodes * d], invariant to permutations of hidden neurons: hidden layers are pooled (mean, max),
        input and output neurons (never permuted) are kept in order."""
        parts = []
        for layer in self.hidden_layers:
            parts += [hs[layer].mean(1), hs[layer].amax(1)]
        parts += [hs[0].flatten(1), hs[-1].flatten(1)]
        return torch.cat(parts, dim=1)

    def encode_params(self, params: inr.Params) -> torch.Tensor:
        """Features `[B, feature_dim]` of INRs given as params (dict of `[B, ...]` tensors).

        Without autograd (feature extraction, the model API) a large batch runs in chunks of about
        INFERENCE_EDGES edges on a CPU (INFERENCE_EDGES_GPU elsewhere): the same features (each INR is encoded on
        its own), but every per-edge tensor stays small enough for the CPU's caches and the allocator's reuse,
        ~1.3-1.6x faster for batches of 64 SIREN INRs on CPU (bench/encoder.py). With autograd (training) the
        batch runs whole."""
        dtype = self.node_mean.dtype
        params = {k: v.to(self.node_mean.device, dtype) for k, v in params.items()}
        if self.config.canonicalize:
            params = inr.canonicalize(self.spec, params)
        batch = next(iter(params.values())).shape[0]
        edges = self.inference_edges if self.node_mean.device.type == "cpu" else INFERENCE_EDGES_GPU
        chunk = max(1, edges // self.num_edges)
        if torch.is_grad_enabled() or batch <= chunk:
            return self(inr.to_graph(self.spec, params, dense=False), params)
        parts = []
        for start in range(0, batch, chunk):
            part = {k: v[start:start + chunk] for k, v in params.items()}
            parts.append(self(inr.to_graph(self.spec, part, dense=False), part))
        return torch.cat(parts)

    @torch.no_grad()
    def neuron_statistics(self, params: inr.Params) -> torch.Tensor:
        """What each neuron starts from with `neuron_stats`: `[B, N, F]` for INRs given as params (canonicalised if
        the config says so, edges standardised as in forward), before any message passing. For diagnostics."""
        params = {k: v.to(self.node_mean.device, self.node_mean.dtype) for k, v in params.items()}
        if self.config.canonicalize:
            params = inr.canonicalize(self.spec, params)
        return self._neuron_stats(self._standardized_edges(inr.edge_values(self.spec, params)))

    def _standardized_edges(self, edges: torch.Tensor) -> torch.Tensor:
        return (edges - self.edge_mean[self.edge_group]) / self.edge_std[self.edge_group]  # [B, E, Fe]

    def _neuron_stats_slots(self) -> list[tuple[int, int, int]]:
        """(layer, reduce dim, width) per weight tensor and direction: incoming at the destination neurons, outgoing
        at the source neurons. Where the other side is the input or the output layer (never permuted) the weights
        themselves, in order, are the feature (a first-layer SIREN neuron gets its frequency vector); else their
        statistics over the other side's neurons."""
        last, fe = len(self.layer_sizes) - 1, self.edge_dim
        slots = []
        for blk in self.edge_blocks:
            slots.append((blk.dst, 2, blk.n_in * fe if blk.src == 0 else NEURON_STATS * fe))
            slots.append((blk.src, 1, blk.n_out * fe if blk.dst == last else NEURON_STATS * fe))
        return slots

    def _neuron_stats(self, edges: torch.Tensor) -> torch.Tensor:
        """[B, N, sum of slot widths]: per weight tensor, each destination neuron's incoming weights and each source
        neuron's outgoing weights (in order when the other side is the input or output layer, else mean, std, min,
        max, rms over it), each in its own slot, zeros for the neurons a tensor does not touch. Nothing depends on
        the order of a hidden layer's neurons on the other side, so the encoder stays permutation invariant."""
        b, fe = edges.shape[0], self.edge_dim
        slots = self._neuron_stats_slots()
        out = edges.new_zeros(b, self.num_nodes, sum(width for _, _, width in slots))
        offsets = [0]
        for size in self.layer_sizes:
            offsets.append(offsets[-1] + size)
        start = 0
        for j, blk in enumerate(self.edge_blocks):
            w = edges[:, blk.start:blk.start + blk.n_out * blk.n_in].reshape(b, blk.n_out, blk.n_in, fe)
            for layer, dim, width in slots[2 * j:2 * j + 2]:
                if width != NEURON_STATS * fe:  # the fixed side's weights, in order: [B, n_layer, n_other * Fe]
                    feats = (w if dim == 2 else w.transpose(1, 2)).flatten(2)
                else:
                    feats = torch.cat([w.mean(dim), w.std(dim, unbiased=False), w.amin(dim), w.amax(dim),
                                       w.square().mean(dim).sqrt()], dim=-1)  # [B, n_layer, NEURON_STATS * Fe]
                out[:, offsets[layer]:offsets[layer + 1], start:start + width] = feats
                start += width
        return out

    def _probe_features(self, params: inr.Params) -> torch.Tensor:
        """Activation of every graph node at the learned coordinates: `[B, N, probe_points]`, nodes layer-major."""
        acts = layer_activations(self.spec, params, self.probe_coords.to(next(iter(params.values())).dtype))
        out = torch.cat(acts, dim=2).transpose(1, 2)  # [B, N, P]
        if out.shape[1] != self.num_nodes:
            raise ValueError("probe activations do not line up with the graph's nodes")
        return out


def normalization_sample(batch: int, labels: torch.Tensor | None, max_rows: int, seed: int = 0) -> torch.Tensor:
    """Sorted row indices, at most `max_rows` of `batch`: all rows when they fit; else a seeded random sample with
    (when `labels` are given) an equal share of each class, the classes short of their share topped up at random."""
    if batch <= max_rows:
        return torch.arange(batch)
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(batch, generator=generator)
    if labels is None:
        return order[:max_rows].sort().values
    labels = torch.as_tensor(labels).reshape(-1)[order]
    # each row's rank within its class in the random order; taking rows by rank (round robin over the classes) gives
    # every class the same count until the smaller ones run out
    rank = torch.zeros(batch, dtype=torch.long)
    for c in torch.unique(labels):
        members = labels == c
        rank[members] = torch.arange(int(members.sum()))
    taken = torch.argsort(rank * batch + torch.arange(batch), stable=True)[:max_rows]
    return order[taken].sort().values


def _safe_std(x: torch.Tensor) -> torch.Tensor:
    std = x.std(0, unbiased=False) if x.shape[0] > 1 else torch.ones(x.shape[1], dtype=x.dtype)
    return torch.where(std > 1e-8, std, torch.ones_like(std))


def layer_activations(spec: inr.FieldSpec, params: inr.Params, coords: torch.Tensor) -> list[torch.Tensor]:
    """Activations of every layer of the field at `coords` [P, 2], input layer first: list of `[B, P, width]`,
    in the order of the graph's node layers (inputs, hidden layers, outputs)."""
    b = next(iter(params.values())).shape[0]
    x = coords.unsqueeze(0).expand(b, -1, -1)  # [B, P, 2]
    acts = [x]
    if spec.arch == "siren":
        h = x
        for i in range(spec.layers):
            h = torch.baddbmm(params[f"layer{i}.bias"].unsqueeze(1), h, params[f"layer{i}.weight"].transpose(1, 2))
            if i < spec.layers - 1:
                h = torch.sin(spec.omega0 * h)
            acts.append(h)
        return acts
    z = None
    for i in range(spec.filters):
        g = torch.sin(torch.baddbmm(params[f"filter{i}.phi"].unsqueeze(1), x,
                                    params[f"filter{i}.omega"].transpose(1, 2)))
        z = g if z is None else z * g  # z^(i+1): hidden layer i of the graph
        acts.append(z)
        z = torch.baddbmm(params[f"linear{i}.bias"].unsqueeze(1), z, params[f"linear{i}.weight"].transpose(1, 2))
    acts.append(z)
    return acts

