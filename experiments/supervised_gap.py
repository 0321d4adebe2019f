"""Does the weights-only encoder underfit or overfit? Supervised training on one cell's cached INR dataset, then
accuracy on training INRs (no augmentation) against the test INRs.

  python experiments/supervised_gap.py --dataset mnist5k --arch siren --steps 1500 --fit-lr 5e-4 \
      --cache-dir runs/cache [--augment]

Without --augment the batches are the plain INRs (seed pairs are not needed: any INR of a training image is a
sample). It prints the running accuracy of the training batches every 100 steps, then the accuracy over every
training INR and over every test INR.
"""

import argparse
import time

import torch

import inr
from training.loop import OptimConfig
from training.reproduce import PRESETS, fit_datasets
from training.supervised import SupervisedConfig, evaluate_classifier, train_supervised


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", choices=["siren", "mfn"], required=True)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--fit-lr", type=float, default=None, help="the cached fit's learning rate")
    parser.add_argument("--fit-steps", type=int, default=None, help="the cached fit's steps (default: the preset's)")
    parser.add_argument("--seeds-per-image", type=int, default=None, help="default: the preset's")
    parser.add_argument("--augment", action="store_true", help="the default inr.AugmentPolicy (else none)")
    parser.add_argument("--cache-dir", default="runs/cache")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    args.test_dataset, args.init, args.device = None, "independent", "cpu"
    if args.threads:
        torch.set_num_threads(args.threads)

    preset = PRESETS["cpu"]
    train, test, _ = fit_datasets(args, preset, lambda msg: print(msg, flush=True))  # the cell's cached INRs
    config = SupervisedConfig(encoder=preset.encoder,
                              augment=inr.AugmentPolicy() if args.augment else inr.AugmentPolicy.none(),
                              optim=OptimConfig(lr=args.lr), batch_size=args.batch, steps=args.steps, seed=args.seed)
    batch_acc: list[float] = []
    start = time.perf_counter()

    def on_step(step: int, metrics: dict) -> None:
        batch_acc.append(metrics["accuracy"])
        if step % 100 == 0:
            recent = batch_acc[-100:]
            print(f"step {step}: loss {metrics['loss']:.3f}, training-batch accuracy (last 100 steps) "
                  f"{sum(recent) / len(recent):.1f} %, {time.perf_counter() - start:.0f} s", flush=True)

    result = train_supervised(train, config, on_step=on_step, device="cpu")
    # Every training INR: a prefix would not do, the rows are image-major and MNIST-5k's images are sorted by class.
    print(f"accuracy: training INRs {evaluate_classifier(result.model, train):.2f} % ({len(train)}), "
          f"test INRs {evaluate_classifier(result.model, test):.2f} % ({len(test)})")


if __name__ == "__main__":
    main()
