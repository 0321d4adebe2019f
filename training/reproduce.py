"""Reproduce the paper's Table 2 (and its baselines) from the command line.

    python -m training.reproduce --dataset {digits,mnist5k,PATH} --arch {siren,mfn} --preset {smoke,cpu,full}
        --seeds K --json OUT [--test-dataset PATH] [--cache-dir DIR] [--init {independent,shared}]
        [--seeds-per-image S] [--fit-steps N] [--fit-lr LR]

Fits the INRs (or reuses the cached INR dataset), then for each of K training seeds: SimCLR pretraining + linear
probe, the supervised baseline, and the random-encoder probe; plus the raw-weights probe. Prints a Table-2-style
table with mean +- std over the K seeds and writes the numbers (percent, one per seed) to the JSON file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

from training.threads import THREADS_ENV, apply_thread_policy, describe, prepare_environment

prepare_environment()  # before torch loads: OpenMP reads its pool size and wait policy once

import numpy as np  # noqa: E402
import torch  # noqa: E402

import inr  # noqa: E402
from training.data import INRDataset, fit_inr_dataset  # noqa: E402
from training.encoder import EncoderConfig, build_encoder  # noqa: E402
from training.loop import OptimConfig, seed_everything  # noqa: E402
from training.presets import PRESETS, Preset, field_spec  # noqa: E402
from training.probe import extract_features, linear_probe, raw_weight_features  # noqa: E402
from training.simclr import OBJECTIVES, pretrain  # noqa: E402
from training.sources import ImageSet, load_images  # noqa: E402
from training.supervised import evaluate_classifier, train_supervised  # noqa: E402

PAPER = {"siren": {"mnist": (95.16, 53.01), "cifar": (59.28, 36.01)},
         "mfn": {"mnist": (54.71, 42.97), "cifar": (40.21, 30.71)}}


def _cap(images: ImageSet, max_train: int, max_test: int) -> ImageSet:
    """At most max_train / max_test images of each split, the same share of every class (0 = no cap)."""
    if not max_train and not max_test:
        return images
    keep = []
    rng = np.random.default_rng(0)
    for index, cap in ((images.train_index.numpy(), max_train), (images.test_index.numpy(), max_test)):
        if not cap or cap >= index.size:
            keep.append(index)
            continue
        labels = images.labels.numpy()[index]
        chosen = []
        for c in np.unique(labels):
            members = index[labels == c]
            take = max(1, int(round(cap * members.size / index.size)))
            chosen.append(rng.permutation(members)[:take])
        keep.append(np.sort(np.concatenate(chosen)))
    return images.subset(np.concatenate(keep))


def _all_as(images: ImageSet, train: bool) -> ImageSet:
    """The same images, all in the train split (train=True) or all in the test split."""
    everything, nothing = np.arange(images.num_images), np.zeros(0, dtype=np.int64)
    return ImageSet(name=images.name, images=images.images, labels=images.labels,
                    class_names=list(images.class_names), train_index=everything if train else nothing,
                    test_index=nothing if train else everything, meta=dict(images.meta))


def spec_for(arch: str, images: ImageSet, preset: Preset | None = None) -> inr.FieldSpec:
    """The paper's Table 1 architectures for `images`, with `preset`'s MFN input_scale (default: the paper's, 3.46
    for RGB/CIFAR, 3.03 otherwise)."""
    return preset.spec(arch, images.channels) if preset else field_spec(arch, images.channels)


def fit_datasets(args, preset: Preset, log) -> tuple[INRDataset, INRDataset, inr.FieldSpec]:
    """(train INRs, test INRs) for the run: the built-in split, or all of --dataset vs all of --test-dataset."""
    images = load_images(args.dataset)
    max_train = _given(args.max_train_images, preset.max_train_images)
    max_test = _given(args.max_test_images, preset.max_test_images)
    if args.test_dataset:
        test_images = load_images(args.test_dataset).with_classes(images.class_names)
        train_images = _cap(_all_as(images, train=True), max_train, 0)
        test_images = _cap(_all_as(test_images, train=False), 0, max_test)
        sources = [train_images, test_images]
    else:
        sources = [_cap(images, max_train, max_test)]
    spec = spec_for(args.arch, images, preset)
    anti_alias = args.arch == "mfn"
    seeds_per_image = _given(args.seeds_per_image, preset.seeds_for(args.arch))
    fitted = []
    for imgs, offset in zip(sources, (0, sources[0].num_images), strict=False):
        # held-out images start from initialisations that no training INR shares (global images past the training set)
        if imgs.size != sources[0].size or imgs.channels != sources[0].channels:
            raise SystemExit(f"--test-dataset images are {imgs.size} x {imgs.channels} channels, training images "
                             f"{sources[0].size} x {sources[0].channels}: they must match")
        t0 = time.perf_counter()
        ds = fit_inr_dataset(imgs, spec, seeds_per_image,
                             steps=_given(args.fit_steps, preset.fit_steps[args.arch]),
                             lr=_given(args.fit_lr, preset.fit_lr_for(args.arch, imgs.channels)),
                             anti_alias=anti_alias, shared_init=args.init == "shared", device=args.device,
                             cache_dir=args.cache_dir, image_offset=offset)
        log(f"INRs of {imgs.name}: {len(ds)} ({imgs.num_images} images x {seeds_per_image} seeds), "
            f"PSNR {float(ds.psnr.mean()):.2f} dB, {time.perf_counter() - t0:.0f} s (cache {args.cache_dir})")
        fitted.append(ds)
    if len(fitted) == 1:
        return fitted[0].train(), fitted[0].test(), spec
    return fitted[0], fitted[1], spec


def _overrides(pairs: list[str], cls, flag: str) -> dict:
    """`["key=value", ...]` -> {key: value} for fields of dataclass `cls`, values parsed as the field's type."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or key not in fields:
            raise SystemExit(f"{flag} {pair!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(fields))}")
        kind = type(getattr(cls(), key))
        try:
            if kind is bool:  # bool("false") is True
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError(text)
                out[key] = text.lower() in ("true", "1")
            else:
                out[key] = text if kind is str else kind(text)  # int("3.7") fails instead of truncating
        except ValueError:
            raise SystemExit(f"{flag} {pair!r}: {text!r} is not a valid {kind.__name__}") from None
    return out


def _given(value, default):
    """A command-line value where one was given (0 included), else the preset's."""
    return default if value is None else value


def probe_accuracy(encoder, train: INRDataset, test: INRDataset, device) -> float:
    ftr = extract_features(encoder, train, device=device)
    fte = extract_features(encoder, test, device=device)
    return linear_probe(ftr, train.labels, fte, test.labels, train.class_names).accuracy


def random_encoder_probe(spec: inr.FieldSpec, enc_cfg: EncoderConfig, seed: int, train: INRDataset,
                         test: INRDataset, device) -> float:
    """The probe baseline: the same encoder, untrained (initialised from `seed`), normalised on the train INRs."""
    seed_everything(seed)
    encoder = build_encoder(spec, enc_cfg)
    encoder.set_normalization(train.params, train.labels)
    return probe_accuracy(encoder, train, test, device)


def run(args) -> dict:
    t_start = time.perf_counter()
    preset = PRESETS[args.preset]
    device = torch.device(args.device) if args.device else inr.default_device()
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    train, test, spec = fit_datasets(args, preset, log)
    if args.eval == "validation":
        train, test = train.validation_split()
        log(f"evaluating on a validation split of the training images: {len(train)} INRs train, {len(test)} "
            "validate (the test images are not used)")
    if len(test) == 0:
        raise SystemExit("no test INRs: the dataset has no test split; pass --test-dataset")
    psnr_mean = float(torch.cat([train.psnr, test.psnr]).mean())
    out: dict = {"contrastive_probe_acc": [], "supervised_acc": [], "random_encoder_probe_acc": [],
                 "raw_weights_probe_acc": [], "simclr_final": [], "seconds_per_seed": []}

    t0 = time.perf_counter()
    raw = linear_probe(raw_weight_features(spec, train.params), train.labels, raw_weight_features(spec, test.params),
                       test.labels, train.class_names).accuracy
    log(f"raw-weights probe: {raw:.2f} % ({time.perf_counter() - t0:.0f} s)")

    simclr_cfg = sup_cfg = None
    for k in range(args.seeds):
        t_seed = time.perf_counter()
        seed = args.seed_offset + k
        enc_cfg = dataclasses.replace(preset.encoder, probe_points=args.probe_points,
                                      **_overrides(args.encoder, EncoderConfig, "--encoder"))
        policy = dataclasses.replace(preset.augment, **_overrides(args.augment, inr.AugmentPolicy, "--augment"))
        simclr_steps = _given(args.simclr_steps, preset.simclr_steps)
        contrastive, last = float("nan"), None  # --simclr-steps 0: the supervised baseline (and the others) alone
        if simclr_steps > 0:
            simclr_cfg = preset.simclr_config(
                encoder=enc_cfg, augment=policy,
                optim=OptimConfig(lr=_given(args.simclr_lr, preset.simclr_lr), warmup_steps=preset.warmup_steps),
                temperature=_given(args.temperature, preset.temperature),
                objective=_given(args.objective, preset.objective),
                reconstruction_weight=_given(args.reconstruction_weight, preset.reconstruction_weight),
                steps=simclr_steps, seed=seed)
            every = max(1, simclr_cfg.steps // 10)
            res = pretrain(train, simclr_cfg, device=device, on_step=lambda s, m, every=every, seed=seed: log(
                f"  simclr seed {seed} step {s}: loss {m['loss']:.3f} top1 {m['top1']:.3f} top5 {m['top5']:.3f}")
                if s % every == 0 else None)
            contrastive = probe_accuracy(res.encoder, train, test, device)
            last = res.history[-1]
            log(f"seed {seed}: contrastive probe {contrastive:.2f} % (SimCLR {res.seconds:.0f} s)")

        random_acc = random_encoder_probe(spec, enc_cfg, seed, train, test, device)
        log(f"seed {seed}: random-encoder probe {random_acc:.2f} %")

        sup_steps = _given(args.supervised_steps, preset.supervised_steps)
        if sup_steps > 0:
            sup_cfg = preset.supervised_config(
                encoder=enc_cfg, augment=policy,
                optim=OptimConfig(lr=_given(args.supervised_lr, preset.supervised_lr),
                                  warmup_steps=preset.warmup_steps),
                steps=sup_steps, seed=seed)
            sup = train_supervised(train, sup_cfg, device=device)
            sup_acc = evaluate_classifier(sup.model, test, device=device)
        else:
            sup_acc = float("nan")
        log(f"seed {seed}: supervised {sup_acc:.2f} %")

        out["contrastive_probe_acc"].append(contrastive)
        out["supervised_acc"].append(sup_acc)
        out["random_encoder_probe_acc"].append(random_acc)
        out["raw_weights_probe_acc"].append(raw)
        out["simclr_final"].append({"loss": last["loss"], "top1": last["top1"], "top5": last["top5"]} if last else None)
        out["seconds_per_seed"].append(time.perf_counter() - t_seed)

    out.update({
        "psnr_mean": psnr_mean,
        "num_train_inrs": len(train), "num_test_inrs": len(test),
        "config": {"dataset": args.dataset, "test_dataset": args.test_dataset, "eval": args.eval, "arch": args.arch,
                   "preset": args.preset, "seeds": args.seeds, "init": args.init, "spec": spec.to_dict(),
                   "probe_points": args.probe_points, "max_train_images": args.max_train_images,
                   "max_test_images": args.max_test_images,
                   "preset_values": dataclasses.asdict(preset), "device": str(device),
                   "fit": train.meta.get("fit"), "simclr": simclr_cfg.to_dict() if simclr_cfg else None,
                   "supervised": sup_cfg.to_dict() if sup_cfg else None, "torch_threads": torch.get_num_threads()},
        "wall_seconds": time.perf_counter() - t_start,
    })
    return out


def _mean_std(values: list[float]) -> str:
    v = np.asarray(values, dtype=float)
    if v.size == 0 or np.isnan(v).all():
        return "not run"
    std = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return f"{float(v.mean()):6.2f} ± {std:5.2f}"


def paper_dataset(dataset: str) -> str | None:
    """The dataset of the paper's Table 2 a run compares with, by its name: "mnist", "cifar", or None (digits,
    Fashion-MNIST and other sets have no cell there)."""
    name = Path(str(dataset)).name.lower()
    if "cifar" in name:
        return "cifar"
    return "mnist" if "mnist" in name and "fashion" not in name else None


def table(result: dict) -> str:
    cfg = result["config"]
    kind = paper_dataset(cfg["dataset"])
    paper = PAPER[cfg["arch"]][kind] if kind else None
    evaluated_on = ("VALIDATION split of the training images" if cfg.get("eval") == "validation"
                    else f"test images {cfg['test_dataset']}" if cfg.get("test_dataset") else "test split")
    rows = [("Supervised (same encoder)", "supervised_acc", paper[0] if paper else None),
            ("Contrastive (linear probe)", "contrastive_probe_acc", paper[1] if paper else None),
            ("Random encoder (linear probe)", "random_encoder_probe_acc", None),
            ("Raw weights (linear probe)", "raw_weights_probe_acc", None)]
    head = (f"{cfg['arch'].upper()} on {cfg['dataset']} ({cfg['init']} init, preset {cfg['preset']}, "
            f"K = {cfg['seeds']} seeds, mean PSNR {result['psnr_mean']:.1f} dB, "
            f"{evaluated_on}"
            + (f", probe features at {cfg['probe_points']} points" if cfg.get("probe_points") else "") + ")")
    lines = [head, f"{'method':32s} {'accuracy % (mean ± std)':>24s} {'paper (best run)':>17s}"]
    for name, key, ref in rows:
        lines.append(f"{name:32s} {_mean_std(result[key]):>24s} {f'{ref:.2f}' if ref else '':>17s}")
    lines.append(f"wall time {result['wall_seconds']:.0f} s")
    return "\n".join(lines)


def _write_json(path: str, data: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=target.name + ".", suffix=".tmp", dir=target.parent)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=2, default=lambda o: None if isinstance(o, float) and math.isnan(o) else str(o))
    os.replace(tmp, target)


LIST_KEYS = ("contrastive_probe_acc", "supervised_acc", "random_encoder_probe_acc", "raw_weights_probe_acc",
             "simclr_final", "seconds_per_seed")


def merge(paths: list[str]) -> dict:
    """One result from several single-seed runs of the same cell (e.g. run one seed per process so that partial
    results survive): lists are concatenated, wall times summed, the config of the first kept with all seeds."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    if not parts:
        raise SystemExit("--merge needs at least one JSON file")
    out = dict(parts[0])
    for key in LIST_KEYS:
        out[key] = [v for part in parts for v in part.get(key, [])]
    out["wall_seconds"] = sum(part["wall_seconds"] for part in parts)
    out["config"] = {**parts[0]["config"], "seeds": len(out["contrastive_probe_acc"]), "merged_from": list(paths)}
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--merge":  # python -m training.reproduce --merge OUT.json IN.json [IN.json ...]
        if len(argv) < 3:
            raise SystemExit("usage: python -m training.reproduce --merge OUT.json IN.json [IN.json ...]")
        result = merge(argv[2:])
        print(table(result))
        _write_json(argv[1], result)
        return 0
    parser = argparse.ArgumentParser(prog="python -m training.reproduce", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="digits, mnist5k, or a path (image folder, zip, IDX, CIFAR)")
    parser.add_argument("--arch", choices=["siren", "mfn"], required=True)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="smoke")
    parser.add_argument("--seeds", type=int, default=1, help="K training seeds (mean ± std over them)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--test-dataset", help="evaluate on these images instead of the built-in test split")
    parser.add_argument("--eval", choices=["test", "validation"], default="test",
                        help="validation: train on 80%% of the training images and evaluate on the other 20%% "
                             "(stratified, all seeds of an image on one side; the test images are not used). Choose "
                             "recipes with it; the test split only reports")
    parser.add_argument("--cache-dir", default=os.environ.get("CINR_CACHE", ".cinr-cache"),
                        help="fitted INR datasets are cached here (default .cinr-cache or $CINR_CACHE)")
    parser.add_argument("--init", choices=["independent", "shared"], default="independent",
                        help="independent (the paper's setting): every INR starts from its own initialisation; "
                             "shared: seed s starts from the same initialisation for every image")
    parser.add_argument("--seeds-per-image", type=int, default=None,
                        help="INRs fitted per image, each from its own seed (default: the preset's; the paper: 30)")
    parser.add_argument("--max-train-images", type=int, default=None,
                        help="at most this many training images, a seeded sample with every class's share kept "
                             "(default: the preset's; 0 = all)")
    parser.add_argument("--max-test-images", type=int, default=None, help="the same for the test images")
    parser.add_argument("--fit-steps", type=int, default=None, help="Adam steps per INR (default: the preset's)")
    parser.add_argument("--fit-lr", type=float, default=None, help="the INR fit's Adam learning rate (default: "
                                                                   "inr.DEFAULT_FIT's: SIREN 1e-3, MFN 2e-2)")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: $CINR_DEVICE or auto)")
    parser.add_argument("--temperature", type=float, default=None)
    parser.add_argument("--reconstruction-weight", type=float, default=None,
                        help="SimCLR also reconstructs each view's rendering from its features, with this weight "
                             "(default: the preset's; 0 = off)")
    parser.add_argument("--objective", choices=OBJECTIVES, default=None,
                        help="the SimCLR run's loss (default: the preset's; nt_xent is the paper's)")
    parser.add_argument("--simclr-steps", type=int, default=None, help="0 skips SimCLR and the contrastive probe")
    parser.add_argument("--supervised-steps", type=int, default=None, help="0 skips the supervised baseline")
    parser.add_argument("--simclr-lr", type=float, default=None)
    parser.add_argument("--supervised-lr", type=float, default=None)
    parser.add_argument("--seed-offset", type=int, default=0)
    parser.add_argument("--probe-points", type=int, default=0,
                        help="> 0: the encoder also reads probe features at this many learned coordinates (an "
                             "extension: it queries the fields; the paper and the default use weights only)")
    parser.add_argument("--augment", action="append", default=[], metavar="KEY=VALUE",
                        help="an inr.AugmentPolicy field for SimCLR and the supervised baseline, e.g. "
                             "intensity_prob=0.5 (repeatable)")
    parser.add_argument("--encoder", action="append", default=[], metavar="KEY=VALUE",
                        help="an EncoderConfig field instead of the preset's, e.g. layers=3 (repeatable)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: training.threads' policy: the usable cores divided among "
                             "CINR_TORCH_PROCESSES, or CINR_TORCH_THREADS)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    for flag, value in (("--simclr-steps", args.simclr_steps), ("--supervised-steps", args.supervised_steps),
                        ("--max-train-images", args.max_train_images), ("--max-test-images", args.max_test_images)):
        if value is not None and value < 0:
            parser.error(f"{flag} must be >= 0, got {value}")
    if args.seeds_per_image is not None and args.seeds_per_image < 2:
        parser.error(f"--seeds-per-image must be >= 2 (SimCLR pairs two seeds of an image), got {args.seeds_per_image}")
    for flag, value in (("--fit-steps", args.fit_steps), ("--fit-lr", args.fit_lr)):
        if value is not None and value <= 0:
            parser.error(f"{flag} must be > 0, got {value}")
    _overrides(args.augment, inr.AugmentPolicy, "--augment")  # bad KEY=VALUE fails now, not after the fit
    _overrides(args.encoder, EncoderConfig, "--encoder")
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be >= 1, got {args.threads}")
        os.environ[THREADS_ENV] = str(args.threads)
    apply_thread_policy()
    if not args.quiet:
        print(describe(), file=sys.stderr)
    result = run(args)
    print(table(result))
    if args.json:
        _write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
