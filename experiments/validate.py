"""One SimCLR or supervised run of a recipe on the VALIDATION split of MNIST-5k's training images, SIREN or MFN: the
runs of round 10 (docs/RESULTS.md) that chose the `cpu` preset's steps and tried changes for MFN.

    python experiments/validate.py --arch siren --steps 1000 --json runs/validate/siren-gnn-1000.json
    python experiments/validate.py --arch siren --supervised --steps 2000 --json runs/validate/siren-sup-2000.json
    python experiments/validate.py --arch mfn --steps 1000 --encoder gated_ff=true --json runs/validate/mfn-gated.json

Data: the INRs of training.reproduce's `cpu` preset (SIREN: 4 seeds per image, 300 steps at lr 2e-4; MFN: 2 seeds,
inr.DEFAULT_FIT, anti-aliased), independent initialisations, cached in runs/cache (the same files the preset's cells
read). A seeded 20 % of MNIST-5k's 4,000 training images (800, all their INRs) is the validation split
(`INRDataset.validation_split`); the test images are fitted with the rest but never read. SimCLR trains on all seeds
of the other 3,200 images; the linear probe trains on their seeds 0 and 1 and is scored on seeds 0 and 1 of the
validation images, as in experiments/design.py. The supervised run trains on every training INR and is scored on
every validation INR. The recipe is the `cpu` preset's unless a flag changes it (`--encoder KEY=VALUE`, `--steps`,
`--temperature`, `--augment`, `--fit-lr`, `--extra-seeds`, `--input-scale`, ...).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from training.threads import apply_thread_policy, describe, prepare_environment  # noqa: E402

prepare_environment()

import torch  # noqa: E402

import inr  # noqa: E402
from training.data import INRDataset, fit_inr_dataset  # noqa: E402
from training.encoder import EncoderConfig  # noqa: E402
from training.presets import PRESETS  # noqa: E402
from training.probe import extract_features, linear_probe  # noqa: E402
from training.reproduce import _overrides, spec_for  # noqa: E402
from training.simclr import pretrain  # noqa: E402
from training.sources import load_images  # noqa: E402
from training.supervised import evaluate_classifier, train_supervised  # noqa: E402

PRESET = PRESETS["cpu"]


def load_split(arch: str, cache_dir: str, fit_lr: float | None = None, extra_seeds: int = 0,
               input_scale: float | None = None) -> tuple[INRDataset, INRDataset]:
    """(training INRs, validation INRs) of MNIST-5k's training images, all seeds, fitted as the cpu preset fits (or
    at learning rate `fit_lr`; MFN: with filters of `input_scale` radians per pixel instead of the paper's); with
    `extra_seeds`, that many more INRs per image from further seeds (fitted and cached on their own, so the preset's
    file is reused)."""
    images = load_images("mnist5k")
    spec = spec_for(arch, images, PRESET)
    if input_scale is not None:
        if arch != "mfn":
            raise SystemExit("--input-scale is an MFN setting")
        spec = dataclasses.replace(spec, input_scale=float(input_scale))
    lr = PRESET.fit_lr_for(arch, images.channels) if fit_lr is None else fit_lr
    seeds = PRESET.seeds_for(arch)
    parts = [fit_inr_dataset(images, spec, list(range(first, first + count)) if first else count,
                             steps=PRESET.fit_steps[arch], lr=lr, anti_alias=arch == "mfn", shared_init=False,
                             cache_dir=cache_dir) for first, count in ((0, seeds), (seeds, extra_seeds)) if count]
    everything = parts[0] if len(parts) == 1 else INRDataset(
        spec=spec, params={k: torch.cat([p.params[k] for p in parts]) for k in parts[0].params},
        **{name: torch.cat([getattr(p, name) for p in parts])
           for name in ("labels", "image_index", "seed", "is_train", "psnr")},
        class_names=parts[0].class_names, meta={"parts": [p.meta for p in parts]})
    return everything.train().validation_split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["siren", "mfn"], default="siren")
    parser.add_argument("--supervised", action="store_true", help="the supervised baseline instead of SimCLR")
    parser.add_argument("--steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--extra-seeds", type=int, default=0, help="more INRs per image, from further seeds")
    parser.add_argument("--fit-lr", type=float, default=None, help="the fit learning rate (default: the preset's)")
    parser.add_argument("--input-scale", type=float, default=None,
                        help="MFN: the filters' initial frequency scale, radians per pixel (default: the preset's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", action="append", default=[], metavar="KEY=VALUE",
                        help="EncoderConfig fields over the preset's")
    parser.add_argument("--augment", action="append", default=[], metavar="KEY=VALUE",
                        help="inr.AugmentPolicy fields over the preset's (none), for SimCLR and supervised")
    parser.add_argument("--processes", type=int, default=None, help="processes sharing the cores (thread policy)")
    parser.add_argument("--cache-dir", default="runs/cache")
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    apply_thread_policy(args.processes)
    t0 = time.perf_counter()
    train, val = load_split(args.arch, args.cache_dir, args.fit_lr, args.extra_seeds, args.input_scale)
    encoder = dataclasses.replace(PRESET.encoder, **_overrides(args.encoder, EncoderConfig, "--encoder"))
    augment = dataclasses.replace(PRESET.augment, **_overrides(args.augment, inr.AugmentPolicy, "--augment"))
    changes = {"encoder": encoder, "augment": augment, "seed": args.seed}
    if args.steps is not None:
        changes["steps"] = args.steps
    out: dict = {"arch": args.arch, "kind": "supervised" if args.supervised else "simclr"}
    if args.supervised:
        config = PRESET.supervised_config(**changes)
        result = train_supervised(train, config, on_step=lambda s, m: print(
            f"  step {s}: loss {m['loss']:.3f} batch accuracy {m['accuracy']:.1f}", flush=True)
            if s % 100 == 0 else None)
        out["validation_acc"] = evaluate_classifier(result.model, val)
        out["train_acc"] = evaluate_classifier(result.model, train)
    else:
        if args.temperature is not None:
            changes["temperature"] = args.temperature
        config = PRESET.simclr_config(**changes)
        result = pretrain(train, config, on_step=lambda s, m: print(
            f"  step {s}: loss {m['loss']:.3f} top1 {m['top1']:.3f}", flush=True) if s % 100 == 0 else None)
        probe_train, probe_val = train.subset(train.seed < 2), val.subset(val.seed < 2)
        features = extract_features(result.encoder, probe_train), extract_features(result.encoder, probe_val)
        out["validation_probe_acc"] = linear_probe(features[0], probe_train.labels, features[1], probe_val.labels,
                                                   train.class_names).accuracy
        out["final"] = result.history[-1]
    out.update(config=config.to_dict(), train_seconds=result.seconds, seconds=time.perf_counter() - t0,
               command=" ".join(sys.argv), machine=describe(), torch=torch.__version__, train_inrs=len(train),
               validation_inrs=len(val))
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1, default=float))
    print(json.dumps({k: v for k, v in out.items() if k != "config"}, default=float), flush=True)


if __name__ == "__main__":
    main()
