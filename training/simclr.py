"""SimCLR on INR weights (paper section 3): two views of an image are two INRs fitted from DIFFERENT seeds, each
through random weight-space augmentations (`inr.random_augment`); a Relational Transformer encodes them, a small MLP
projects them, and NT-Xent (eq. 6) pulls positives together. Afterwards the head is dropped and the encoder's
features are probed.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import inr
from training.data import INRDataset, PairSampler
from training.encoder import EncoderConfig, build_encoder
from training.loop import OnStep, OptimConfig, TrainResult, seed_everything, train_loop
from training.losses import multi_view_nt_xent, nt_xent, retrieval_accuracy, vicreg

OBJECTIVES = ("nt_xent", "vicreg")


@dataclass
class SimCLRConfig:
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    augment: inr.AugmentPolicy = field(default_factory=inr.AugmentPolicy)
    optim: OptimConfig = field(default_factory=OptimConfig)
    projection_hidden: int = 128
    projection_dim: int = 64
    temperature: float = 0.1
    # "nt_xent" (the paper's SimCLR loss) or "vicreg" (Bardes et al. 2022: no negatives, variance and covariance
    # terms instead; the temperature is then unused)
    objective: str = "nt_xent"
    # > 0: the objective also asks a small decoder to reconstruct, from the encoder's features, each view's own
    # rendering on a coarse grid (`reconstruction_grid` x `reconstruction_grid`), weighted by this. The target is
    # computed from the view's weights (`inr.evaluate`): no labels and no pixels of the dataset; the encoder still
    # reads weights only. Contrastive pairs of one image's INRs only ask for *some* feature that matches them; a
    # reconstruction asks for what the field shows (as inr2vec, De Luigi et al. 2023, learns INR embeddings by
    # decoding the signal). Off by default: it did not help on the validation split (docs/RESULTS.md).
    reconstruction_weight: float = 0.0
    reconstruction_grid: int = 14
    batch_size: int = 128  # images per step (views_per_image x INRs through the encoder)
    # INRs of each image per step, each from a different seed: 2 = the paper's positive pairs (NT-Xent); more = every
    # other view of the image is a positive (training.losses.multi_view_nt_xent), needing that many seeds per image
    views_per_image: int = 2
    steps: int = 1000
    seed: int = 0
    checkpoint_every: int = 200

    def __post_init__(self) -> None:
        if self.temperature <= 0:
            raise ValueError("SimCLRConfig.temperature must be positive")
        if self.batch_size < 2 or self.steps < 1:
            raise ValueError("SimCLRConfig needs batch_size >= 2 and steps >= 1")
        if self.reconstruction_weight < 0 or self.reconstruction_grid < 2:
            raise ValueError("SimCLRConfig needs reconstruction_weight >= 0 and reconstruction_grid >= 2")
        if self.views_per_image < 2:
            raise ValueError("SimCLRConfig.views_per_image must be at least 2")
        if self.views_per_image > 2 and (self.objective != "nt_xent" or self.reconstruction_weight > 0):
            raise ValueError("SimCLRConfig.views_per_image > 2 works with the nt_xent objective only, without "
                             "reconstruction")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"SimCLRConfig.objective must be one of {', '.join(OBJECTIVES)}, got {self.objective!r}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SimCLRConfig:
        return cls(**nested_configs(d))


def nested_configs(d: dict) -> dict:
    """A saved training config (`to_dict`) with its encoder, augment and optim parts made dataclasses again."""
    return {**d, "encoder": EncoderConfig.from_dict(d.get("encoder", {})),
            "augment": inr.AugmentPolicy(**d.get("augment", {})), "optim": OptimConfig(**d.get("optim", {}))}


class SimCLRModel(nn.Module):
    """Encoder f and projection head g (Linear-BN-ReLU-Linear): z = g(f(theta)); with a reconstruction weight, also
    a decoder from f(theta) to the field on a coarse grid."""

    def __init__(self, spec: inr.FieldSpec, config: SimCLRConfig) -> None:
        super().__init__()
        self.encoder = build_encoder(spec, config.encoder)
        d = config.encoder.feature_dim
        # BatchNorm in the head (as in SimCLR): it removes what all INRs share, which at initialisation dominates
        # the encoder's features and would otherwise start NT-Xent at its chance value with tiny gradients.
        self.head = nn.Sequential(nn.Linear(d, config.projection_hidden), nn.BatchNorm1d(config.projection_hidden),
                                  nn.ReLU(), nn.Linear(config.projection_hidden, config.projection_dim))
        if config.reconstruction_weight > 0:
            pixels = config.reconstruction_grid ** 2 * spec.out_dim
            self.decoder = nn.Sequential(nn.Linear(d, 4 * config.projection_hidden), nn.GELU(),
                                         nn.Linear(4 * config.projection_hidden, pixels))

    def forward(self, params: inr.Params) -> torch.Tensor:
        return self.head(self.encoder.encode_params(params))


def reconstruction_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error over the batch's variance of the target, [2N, P] each: the fraction of the renderings'
    variance the decoder misses (1 = predicting the batch mean), so its scale does not depend on the images'."""
    return F.mse_loss(predicted, target) / target.var(dim=0).mean().clamp_min(1e-8)


def training_rows(dataset: INRDataset) -> INRDataset:
    """The rows a model may learn from: the training split (all rows when none is marked as training)."""
    return dataset.subset(dataset.is_train) if bool(dataset.is_train.any()) else dataset


def pretrain(dataset: INRDataset, config: SimCLRConfig | None = None, *, on_step: OnStep | None = None,
             device: torch.device | str | None = None, checkpoint_dir=None, resume: bool = False) -> TrainResult:
    """SimCLR pretraining on the training rows of `dataset` (>= views_per_image seeds per image). Per step
    `on_step(step, metrics)` gets "loss", "lr", "top1", "top5" (positive retrieval among the 2N - 1 other views of the
    batch's first two views); returning False cancels with `training.loop.Cancelled`."""
    config = config or SimCLRConfig()
    device = torch.device(device) if device is not None else inr.default_device()
    train = training_rows(dataset)
    seed_everything(config.seed)
    model = SimCLRModel(dataset.spec, config)
    model.encoder.set_normalization(train.params, train.labels)
    model.to(device)
    generator = torch.Generator().manual_seed(config.seed)
    sampler = PairSampler(train, config.augment, min(config.batch_size, train.num_images), generator,
                          device=device)

    if config.views_per_image > train.seeds_per_image:
        raise ValueError(f"SimCLRConfig.views_per_image is {config.views_per_image} but the dataset has "
                         f"{train.seeds_per_image} seeds per image")
    coords = inr.grid(config.reconstruction_grid, config.reconstruction_grid, device=device)  # [G*G, 2]

    def multi_view_step(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        views, _ = sampler.sample_views(config.views_per_image)
        v = len(views)
        batch = {k: torch.cat([view[k] for view in views]) for k in views[0]}  # V N INRs, view-major, one pass
        z = model.head(model.encoder.encode_params(batch)).unflatten(0, (v, -1)).transpose(0, 1)  # [N, V, P]
        return multi_view_nt_xent(z, config.temperature), retrieval_accuracy(z[:, 0].detach(), z[:, 1].detach())

    def step_fn(step: int) -> tuple[torch.Tensor, dict[str, float]]:
        if config.views_per_image > 2:
            return multi_view_step(step)
        view_a, view_b, _ = sampler.sample()
        views = {k: torch.cat([view_a[k], view_b[k]]) for k in view_a}  # 2N INRs, one pass
        features = model.encoder.encode_params(views)  # [2N, feature_dim]
        z_a, z_b = model.head(features).chunk(2)  # [N, projection_dim] each
        loss = nt_xent(z_a, z_b, config.temperature) if config.objective == "nt_xent" else vicreg(z_a, z_b)
        metrics = retrieval_accuracy(z_a.detach(), z_b.detach())
        if config.reconstruction_weight > 0:
            with torch.no_grad():
                target = inr.evaluate(dataset.spec, views, coords).flatten(1)  # [2N, G*G*C]
            loss = loss + config.reconstruction_weight * reconstruction_loss(model.decoder(features), target)
        return loss, metrics

    config_dict = {"kind": "simclr", "spec": dataset.spec.to_dict(), **config.to_dict()}
    history, steps, seconds, ckpt = train_loop(
        model, step_fn, steps=config.steps, optim=config.optim, generator=generator, config_dict=config_dict,
        on_step=on_step, checkpoint_dir=checkpoint_dir, checkpoint_every=config.checkpoint_every, resume=resume)
    return TrainResult(model=model, encoder=model.encoder, config=config, history=history, steps=steps,
                       seconds=seconds, checkpoint=ckpt)
