"""Encoder speed: forward + backward INRs per second of the Relational Transformer for SIREN and MFN graphs, against
two baselines run in the same process on the same weights, and where the time goes; beside them, the weight-message
GNN (training.gnn, `--gnn-config`, default: the cpu preset's encoder) on the same weights.

    .venv/bin/python -m bench.encoder                      # default EncoderConfig, batch 64, both architectures
    .venv/bin/python -m bench.encoder --batch 128 --threads 2 --config '{"d_node": 32, "layers": 1}'
    .venv/bin/python -m bench.encoder --device cuda --batch 1024      # on a GPU

Baselines, the same model with the same weights and the same maths (canonicalisation included when the config has
it), laid out differently:
- edge list: messages as a flat list of the E existing edges (gather node projections per edge with index_select,
  softmax and aggregation per receiver with scatter/index_add), the usual way to run attention along a sparse graph;
- dense N x N: every node pair, as the reference implementations of Zhang et al. 2023 ("Graph neural networks for
  learning equivariant representations of neural networks") and Kofinas et al. 2024 compute their relational
  transformers: edge features in a [B, N, N, d] tensor (zeros where there is no edge), attention logits for all pairs
  with non-edges masked out, the edge update computed for all pairs and read back at the real edges.
`training.encoder` instead keeps each weight tensor's edges as one dense block [B, out, in, d] (an MLP's graph is a
chain of full bipartite blocks), so everything is broadcast arithmetic and batched matrix products on the E edges.

Before timing, the bench checks that both baselines give the encoder's features (float32 tolerance); if either
differs it prints the difference and exits with status 1, without timing anything. It then alternates the three
--repeats times and prints the median ratios, with the machine, its load and the thread count. With --device cuda
everything runs on the GPU and the clocks are read after torch.cuda.synchronize().
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time

import numpy as np
import torch

import inr
from bench.fit import CPU, parse_device
from bench.machine import describe_machine
from training import graph_encoder
from training.encoder import EncoderConfig, RelationalTransformer, RTLayer, build_encoder
from training.threads import THREADS_ENV, apply_thread_policy, describe

# Features of two layouts of the same float32 computation agree to rounding: sums in another order, a few ulps per
# op through two layers, about 1e-6 of the features' scale (seen: 8e-7). A baseline that computes something else
# (the edge list without canonicalisation: 1.2-1.3) is far above this.
RTOL = 1e-4


class BaselineDrift(AssertionError):
    """A baseline's features differ from the encoder's: the two timings would not be of the same computation."""


def _segment_softmax(logits: torch.Tensor, segment: torch.Tensor, num_segments: int) -> torch.Tensor:
    # logits [B, M, H]; softmax over the entries of each segment id.
    b, m, h = logits.shape
    index = segment.view(1, m, 1).expand(b, m, h)
    seg_max = logits.new_full((b, num_segments, h), -math.inf)
    seg_max = seg_max.scatter_reduce(1, index, logits.detach(), reduce="amax", include_self=True)
    w = torch.exp(logits - seg_max.gather(1, index))
    denom = w.new_zeros((b, num_segments, h)).index_add_(1, segment, w)
    return w / denom.gather(1, index)


def _edge_list_layer(layer: RTLayer, h: torch.Tensor, e: torch.Tensor, src: torch.Tensor,
                     dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RTLayer.forward on a flat edge list: h [B, N, dn], e [B, E, de], src/dst [E]."""
    b, n, _ = h.shape
    hh, dh = layer.heads, layer.d_head
    q, k, v = layer.node_qkv(h).unflatten(-1, (3, hh * dh)).unbind(2)  # [B, N, da] each
    fq, fk, fv, fm, bq, bk, bv, bm = layer.edge_qkvm(e).unflatten(-1, (8, hh * dh)).unbind(2)  # [B, E, da]
    receiver, sender = torch.cat([dst, src]), torch.cat([src, dst])  # forward then backward messages, M = 2E
    eq, ek, ev, em = (torch.cat(pair, dim=1) for pair in ((fq, bq), (fk, bk), (fv, bv), (fm, bm)))  # [B, M, da]
    qm = q.index_select(1, receiver) + eq
    km = k.index_select(1, sender) + ek
    vm = v.index_select(1, sender) * em + ev
    m = receiver.shape[0]
    logits = (qm.view(b, m, hh, dh) * km.view(b, m, hh, dh)).sum(-1) / math.sqrt(dh)
    attn = _segment_softmax(logits, receiver, n)
    msg = (attn.unsqueeze(-1) * vm.view(b, m, hh, dh)).reshape(b, m, hh * dh)
    agg = h.new_zeros((b, n, hh * dh)).index_add_(1, receiver, msg)
    h = layer.node_norm0(h + layer.attn_out(agg))
    h = layer.node_norm1(h + layer.node_ff(h))
    upd = layer.edge_in(e) + layer.edge_src(h).index_select(1, src) + layer.edge_dst(h).index_select(1, dst)
    e = layer.edge_norm0(e + layer.edge_out(upd))
    e = layer.edge_norm1(e + layer.edge_ff(e))
    return h, e


def _embedded_inputs(model: RelationalTransformer, params: inr.Params) -> tuple[torch.Tensor, torch.Tensor, inr.Graph]:
    """What `RelationalTransformer.encode_params` feeds its layers: canonicalised (when configured), standardised
    and embedded nodes h [B, N, dn] and edges e [B, E, de] of the sparse graph."""
    params = {k: v.to(model.node_mean.device, model.node_mean.dtype) for k, v in params.items()}
    if model.config.canonicalize:
        params = inr.canonicalize(model.spec, params)
    graph = inr.to_graph(model.spec, params, dense=False)
    h, edges = model.initial_states(graph, params)
    e = model.edge_embed(edges) + model.edge_group_embed(model.edge_group)
    return h, e, graph


def _readout(model: RelationalTransformer, h: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
    hs, es = list(h.split(model.layer_sizes, dim=1)), model.split_blocks(e)
    return model.readout(torch.cat([model.pool_nodes(hs), *[blk.mean(dim=(1, 2)) for blk in es]], dim=1))


def _baseline_forward(model: RelationalTransformer, params: inr.Params, layer_fn) -> torch.Tensor:
    """model's features with each RTLayer computed by `layer_fn(layer, h, e, src, dst) -> (h, e)`."""
    h, e, graph = _embedded_inputs(model, params)
    src, dst = graph.edge_index[0], graph.edge_index[1]
    for layer in model.blocks:
        h, e = layer_fn(layer, h, e, src, dst)
    return _readout(model, h, e)


def edge_list_forward(model: RelationalTransformer, params: inr.Params) -> torch.Tensor:
    """The edge-list baseline: model's features computed with the flat edge-list layers."""
    return _baseline_forward(model, params, _edge_list_layer)


def _dense_layer(layer: RTLayer, h: torch.Tensor, e: torch.Tensor, src: torch.Tensor,
                 dst: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RTLayer.forward over all N x N node pairs: h [B, N, dn], e [B, E, de] -> the same, computed densely."""
    b, n, _ = h.shape
    hh, dh = layer.heads, layer.d_head
    pair = e.new_zeros(b, n, n, e.shape[-1])
    pair[:, src, dst] = e  # [B, N, N, de]: edge i -> j at [i, j], zeros elsewhere
    is_edge = torch.zeros(n, n, dtype=torch.bool, device=h.device)
    is_edge[src, dst] = True
    q, k, v = (t.view(b, n, hh, dh) for t in layer.node_qkv(h).unflatten(-1, (3, hh * dh)).unbind(2))
    parts = [t.view(b, n, n, hh, dh) for t in layer.edge_qkvm(pair).unflatten(-1, (8, hh * dh)).unbind(3)]
    fq, fk, fv, fm, bq, bk, bv, bm = parts  # [B, N, N, H, dh] for every pair
    # receiver r, sender u: forward messages ride on edges u -> r (pair [u, r], transposed to [r, u]), backward
    # messages on edges r -> u (pair [r, u])
    fq, fk, fv, fm = (t.transpose(1, 2) for t in (fq, fk, fv, fm))
    logits_f = ((q[:, :, None] + fq) * (k[:, None, :] + fk)).sum(-1) / math.sqrt(dh)  # [B, r, u, H]
    logits_b = ((q[:, :, None] + bq) * (k[:, None, :] + bk)).sum(-1) / math.sqrt(dh)
    logits_f = logits_f.masked_fill(~is_edge.t()[None, :, :, None], -math.inf)
    logits_b = logits_b.masked_fill(~is_edge[None, :, :, None], -math.inf)
    attn = torch.softmax(torch.cat([logits_f, logits_b], dim=2), dim=2)  # over all 2N candidate messages
    values = torch.cat([v[:, None] * fm + fv, v[:, None] * bm + bv], dim=2)  # [B, r, 2N, H, dh]
    agg = (attn.unsqueeze(-1) * values).sum(2).reshape(b, n, hh * dh)
    h = layer.node_norm0(h + layer.attn_out(agg))
    h = layer.node_norm1(h + layer.node_ff(h))
    upd = layer.edge_in(pair) + layer.edge_src(h)[:, :, None] + layer.edge_dst(h)[:, None, :]  # [B, N, N, 2de]
    pair = layer.edge_norm0(pair + layer.edge_out(upd))
    pair = layer.edge_norm1(pair + layer.edge_ff(pair))
    return h, pair[:, src, dst]


def dense_forward(model: RelationalTransformer, params: inr.Params) -> torch.Tensor:
    """The dense N x N baseline: model's features computed over all node pairs, non-edges masked."""
    return _baseline_forward(model, params, _dense_layer)


def check_same_features(reference: torch.Tensor, candidate: torch.Tensor, what: str) -> float:
    """The largest feature difference, relative to the features' scale; BaselineDrift above RTOL."""
    scale = float(reference.abs().max().clamp_min(1e-12))
    diff = float((reference - candidate).abs().max()) / scale
    if not diff <= RTOL:  # NaN fails too
        raise BaselineDrift(f"{what} differs from training.encoder: max |feature difference| {diff:.2e} of the "
                            f"features' scale (tolerance {RTOL:.0e}); its timing would be of another computation")
    return diff


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn, params) -> float:
    device = next(iter(params.values())).device
    _sync(device)
    t0 = time.perf_counter()
    fn(params).square().mean().backward()
    _sync(device)
    return time.perf_counter() - t0


def _time_forward(model: RelationalTransformer, params: inr.Params) -> float:
    device = next(iter(params.values())).device
    _sync(device)
    t0 = time.perf_counter()
    model.encode_params(params)
    _sync(device)
    return time.perf_counter() - t0


@contextlib.contextmanager
def _chunking_off(model: RelationalTransformer):
    saved = model.inference_edges, graph_encoder.INFERENCE_EDGES_GPU
    model.inference_edges = graph_encoder.INFERENCE_EDGES_GPU = 1 << 62
    try:
        yield
    finally:
        model.inference_edges, graph_encoder.INFERENCE_EDGES_GPU = saved


def bench_arch(spec: inr.FieldSpec, cfg: EncoderConfig, batch: int, repeats: int, profile: bool,
               device: torch.device = CPU, dense: bool = True, gnn_cfg: EncoderConfig | None = None) -> None:
    torch.manual_seed(0)
    model = RelationalTransformer(spec, cfg).to(device)
    params = inr.init(spec, batch, seed=0, device=device)
    model.set_normalization(params)
    gnn = build_encoder(spec, gnn_cfg).to(device) if gnn_cfg is not None else None
    if gnn is not None:
        gnn.set_normalization(params)
    layout = inr.graph_layout(spec)
    n_par = sum(p.numel() for p in model.parameters())
    print(f"== {spec.arch} {spec.to_json()}: N = {layout.num_nodes} nodes, E = {layout.num_edges} edges "
          f"(N^2 = {layout.num_nodes ** 2}); encoder {n_par / 1e3:.1f} k parameters; batch {batch}; "
          f"{torch.get_num_threads()} torch threads")
    baselines = {"edge list": lambda p: edge_list_forward(model, p)}
    if dense:
        baselines["dense N x N"] = lambda p: dense_forward(model, p)
    with torch.no_grad():
        features = model.encode_params(params)
        for name, fn in baselines.items():
            diff = check_same_features(features, fn(params), name)
            print(f"{name} vs blocks: max |feature difference| {diff:.1e} of the features' scale (<= {RTOL:.0e})")
    runs = {"blocks": model.encode_params, **baselines}
    if gnn is not None:
        runs["gnn"] = gnn.encode_params
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():  # warm-up
        _time(fn, params)
    for _ in range(repeats):
        for name, fn in runs.items():
            model.zero_grad(set_to_none=True)
            if gnn is not None:
                gnn.zero_grad(set_to_none=True)
            times[name].append(_time(fn, params))
    blocks = np.array(times["blocks"])
    print(f"training.encoder (blocks)  {batch / float(np.median(blocks)):8.1f} INRs/s forward+backward "
          f"(median of {repeats}, {torch.get_num_threads()} threads)")
    for name in baselines:
        other = np.array(times[name])
        ratio = float(np.median(other / blocks))
        print(f"{name + ' baseline':26s} {batch / float(np.median(other)):8.1f} INRs/s forward+backward; "
              f"blocks are {ratio:.2f}x faster (median of paired repeats)")
    if gnn is not None:
        g = np.array(times["gnn"])
        print(f"training.gnn ({gnn_cfg.layers} layers)   {batch / float(np.median(g)):8.1f} INRs/s forward+backward "
              f"({sum(p.numel() for p in gnn.parameters()) / 1e3:.1f} k parameters); "
              f"{float(np.median(blocks / g)):.2f}x the blocks' rate (median of paired repeats)")
    # Forward only (feature extraction, the model API): encode_params without autograd runs the batch in chunks of
    # ~INFERENCE_EDGES edges; baseline in the same process: the whole batch in one pass, as before the chunking.
    chunked_t, whole_t = [], []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            chunked_t.append(_time_forward(model, params))
            with _chunking_off(model):
                whole_t.append(_time_forward(model, params))
    c, w = float(np.median(chunked_t[1:])), float(np.median(whole_t[1:]))
    edges = model.inference_edges if device.type == "cpu" else graph_encoder.INFERENCE_EDGES_GPU
    print(f"forward only (feature extraction): {batch / c:.1f} INRs/s in chunks of "
          f"{max(1, edges // model.num_edges)} INRs, {batch / w:.1f} INRs/s whole batch "
          f"in one pass; ratio {w / c:.2f}x (median of {repeats})")
    if profile:
        activities = [torch.profiler.ProfilerActivity.CPU]
        if device.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            model.zero_grad(set_to_none=True)
            _time(model.encode_params, params)
        key, what = ("self_device_time_total", "GPU") if device.type == "cuda" else ("self_cpu_time_total", "CPU")
        table = prof.key_averages().table(sort_by=key, row_limit=12)
        print(f"where the time goes (torch.profiler, one forward+backward, by self {what} time):")
        width = None if device.type == "cuda" else 120  # the CUDA columns come after the CPU ones
        print("\n".join(line[:width] for line in table.splitlines()))


def _gnn_config(text: str | None) -> EncoderConfig | None:
    if text == "none":
        return None
    if text is None:
        from training.presets import PRESETS

        preset = PRESETS["cpu"].encoder
        return preset if preset.kind == "gnn" else EncoderConfig(kind="gnn")
    return EncoderConfig.from_dict({"kind": "gnn", **json.loads(text)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=["siren", "mfn", "both"], default="both")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: training.threads' policy)")
    parser.add_argument("--config", default="{}", help="EncoderConfig fields as JSON (default: the defaults)")
    parser.add_argument("--gnn-config", default=None,
                        help="EncoderConfig of the GNN timed beside it, as JSON (default: the cpu preset's encoder, "
                             "or the GNN's defaults when that is not a GNN); 'none' skips it")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--no-dense", action="store_true", help="skip the dense N x N baseline")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda, cuda:0, ...: where all of it runs")
    args = parser.parse_args(argv)
    device = parse_device(parser, args.device)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        os.environ[THREADS_ENV] = str(args.threads)
    apply_thread_policy()
    cfg = EncoderConfig.from_dict(json.loads(args.config))
    gnn_cfg = _gnn_config(args.gnn_config)
    print(describe_machine())
    print(f"torch {torch.__version__}, {describe()}; EncoderConfig {cfg.to_dict()}")
    if gnn_cfg is not None:
        print(f"GNN beside it: EncoderConfig {gnn_cfg.to_dict()}")
    if device.type == "cuda":
        print(f"device {device} ({torch.cuda.get_device_name(device)})")
    specs = {"siren": inr.FieldSpec.siren(1), "mfn": inr.FieldSpec.mfn(1)}
    try:
        for arch in (["siren", "mfn"] if args.arch == "both" else [args.arch]):
            bench_arch(specs[arch], cfg, args.batch, args.repeats, not args.no_profile, device, not args.no_dense,
                       gnn_cfg)
    except BaselineDrift as drift:
        print(f"bench.encoder: {drift}", file=sys.stderr)
        return 1
    print(f"{describe_machine()} at the end")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
