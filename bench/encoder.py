"""Relational Transformer speed: forward + backward INRs per second for SIREN and MFN graphs, against a baseline
run in the same process, and where the time goes.

    .venv/bin/python -m bench.encoder                      # default EncoderConfig, batch 64, both architectures
    .venv/bin/python -m bench.encoder --batch 128 --threads 2 --config '{"d_node": 32, "layers": 1}'
    .venv/bin/python -m bench.encoder --device cuda --batch 1024      # on a GPU

Baseline: the same model, the same weights, the same maths, with messages laid out as a flat edge list (gather node
projections per edge with index_select, softmax and aggregation per receiver with scatter/index_add), the usual way
to run attention along the edges of a sparse graph. `training.encoder` instead keeps each weight tensor's edges as
one dense block [B, out, in, d] (an MLP's graph is a chain of full bipartite blocks), so everything is broadcast
arithmetic and batched matrix products. Both only touch the E existing edges, never the N x N pairs. The bench
checks that both give the same features, then alternates them --repeats times and prints the median ratio.
With --device cuda the encoder, the batch and the baseline run on the GPU, and the clocks are read after
torch.cuda.synchronize().
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time

import numpy as np
import torch

import inr
from bench.fit import CPU, parse_device
from training import encoder as encoder_module
from training.encoder import EncoderConfig, RelationalTransformer, RTLayer


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


def edge_list_forward(model: RelationalTransformer, params: inr.Params) -> torch.Tensor:
    """The baseline: model's features computed with the flat edge-list layers."""
    graph = inr.to_graph(model.spec, params, dense=False)
    nodes = (graph.node_features - model.node_mean[model.node_layer]) / model.node_std[model.node_layer]
    edges = (graph.edge_values - model.edge_mean[model.edge_group]) / model.edge_std[model.edge_group]
    h = model.node_embed(nodes) + model.position_embed(model.node_position)
    e = model.edge_embed(edges) + model.edge_group_embed(model.edge_group)
    src, dst = graph.edge_index[0], graph.edge_index[1]
    for layer in model.blocks:
        h, e = _edge_list_layer(layer, h, e, src, dst)
    b = h.shape[0]
    hs = list(h.split(model.layer_sizes, dim=1))
    es = [e[:, blk.start:blk.start + blk.n_out * blk.n_in].reshape(b, blk.n_out, blk.n_in, -1)
          for blk in model.edge_blocks]
    return model.readout(model._pool(hs, es))


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
def _chunking_off():
    saved = encoder_module.INFERENCE_EDGES, encoder_module.INFERENCE_EDGES_GPU
    encoder_module.INFERENCE_EDGES = encoder_module.INFERENCE_EDGES_GPU = 1 << 62
    try:
        yield
    finally:
        encoder_module.INFERENCE_EDGES, encoder_module.INFERENCE_EDGES_GPU = saved


def bench_arch(spec: inr.FieldSpec, cfg: EncoderConfig, batch: int, repeats: int, profile: bool,
               device: torch.device = CPU) -> None:
    torch.manual_seed(0)
    model = RelationalTransformer(spec, cfg).to(device)
    params = inr.init(spec, batch, seed=0, device=device)
    model.set_normalization(params)
    layout = inr.graph_layout(spec)
    n_par = sum(p.numel() for p in model.parameters())
    print(f"== {spec.arch} {spec.to_json()}: N = {layout.num_nodes} nodes, E = {layout.num_edges} edges "
          f"(N^2 = {layout.num_nodes ** 2}); encoder {n_par / 1e3:.1f} k parameters; batch {batch}")
    with torch.no_grad():
        diff = (model.encode_params(params) - edge_list_forward(model, params)).abs().max().item()
    print(f"block layout vs edge list: max |feature difference| {diff:.2e}")
    block_t, list_t = [], []
    _time(model.encode_params, params)  # warm-up
    _time(lambda p: edge_list_forward(model, p), params)
    for _ in range(repeats):
        model.zero_grad(set_to_none=True)
        block_t.append(_time(model.encode_params, params))
        model.zero_grad(set_to_none=True)
        list_t.append(_time(lambda p: edge_list_forward(model, p), params))
    b, e = float(np.median(block_t)), float(np.median(list_t))
    ratio = float(np.median(np.array(list_t) / np.array(block_t)))
    print(f"training.encoder (blocks)  {batch / b:8.1f} INRs/s forward+backward (median of {repeats})")
    print(f"edge-list baseline         {batch / e:8.1f} INRs/s forward+backward")
    print(f"ratio blocks / edge list: {ratio:.2f}x (median of paired repeats)")
    # Forward only (feature extraction, the model API): encode_params without autograd runs the batch in chunks of
    # ~INFERENCE_EDGES edges; baseline in the same process: the whole batch in one pass, as before the chunking.
    chunked_t, whole_t = [], []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            chunked_t.append(_time_forward(model, params))
            with _chunking_off():
                whole_t.append(_time_forward(model, params))
    c, w = float(np.median(chunked_t[1:])), float(np.median(whole_t[1:]))
    edges = encoder_module.INFERENCE_EDGES if device.type == "cpu" else encoder_module.INFERENCE_EDGES_GPU
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.encoder", description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", choices=["siren", "mfn", "both"], default="both")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--config", default="{}", help="EncoderConfig fields as JSON (default: the defaults)")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda, cuda:0, ...: where both run")
    args = parser.parse_args(argv)
    device = parse_device(parser, args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = EncoderConfig.from_dict(json.loads(args.config))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; EncoderConfig {cfg.to_dict()}")
    if device.type == "cuda":
        print(f"device {device} ({torch.cuda.get_device_name(device)})")
    specs = {"siren": inr.FieldSpec.siren(1), "mfn": inr.FieldSpec.mfn(1)}
    for arch in (["siren", "mfn"] if args.arch == "both" else [args.arch]):
        bench_arch(specs[arch], cfg, args.batch, args.repeats, not args.no_profile, device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
