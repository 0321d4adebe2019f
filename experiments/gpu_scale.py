"""One time-boxed training run for a lent GPU: as many SimCLR (or supervised) steps as fit in --budget-s.

A lent GPU comes with a fixed number of minutes, and the speed of a large encoder there is not known in advance. So
the run times 30 steps of the same training first (CUDA warm-up excluded), sets the step count that fills the
budget (the cosine schedule then decays over exactly those steps), trains, probes and appends one JSON line to --out.

  python experiments/gpu_scale.py --dataset mnist5k --arch siren --preset full --mode simclr --budget-s 240 \
      --device cuda --cache-dir /tmp/cinr-runs --out results.jsonl
  --mode fit only fits (and caches) the INR datasets, so that parallel runs can share them.
"""

import argparse
import dataclasses
import json
import sys
import time

import torch

import inr
from training.encoder import EncoderConfig
from training.loop import OptimConfig
from training.reproduce import PRESETS, _overrides, fit_datasets, probe_accuracy, random_encoder_probe
from training.simclr import SimCLRConfig, pretrain
from training.supervised import SupervisedConfig, evaluate_classifier, train_supervised

TIMING_STEPS = 30  # the first 10 are CUDA warm-up and are not timed


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def make_config(args, preset, enc_cfg, policy, steps: int):
    lr = args.lr if args.lr is not None else (preset.simclr_lr if args.mode == "simclr" else preset.supervised_lr)
    optim = OptimConfig(lr=lr, warmup_steps=min(preset.warmup_steps, max(steps // 10, 1)))
    if args.mode == "simclr":
        return SimCLRConfig(encoder=enc_cfg, augment=policy, optim=optim, temperature=preset.temperature,
                            batch_size=args.batch or preset.simclr_batch, steps=steps, seed=args.seed)
    return SupervisedConfig(encoder=enc_cfg, augment=policy, optim=optim,
                            batch_size=args.batch or preset.supervised_batch, steps=steps, seed=args.seed)


def train(args, train_set, config, on_step):
    fn = pretrain if args.mode == "simclr" else train_supervised
    return fn(train_set, config, device=args.device, on_step=on_step)


def seconds_per_step(args, preset, enc_cfg, policy, train_set) -> float:
    stamps = []
    train(args, train_set, make_config(args, preset, enc_cfg, policy, TIMING_STEPS),
          lambda s, m: stamps.append(time.perf_counter()))
    return (stamps[-1] - stamps[9]) / (len(stamps) - 10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", choices=["siren", "mfn"], required=True)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--mode", choices=["fit", "simclr", "supervised"], required=True)
    parser.add_argument("--budget-s", type=float, default=240.0, help="seconds of training (timing excluded)")
    parser.add_argument("--max-steps", type=int, default=100_000)
    parser.add_argument("--lr", type=float, default=None)
    parser.add_argument("--batch", type=int, default=0, help="0: the preset's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--encoder", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--augment", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--init", choices=["independent", "shared"], default="independent")
    parser.add_argument("--seeds-per-image", type=int, default=None, help="default: the preset's")
    parser.add_argument("--fit-steps", type=int, default=None, help="default: the preset's")
    parser.add_argument("--fit-lr", type=float, default=None, help="default: inr.DEFAULT_FIT's")
    parser.add_argument("--device", default=None)
    parser.add_argument("--cache-dir", default=".cinr-cache")
    parser.add_argument("--label", default="")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    args.test_dataset = None
    preset = PRESETS[args.preset]
    t_start = time.perf_counter()
    train_set, test_set, spec = fit_datasets(args, preset, log)
    if args.mode == "fit":
        return
    enc_cfg = dataclasses.replace(preset.encoder, **_overrides(args.encoder, EncoderConfig, "--encoder"))
    policy = inr.AugmentPolicy(**_overrides(args.augment, inr.AugmentPolicy, "--augment"))

    per_step = seconds_per_step(args, preset, enc_cfg, policy, train_set)
    steps = max(50, min(args.max_steps, int(args.budget_s / per_step)))
    log(f"{args.label}: {per_step * 1000:.0f} ms per step -> {steps} steps")
    config = make_config(args, preset, enc_cfg, policy, steps)
    curve = []
    every = max(1, steps // 20)

    def on_step(step, metrics):
        if step % every == 0 or step == steps - 1:
            curve.append({"step": step, **{k: round(float(v), 4) for k, v in metrics.items()}})
            log(f"{args.label} step {step}: " + " ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

    res = train(args, train_set, config, on_step)
    record = {"label": args.label, "dataset": args.dataset, "arch": args.arch, "preset": args.preset,
              "mode": args.mode, "seed": args.seed, "steps": steps, "ms_per_step": per_step * 1000,
              "train_seconds": res.seconds, "config": config.to_dict(), "curve": curve,
              "num_train_inrs": len(train_set), "num_test_inrs": len(test_set),
              "psnr_mean": float(torch.cat([train_set.psnr, test_set.psnr]).mean()),
              "device": str(args.device), "torch": torch.__version__}
    if args.mode == "simclr":
        record["contrastive_probe_acc"] = probe_accuracy(res.encoder, train_set, test_set, args.device)
        record["random_encoder_probe_acc"] = random_encoder_probe(spec, enc_cfg, args.seed, train_set, test_set,
                                                                  args.device)
    else:
        record["supervised_acc"] = evaluate_classifier(res.model, test_set, device=args.device)
    record["wall_seconds"] = time.perf_counter() - t_start
    log(f"{args.label}: " + json.dumps({k: v for k, v in record.items() if k.endswith("acc")}))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
