"""Supervised baseline: the same Relational Transformer with a linear head, cross-entropy on labelled INRs of the
training images (any seed), through the same weight-space augmentations as SimCLR."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import inr
from training.data import INRDataset
from training.encoder import EncoderConfig, build_encoder
from training.loop import OnStep, OptimConfig, TrainResult, seed_everything, train_loop
from training.simclr import nested_configs, training_rows


@dataclass
class SupervisedConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    augment: inr.AugmentPolicy = field(default_factory=inr.AugmentPolicy)
    optim: OptimConfig = field(default_factory=OptimConfig)
    batch_size: int = 128
    steps: int = 1000
    label_smoothing: float = 0.0
    seed: int = 0
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.batch_size < 1 or self.steps < 1:
            raise ValueError("SupervisedConfig needs batch_size >= 1 and steps >= 1")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SupervisedConfig:
        return cls(**nested_configs(d))


class Classifier(nn.Module):
    """Encoder + linear head: logits [B, num_classes]."""

    def __init__(self, spec: inr.FieldSpec, config: SupervisedConfig, num_classes: int) -> None:
        super().__init__()
        self.encoder = build_encoder(spec, config.encoder)
        self.head = nn.Linear(config.encoder.feature_dim, num_classes)

    def forward(self, params: inr.Params) -> torch.Tensor:
        return self.head(self.encoder.encode_params(params))


def train_supervised(dataset: INRDataset, config: SupervisedConfig | None = None, *, on_step: OnStep | None = None,
                     device: torch.device | str | None = None, checkpoint_dir=None,
                     resume: bool = False) -> TrainResult:
    """Trains encoder + linear head on the training rows of `dataset`; per step `on_step(step, metrics)` gets "loss",
    "lr", "accuracy" (on the augmented batch, percent). The result's `metrics` hold "test_accuracy" (percent, over
    every INR of the test rows) when the dataset has test rows."""
    config = config or SupervisedConfig()
    device = torch.device(device) if device is not None else inr.default_device()
    train = training_rows(dataset)
    seed_everything(config.seed)
    model = Classifier(dataset.spec, config, len(dataset.class_names))
    model.encoder.set_normalization(train.params, train.labels)
    model.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    labels = train.labels.to(device)
    batch = min(config.batch_size, len(train))

    def step_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        rows = torch.randperm(len(train), generator=generator)[:batch]
        params = {k: v[rows].to(device) for k, v in train.params.items()}
        params = inr.random_augment(dataset.spec, params, config.augment, generator)
        logits = model(params)
        y = labels[rows.to(device)]
        loss = F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)
        acc = float((logits.argmax(1) == y).float().mean()) * 100.0
        return loss, {"accuracy": acc}

    config_dict = {"kind": "supervised", "spec": dataset.spec.to_dict(), "num_classes": len(dataset.class_names),
                   "class_names": list(dataset.class_names), **config.to_dict()}
    history, steps, seconds, ckpt = train_loop(
        model, step_fn, steps=config.steps, optim=config.optim, generator=generator, config_dict=config_dict,
        on_step=on_step, checkpoint_dir=checkpoint_dir, checkpoint_every=config.checkpoint_every, resume=resume)
    metrics = {}
    if dataset.is_train.any() and not dataset.is_train.all():
        metrics["test_accuracy"] = evaluate_classifier(model, dataset.test(), device=device)
    return TrainResult(model=model, encoder=model.encoder, config=config, history=history, steps=steps,
                       seconds=seconds, checkpoint=ckpt, metrics=metrics)


@torch.no_grad()
def evaluate_classifier(model: Classifier, dataset: INRDataset, device: torch.device | str | None = None,
                        batch_size: int = 256) -> float:
    """Accuracy (percent) of `model` over every INR of `dataset` (no augmentation)."""
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    correct = 0
    for start in range(0, len(dataset), batch_size):
        params = {k: v[start:start + batch_size].to(device) for k, v in dataset.params.items()}
        pred = model(params).argmax(1).cpu()
        correct += int((pred == dataset.labels[start:start + batch_size]).sum())
    return 100.0 * correct / max(len(dataset), 1)
