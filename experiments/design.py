"""Issue 14's diagnosis and design changes, measured on a VALIDATION split of SIREN MNIST-5k's training images.

    python experiments/design.py --run base --seed 0 --json runs/design/base-seed0.json
    python experiments/design.py --run capacity --json runs/design/capacity.json
    python experiments/design.py --run invariant --json runs/design/invariant.json
    python experiments/design.py --run table --json docs/results/design     # the tables of docs/RESULTS.md

Data (every run): SIREN 2-32-32-1 INRs of MNIST-5k's 4,000 training images, 4 seeds per image, each from its own
initialisation, fitted 300 steps at lr 2e-4 (round 5's gentler fit), cached in runs/cache. A seeded 20 % of the
training images (800, all their INRs) is held out as validation (`INRDataset.validation_split`); MNIST-5k's test
images are never loaded here. Linear probes are trained on seeds 0 and 1 of the 3,200 other images and scored on
seeds 0 and 1 of the validation images, for every run alike; only SimCLR of the `seeds4` run sees seeds 2 and 3.

Runs:
- base: the recipe of the best weights-only cell so far (canonical, default-size encoder, NT-Xent at tau 0.1,
  300 steps x 64 pairs, lr 2e-3, seed pairs without weight-space augmentations).
- seeds4: the same, positives drawn from 4 seeds per image instead of 2 (6 pairings per image, not 1).
- vicreg: the same, VICReg instead of NT-Xent (`SimCLRConfig.objective`).
- stats: the same, the encoder's neurons start from their incoming and outgoing weights: in order next to the input
  and output layers, else mean/std/min/max/rms over the other side (`EncoderConfig.neuron_stats`).
- recon: the same, plus a decoder that reconstructs each view's own rendering (14 x 14, from its weights) from the
  encoder's features (`SimCLRConfig.reconstruction_weight` 1); recon-stats: with the neuron_stats encoder too.
- gnn (round 10): the stats run with the weight-message GNN (`EncoderConfig(kind="gnn")`, 4 layers) instead of the
  Relational Transformer; gnn-seeds4: and positives from 4 seeds; gnn-views4: all 4 seeds of each of 32 images per
  step, every other seed a positive (`SimCLRConfig.views_per_image`; the same 128 INRs per step); gnn-augment: the
  GNN with inr.AugmentPolicy's default weight-space augmentations.
- capacity: supervised on 512 training INRs (class-balanced), without augmentations: training accuracy must reach
  99 %, for the default encoder and the neuron-statistics one.
- invariant: simple invariant baselines on the same INRs (StatNN per-tensor statistics; pooled per-neuron
  statistics), as a linear probe and as a supervised MLP.
Each SimCLR run also probes what its features encode besides the class: the INR's seed, and its image (is a
validation INR's nearest neighbour, by cosine, the other seed of its own image?).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.threads import apply_thread_policy, describe, prepare_environment  # noqa: E402

prepare_environment()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import inr  # noqa: E402
from training.data import INRDataset, fit_inr_dataset  # noqa: E402
from training.encoder import EncoderConfig, build_encoder  # noqa: E402
from training.loop import OptimConfig, seed_everything  # noqa: E402
from training.probe import extract_features, linear_probe  # noqa: E402
from training.reproduce import spec_for  # noqa: E402
from training.simclr import SimCLRConfig, pretrain  # noqa: E402
from training.sources import load_images  # noqa: E402
from training.supervised import SupervisedConfig, evaluate_classifier, train_supervised  # noqa: E402

NO_AUGMENT = inr.AugmentPolicy.none()
GNN = {"kind": "gnn", "neuron_stats": True, "layers": 4}
VARIANTS = {
    "base": {},
    "seeds4": {"seeds": 4},
    "vicreg": {"objective": "vicreg"},
    "stats": {"encoder": {"neuron_stats": True}},
    "recon": {"reconstruction_weight": 1.0},
    "recon-stats": {"reconstruction_weight": 1.0, "encoder": {"neuron_stats": True}},
    # round 10: the weight-message GNN (training.gnn), then changes on top of it
    "gnn": {"encoder": GNN},
    "gnn-seeds4": {"encoder": GNN, "seeds": 4},
    "gnn-views4": {"encoder": GNN, "seeds": 4, "views": 4, "batch": 32},
    "gnn-augment": {"encoder": GNN, "augment": {}},
}


def load_split(cache_dir: str) -> tuple[INRDataset, INRDataset]:
    """(training INRs, validation INRs), all 4 seeds, of MNIST-5k's training images."""
    images = load_images("mnist5k")
    spec = spec_for("siren", images)
    everything = fit_inr_dataset(images, spec, 4, steps=300, lr=2e-4, shared_init=False, cache_dir=cache_dir)
    return everything.train().validation_split()


def two_seeds(ds: INRDataset) -> INRDataset:
    return ds.subset(ds.seed < 2)


def identity_probes(features: torch.Tensor, ds: INRDataset, train_features: torch.Tensor,
                    train: INRDataset) -> dict:
    """What the features know besides the class: the seed (linear probe, chance 50 %) and the image (top-1 cosine
    neighbour among the other validation INRs is the other seed of the same image; chance 1 / (M - 1))."""
    seed_acc = linear_probe(train_features, train.seed, features, ds.seed, ["0", "1"]).accuracy
    z = torch.nn.functional.normalize(features.double(), dim=1)
    sim = z @ z.T
    sim.fill_diagonal_(-2.0)
    nearest = sim.argmax(dim=1)
    same_image = float((ds.image_index[nearest] == ds.image_index).double().mean()) * 100
    same_class = float((ds.labels[nearest] == ds.labels).double().mean()) * 100
    return {"seed_probe_acc": seed_acc, "nearest_is_same_image": same_image, "nearest_is_same_class": same_class}


def run_simclr(variant: str, seed: int, train_all: INRDataset, val_all: INRDataset, steps: int) -> dict:
    change = VARIANTS[variant]
    encoder = EncoderConfig(**change.get("encoder", {}))
    augment = inr.AugmentPolicy(**change["augment"]) if "augment" in change else NO_AUGMENT
    config = SimCLRConfig(encoder=encoder, augment=augment, optim=OptimConfig(lr=2e-3, warmup_steps=20),
                          temperature=0.1, objective=change.get("objective", "nt_xent"),
                          batch_size=change.get("batch", 64), views_per_image=change.get("views", 2), steps=steps,
                          reconstruction_weight=change.get("reconstruction_weight", 0.0), seed=seed)
    pretrain_rows = train_all if change.get("seeds", 2) == 4 else two_seeds(train_all)
    train, val = two_seeds(train_all), two_seeds(val_all)
    t0 = time.perf_counter()
    res = pretrain(pretrain_rows, config, on_step=lambda s, m: print(
        f"  {variant} seed {seed} step {s}: loss {m['loss']:.3f} top1 {m['top1']:.3f}", flush=True)
        if s % 50 == 0 else None)
    seconds = time.perf_counter() - t0
    ftr, fval = extract_features(res.encoder, train), extract_features(res.encoder, val)
    acc = linear_probe(ftr, train.labels, fval, val.labels, train.class_names).accuracy
    out = {"variant": variant, "seed": seed, "steps": steps, "validation_probe_acc": acc, "simclr_seconds": seconds,
           "simclr_final": res.history[-1], **identity_probes(fval, val, ftr, train)}
    seed_everything(seed)
    rand = build_encoder(train.spec, encoder)
    rand.set_normalization(train.params, train.labels)
    rtr, rval = extract_features(rand, train), extract_features(rand, val)
    out["random_encoder"] = {"validation_probe_acc": linear_probe(rtr, train.labels, rval, val.labels).accuracy,
                             **identity_probes(rval, val, rtr, train)}
    return out


def class_balanced(ds: INRDataset, count: int, seed: int = 0) -> INRDataset:
    generator = torch.Generator().manual_seed(seed)
    classes = torch.unique(ds.labels)
    rows = [torch.nonzero(ds.labels == c).reshape(-1) for c in classes]
    rows = [r[torch.randperm(len(r), generator=generator)][:count // len(classes)] for r in rows]
    return ds.subset(torch.cat(rows).sort().values)


CAPACITY_ENCODERS = {"default": EncoderConfig(), "neuron_stats": EncoderConfig(neuron_stats=True),
                     "gnn": EncoderConfig(**GNN)}


def run_capacity(train_all: INRDataset, val_all: INRDataset, steps: int, encoders: list[str],
                 lrs: list[float]) -> dict:
    small = class_balanced(two_seeds(train_all), 512)
    val = two_seeds(val_all)
    out = {"inrs": len(small), "steps": steps, "runs": []}
    for name in encoders:
        encoder = CAPACITY_ENCODERS[name]
        for lr in lrs:
            curve = []
            config = SupervisedConfig(encoder=encoder, augment=NO_AUGMENT, optim=OptimConfig(lr=lr, warmup_steps=20),
                                      batch_size=64, steps=steps, seed=0)
            t0 = time.perf_counter()
            res = train_supervised(small, config, on_step=lambda s, m, curve=curve: curve.append(
                (s, round(m["loss"], 4), round(m["accuracy"], 1))) if s % 50 == 0 else None)
            train_acc = evaluate_classifier(res.model, small)
            val_acc = evaluate_classifier(res.model, val)
            row = {"encoder": name, "lr": lr, "train_acc": train_acc, "validation_acc": val_acc,
                   "seconds": time.perf_counter() - t0, "curve": curve}
            print(json.dumps({k: v for k, v in row.items() if k != "curve"}), flush=True)
            out["runs"].append(row)
    return out


def statnn_features(spec: inr.FieldSpec, params: inr.Params) -> torch.Tensor:
    """Per tensor of the canonical weights: mean, std and the 0/25/50/75/100 % quantiles (Unterthiner et al.)."""
    params = inr.canonicalize(spec, {k: v.double() for k, v in params.items()})
    parts = []
    for name in spec.param_shapes():
        x = params[name].reshape(params[name].shape[0], -1)
        q = torch.quantile(x, torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=x.dtype), dim=1).T
        parts += [x.mean(1, keepdim=True), x.std(1, keepdim=True, unbiased=False), q]
    return torch.cat(parts, dim=1).float()


def pooled_neuron_stats(train: INRDataset, params: inr.Params) -> torch.Tensor:
    """Per-neuron statistics (the encoder's `neuron_stats` inputs), mean- and max-pooled over each layer."""
    encoder = build_encoder(train.spec, EncoderConfig(neuron_stats=True))
    encoder.set_normalization(train.params, train.labels)
    stats = encoder.neuron_statistics(params)  # [B, N, F]
    parts = []
    for layer in range(len(encoder.layer_sizes)):
        x = stats[:, encoder.node_layer == layer]
        parts += [x.mean(1), x.amax(1)] if layer in encoder.hidden_layers else [x.flatten(1)]
    return torch.cat(parts, dim=1)


def run_invariant(train_all: INRDataset, val_all: INRDataset) -> dict:
    from sklearn.neural_network import MLPClassifier
    from sklearn.preprocessing import StandardScaler

    train, val = two_seeds(train_all), two_seeds(val_all)
    out = {}
    for name, featurize in (("statnn", lambda p: statnn_features(train.spec, p)),
                            ("pooled_neuron_stats", lambda p: pooled_neuron_stats(train, p))):
        ftr, fval = featurize(train.params), featurize(val.params)
        probe = linear_probe(ftr, train.labels, fval, val.labels).accuracy
        scaler = StandardScaler().fit(ftr.numpy())
        mlp = MLPClassifier(hidden_layer_sizes=(256, 256), max_iter=300, early_stopping=True, random_state=0)
        mlp.fit(scaler.transform(ftr.numpy()), train.labels.numpy())
        supervised = float(100 * (mlp.predict(scaler.transform(fval.numpy())) == val.labels.numpy()).mean())
        out[name] = {"features": int(ftr.shape[1]), "probe_acc": probe, "mlp_acc": supervised,
                     **identity_probes(fval, val, ftr, train)}
        print(name, json.dumps(out[name]), flush=True)
    return out


def _mean_std(values: list[float]) -> str:
    std = f" ± {np.std(values, ddof=1):.2f}" if len(values) > 1 else ""
    return f"{np.mean(values):.2f}{std} ({', '.join(f'{v:.2f}' for v in values)})"


def print_tables(folder: Path) -> None:
    """Markdown tables of the design runs (per-seed JSONs) and the diagnosis in `folder`."""
    runs: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*-seed*.json")):
        result = json.loads(path.read_text())
        if "variant" in result:  # (the folder also holds round 9's CIFAR-10 validation runs)
            runs.setdefault(result["variant"], []).append(result)
    print("| run | K | validation probe | random encoder | final top-1 of 127 | nearest is the same image "
          "| nearest is the same class | seed probe |")
    print("|---|---|---|---|---|---|---|---|")
    for variant in VARIANTS:
        rs = runs.get(variant)
        if not rs:
            continue
        def col(key: str, rs: list[dict] = rs) -> str:
            return _mean_std([r[key] for r in rs])

        print(f"| {variant} | {len(rs)} | {col('validation_probe_acc')} | "
              f"{_mean_std([r['random_encoder']['validation_probe_acc'] for r in rs])} | "
              f"{_mean_std([r['simclr_final']['top1'] for r in rs])} | {col('nearest_is_same_image')} | "
              f"{col('nearest_is_same_class')} | {col('seed_probe_acc')} |")
    print()
    print("| check | features | probe / accuracy | other |")
    print("|---|---|---|---|")
    for path in sorted(folder.glob("capacity*.json")):
        cap = json.loads(path.read_text())
        for r in cap["runs"]:
            print(f"| capacity: supervised on {cap['inrs']} training INRs, {cap['steps']} steps, lr {r['lr']:g} "
                  f"| {r['encoder']} encoder | training accuracy {r['train_acc']:.2f} % | validation "
                  f"{r['validation_acc']:.2f} % |")
    invariant = folder / "invariant.json"
    if invariant.exists():
        inv = json.loads(invariant.read_text())
        for name in ("statnn", "pooled_neuron_stats"):
            r = inv[name]
            print(f"| invariant baseline | {name} ({r['features']} features) | probe {r['probe_acc']:.2f} %, MLP "
                  f"{r['mlp_acc']:.2f} % | nearest same image {r['nearest_is_same_image']:.2f} %, same class "
                  f"{r['nearest_is_same_class']:.2f} %, seed probe {r['seed_probe_acc']:.2f} % |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, choices=[*VARIANTS, "capacity", "invariant", "table"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--processes", type=int, default=None, help="processes sharing the cores (thread policy)")
    parser.add_argument("--cache-dir", default="runs/cache")
    parser.add_argument("--encoders", default="default,neuron_stats", help="capacity: encoders to train")
    parser.add_argument("--lrs", default="2e-3", help="capacity: learning rates to train at")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    if args.run == "table":
        print_tables(Path(args.json))
        return
    apply_thread_policy(args.processes)
    print(describe(), flush=True)
    t0 = time.perf_counter()
    train_all, val_all = load_split(args.cache_dir)
    if args.run == "capacity":
        result = run_capacity(train_all, val_all, args.steps, args.encoders.split(","),
                              [float(x) for x in args.lrs.split(",")])
    elif args.run == "invariant":
        result = run_invariant(train_all, val_all)
    else:
        result = run_simclr(args.run, args.seed, train_all, val_all, args.steps)
    result.update(command=" ".join(sys.argv), seconds=time.perf_counter() - t0, machine=describe(),
                  train_inrs=len(train_all), validation_inrs=len(val_all), torch=torch.__version__,
                  numpy=np.__version__)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(result, indent=1, default=float))
    print(json.dumps({k: v for k, v in result.items() if k not in ("runs", "curve")}, default=float), flush=True)


if __name__ == "__main__":
    main()
