"""The plain training loop shared by SimCLR and the supervised baseline.

AdamW (or Adam), cosine learning rate with linear warmup, gradient clipping, deterministic seeding, an `on_step`
callback (metrics out, cancel in: returning False raises `Cancelled`), checkpoints every K steps and resume (model,
optimizer moments, step and the sampler's random state; see `training.checkpoint`).
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from training.checkpoint import load_checkpoint, save_checkpoint

OnStep = Callable[[int, dict[str, float]], bool | None]
LAST_CHECKPOINT = "last.safetensors"


class Cancelled(Exception):  # noqa: N818 - the name the other layers catch
    """Training was cancelled by the on_step callback (it returned False)."""

    def __init__(self, step: int) -> None:
        super().__init__(f"training cancelled at step {step}")
        self.step = step


@dataclass
class OptimConfig:
    """Optimiser and schedule: AdamW (or Adam), cosine decay to `min_lr_ratio * lr` after linear warmup."""

    optimizer: str = "adamw"  # "adamw" or "adam"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0  # max global gradient norm; 0 = no clipping

    def __post_init__(self) -> None:
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(f"optimizer must be 'adamw' or 'adam', got {self.optimizer!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.warmup_steps < 0 or self.grad_clip < 0:
            raise ValueError("lr must be > 0; weight_decay, warmup_steps and grad_clip >= 0")


@dataclass
class TrainResult:
    """What a training run returns: the trained module(s), its per-step history and bookkeeping."""

    model: nn.Module  # the full trained module (SimCLR: encoder + projection head; supervised: encoder + head)
    encoder: nn.Module  # the encoder alone (frozen features for probes and embeddings)
    config: object
    history: list[dict[str, float]] = field(default_factory=list)  # one dict of metrics per step, with "step"
    steps: int = 0  # steps completed
    seconds: float = 0.0
    checkpoint: str | None = None  # path of the last checkpoint written, if any
    metrics: dict[str, float] = field(default_factory=dict)  # final metrics (e.g. test accuracy)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch so that model initialisation and sampling repeat exactly."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def cosine_lr(step: int, total_steps: int, cfg: OptimConfig) -> float:
    """Learning rate at `step` (0-based): linear warmup to cfg.lr, then cosine decay to cfg.lr * min_lr_ratio."""
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(total_steps - cfg.warmup_steps, 1)
    progress = min(max(step - cfg.warmup_steps, 0) / span, 1.0)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + (cfg.lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def make_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    # No weight decay on biases, norms and embeddings (1-D tensors and the embedding tables).
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.dim() < 2 or "embed" in name else decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr)
    return torch.optim.AdamW(groups, lr=cfg.lr)


def train_loop(model: nn.Module, step_fn: Callable[[int], tuple[torch.Tensor, dict[str, float]]], *,
               steps: int, optim: OptimConfig, generator: torch.Generator, config_dict: dict,
               on_step: OnStep | None = None, checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0,
               resume: bool = False) -> tuple[list[dict[str, float]], int, float, str | None]:
    """Runs `steps` optimisation steps of `step_fn(step) -> (loss, metrics)`.

    `generator` is the data sampler's random generator: its state goes into checkpoints so a resumed run draws the
    same batches as an uninterrupted one. `config_dict` is stored with every checkpoint. With `resume` and a
    checkpoint in `checkpoint_dir`, training continues after the checkpoint's step. Returns (history, steps done,
    seconds, last checkpoint path).
    """
    optimizer = make_optimizer(model, optim)
    start = 0
    ckpt_path = Path(checkpoint_dir) / LAST_CHECKPOINT if checkpoint_dir is not None else None
    last_written = None
    if resume and ckpt_path is not None and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        model.load_state_dict(ckpt.state_dict)
        if ckpt.optimizer_state is not None:
            optimizer.load_state_dict(ckpt.optimizer_state)
        start = int(ckpt.extra.get("step", 0))
        if "generator_state" in ckpt.tensors:
            generator.set_state(ckpt.tensors["generator_state"])
        last_written = str(ckpt_path)

    def write_checkpoint(step: int) -> str:
        assert ckpt_path is not None
        save_checkpoint(ckpt_path, model, config_dict, extra={"step": step}, optimizer=optimizer,
                        tensors={"generator_state": generator.get_state()})
        return str(ckpt_path)

    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    model.train()
    step = start
    for step in range(start, steps):
        lr = cosine_lr(step, steps, optim)
        for group in optimizer.param_groups:
            group["lr"] = lr
        optimizer.zero_grad(set_to_none=True)
        loss, metrics = step_fn(step)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}: lower the learning rate")
        loss.backward()
        if optim.grad_clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), optim.grad_clip)
        optimizer.step()
        record = {"step": float(step + 1), "loss": float(loss.detach()), "lr": lr, **metrics}
        history.append(record)
        done = step + 1
        if ckpt_path is not None and checkpoint_every > 0 and done % checkpoint_every == 0 and done < steps:
            last_written = write_checkpoint(done)
        if on_step is not None and on_step(done, {k: v for k, v in record.items() if k != "step"}) is False:
            raise Cancelled(done)
    done = max(steps, start)
    if ckpt_path is not None:
        last_written = write_checkpoint(done)
    model.eval()
    return history, done - start, time.perf_counter() - t0, last_written
