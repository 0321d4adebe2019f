"""Fitting many INRs at once: S seeds per image for N images in one batched Adam optimisation (paper eq. 2).

All INRs of a chunk live in one flat parameter tensor `[B, D]` (B = images in the chunk x seeds); the loss is the sum
of the per-INR mean squared errors, so each INR gets exactly the gradient of its own loss, and Adam, being
elementwise, updates each INR as if it were fitted alone. There is no Python loop over INRs.

Anti-aliasing (MFN, paper section 3.2.1). The band limit of an MFN along an axis is at most the sum over its filters
of each filter's largest |omega| along that axis (a product of sines only contains sums of the filters'
frequencies). The paper adds the L0-type regulariser of eq. 9 to the loss; a penalty only discourages high
frequencies, it does not guarantee a bound, and its weight needs tuning per dataset. `fit(..., anti_alias=True)`
instead keeps the bound as a hard constraint: before the first step and after every Adam step each filter's
frequencies are clamped, per axis, to Nyquist / filters, so the sum over filters never exceeds the grid's Nyquist
frequency. Frequencies under the budget are untouched, so the fit is free below the band edge.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from inr.device import default_device
from inr.fields import Params, check_params, evaluate, grid, init, nyquist
from inr.fused import FusedStep, filter_bank, packed_size, packed_views
from inr.spec import FieldSpec


@dataclass(frozen=True)
class FitDefaults:
    """Default number of Adam steps and learning rate for one architecture (see bench/README.md for the PSNR)."""

    steps: int
    lr: float


DEFAULT_FIT: dict[str, FitDefaults] = {
    "siren": FitDefaults(steps=500, lr=1e-3),
    "mfn": FitDefaults(steps=500, lr=2e-2),
}

ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8

# Independent initialisation: INR (image i, seed s) starts from generator seed (i + 1) * _IMAGE_STRIDE + s, which
# never collides with the shared-init seeds 0..S-1 (as long as seed ids stay below the stride).
_IMAGE_STRIDE = 1_000_003


def independent_init_seed(image_index: int, seed: int) -> int:
    """The generator seed `fit` draws INR (global image `image_index`, seed id `seed`) from with independent
    initialisation: `inr.init(spec, 1, seeds=[independent_init_seed(i, s)], grid_size=...)` gives its starting
    weights."""
    return (int(image_index) + 1) * _IMAGE_STRIDE + int(seed)


class FitCancelled(RuntimeError):
    """Raised by `fit` when its callback returned False."""


@dataclass
class FitResult:
    """INRs fitted by `fit`. Image-major: image i, seed s is row i * S + s of every tensor."""

    spec: FieldSpec
    params: Params  # name -> CPU float32 [N*S, ...]
    psnr: torch.Tensor  # [N*S] dB
    image_index: torch.Tensor  # [N*S] long, global (includes image_offset)
    seed: torch.Tensor  # [N*S] long, seed id
    steps: int
    lr: float
    anti_alias: bool
    shared_init: bool
    seconds: float


Callback = Callable[[int, dict], "bool | None"]


def psnr(spec: FieldSpec, params: Params, images: torch.Tensor, *, seeds_per_image: int | None = None) -> torch.Tensor:
    """PSNR in dB (peak 1) of each INR rendered on the images' grid against its image: `[B]`.

    images `[N, C, H, W]` in [0, 1]; params hold B = N * S INRs, image-major (INR b belongs to image b // S);
    S defaults to B // N.
    """
    _check_images(spec, images)
    batch = check_params(spec, params)
    n = images.shape[0]
    s = batch // n if seeds_per_image is None else seeds_per_image
    if s < 1 or n * s != batch:
        raise ValueError(f"{batch} INRs do not match {n} images x {seeds_per_image or '?'} seeds per image")
    any_param = next(iter(params.values()))
    coords = grid(images.shape[2], images.shape[3], device=any_param.device, dtype=any_param.dtype)
    target = _targets(images.to(device=any_param.device, dtype=any_param.dtype), s)
    with torch.no_grad():  # in blocks of INRs, so that memory stays bounded for whole datasets
        mse = torch.cat([
            (evaluate(spec, {k: t[b:b + 256] for k, t in params.items()}, coords) - target[b:b + 256])
            .square().mean(dim=(1, 2)) for b in range(0, batch, 256)])
    return _psnr_from_mse(mse)


def band_limit(spec: FieldSpec, params: Params) -> torch.Tensor:
    """MFN only: per INR and axis (rows, cols) the sum over filters of the filter's largest |omega|, in radians per
    unit coordinate: `[B, 2]`. The field contains no frequency above it; compare with `inr.nyquist(H, W)`."""
    if spec.arch != "mfn":
        raise ValueError(f"band_limit is defined for MFNs, not {spec.arch!r}")
    check_params(spec, params)
    return sum(params[f"filter{i}.omega"].abs().amax(dim=1) for i in range(spec.filters))


def fit(spec: FieldSpec, images: torch.Tensor, seeds: int | Sequence[int] = 1, steps: int | None = None,
        lr: float | None = None, anti_alias: bool = False, shared_init: bool = True,
        device: torch.device | str | None = None, chunk_size: int | None = None, image_offset: int = 0,
        callback: Callback | None = None) -> FitResult:
    """Fits S INRs to each of N images (`[N, C, H, W]` in [0, 1], C == spec.out_dim) with Adam on the per-INR MSE.

    seeds: S (seed ids 0..S-1) or a list of seed ids. shared_init: seed s starts from the same weights for every
    image; otherwise from weights drawn for (global image index, seed). Images go in chunks of `chunk_size` images
    (default: sized for the device); a chunk's INRs are fitted together and never interact. A chunk's result depends
    only on its images, seeds and size, so shards cut at chunk boundaries (image_offset: the global index of
    images[0], the same chunk_size) give exactly the bits of the unsharded fit; another chunking agrees to float32
    rounding (BLAS picks its kernels by shape), amplified by the steps.
    callback(step, stats) runs after every step (stats: loss, psnr_mean, step, steps, done, total, chunk, chunks);
    returning False raises FitCancelled. On the CPU the fit runs with CINR_FIT_THREADS torch threads (default 1).
    """
    started = time.perf_counter()
    _check_images(spec, images)
    seed_ids = _seed_list(seeds)
    defaults = DEFAULT_FIT[spec.arch]
    steps = defaults.steps if steps is None else int(steps)
    lr = defaults.lr if lr is None else float(lr)
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if not lr > 0 or not math.isfinite(lr):
        raise ValueError(f"lr must be a positive number, got {lr}")
    if anti_alias and spec.arch != "mfn":
        raise ValueError("anti_alias applies to MFNs only (a SIREN's band is not bounded by its weights)")
    if image_offset < 0:
        raise ValueError(f"image_offset must be >= 0, got {image_offset}")
    device = default_device() if device is None else torch.device(device)
    n, _, height, width = images.shape
    s = len(seed_ids)
    if chunk_size is None:
        chunk_size = default_chunk_size(spec, height * width, s, device, images=n)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    chunks = max(1, math.ceil(n / chunk_size))
    with _CpuThreads(device):
        return _fit_chunks(spec, images, seed_ids, steps, lr, anti_alias, shared_init, device, chunk_size, chunks,
                           image_offset, callback, started)


class _CpuThreads:
    """On the CPU, fit with CINR_FIT_THREADS torch threads (default 1), restoring the setting afterwards.

    A chunk's tensors are small (cache-sized), so splitting each op over threads gains little, and on a loaded
    machine the threads' barriers cost far more: measured on the shared 2-core machine, 2 threads ran the fit about
    10x slower than 1 (bench/README.md). Run several fitting processes to use several cores.
    """

    def __init__(self, device: torch.device) -> None:
        self.threads = int(os.environ.get("CINR_FIT_THREADS", "1")) if device.type == "cpu" else 0
        self.saved = torch.get_num_threads()

    def __enter__(self) -> None:
        if self.threads > 0:
            torch.set_num_threads(self.threads)

    def __exit__(self, *exc: object) -> None:
        if self.threads > 0:
            torch.set_num_threads(self.saved)


def _fit_chunks(spec: FieldSpec, images: torch.Tensor, seed_ids: list[int], steps: int, lr: float, anti_alias: bool,
                shared_init: bool, device: torch.device, chunk_size: int, chunks: int, image_offset: int,
                callback: Callback | None, started: float) -> FitResult:
    n = images.shape[0]
    s = len(seed_ids)

    # The outputs are allocated once and each chunk's INRs copied into their rows. Lists of per-chunk tensors joined
    # at the end held the params twice, and on the CPU their many small allocations, kept alive between the chunks'
    # large freed buffers, fragmented glibc's heap: 738 against 385 MB peak for 2,000 32x32 RGB images x 2 seeds
    # (bench/README.md, "Full scale: memory").
    params_out = {name: torch.empty(n * s, *shape, dtype=torch.float32) for name, shape in spec.param_shapes().items()}
    psnr_out = torch.empty(n * s, dtype=torch.float32)
    for c in range(chunks):
        lo, hi = c * chunk_size, min(n, (c + 1) * chunk_size)
        first = image_offset + lo
        if shared_init:
            inr_seeds = [sd for _ in range(lo, hi) for sd in seed_ids]
        else:
            inr_seeds = [independent_init_seed(first + i, sd) for i in range(hi - lo) for sd in seed_ids]

        def report(step: int, loss: torch.Tensor, c: int = c, lo: int = lo) -> None:
            if callback is None:
                return
            stats = {"loss": float(loss.mean()), "psnr_mean": float(_psnr_from_mse(loss).mean()), "step": step,
                     "steps": steps, "done": lo * s, "total": n * s, "chunk": c, "chunks": chunks}
            if callback(step, stats) is False:
                raise FitCancelled(f"fit cancelled by its callback at step {step} of chunk {c + 1}/{chunks}")

        params, final_mse = _fit_chunk(spec, images[lo:hi], inr_seeds, s, steps, lr, anti_alias, device, report)
        for name, t in params.items():
            params_out[name][lo * s:hi * s] = t.detach()
        psnr_out[lo * s:hi * s] = _psnr_from_mse(final_mse)

    image_index = torch.arange(image_offset, image_offset + n, dtype=torch.long).repeat_interleave(s)
    return FitResult(
        spec=spec,
        params=params_out,
        psnr=psnr_out,
        image_index=image_index,
        seed=torch.tensor(seed_ids, dtype=torch.long).repeat(n),
        steps=steps, lr=lr, anti_alias=anti_alias, shared_init=shared_init,
        seconds=time.perf_counter() - started,
    )


CUDA_MIN_CHUNK_INRS = 8192  # INRs per CUDA chunk at least, so that every kernel of a step has work for a whole GPU


def default_chunk_size(spec: FieldSpec, pixels: int, seeds: int, device: torch.device,
                       images: int | None = None) -> int:
    """Images per chunk. On the CPU, 13 SIREN / 17 MFN 28x28 INRs: with the native sine kernel the step's fixed
    per-call cost matters more than keeping the activations in L2 (bench/README.md: 7 to 22 per chunk within 5 %,
    best at 13 to 16); given the number of images the chunks are made equal (no small last chunk).

    On CUDA, at least CUDA_MIN_CHUNK_INRS INRs per chunk (more for small images: up to 256 MiB of one activation
    buffer), so that each of the step's ~25 kernels works on millions of elements; given the number of images, the
    chunks are made equal without going under that floor (10,000 images x 1 seed: one chunk, not two of 5,000).
    Memory: the fused step's buffers hold 168 floats per pixel and SIREN 2-32-32-3, 5.6 GB for 8,192 INRs on 32x32
    images, so a GPU with less memory needs an explicit chunk_size."""
    width = spec.hidden * (spec.layers - 1 if spec.arch == "siren" else spec.filters)
    floats_per_inr = 4 * pixels * width  # the activations the fused step keeps alive, roughly
    if device.type == "cpu":
        size = max(1, 5 * 2**19 // (floats_per_inr * seeds))
        if images:
            size = math.ceil(images / math.ceil(images / size))
        return size
    least = max(math.ceil(CUDA_MIN_CHUNK_INRS / seeds), 2**28 // (floats_per_inr * seeds))
    if not images:
        return least
    for chunks in range(max(1, images // least), 1, -1):  # as many near-equal chunks as keep the last one >= least
        size = math.ceil(images / chunks)
        if images - (math.ceil(images / size) - 1) * size >= least:
            return size
    return images


def _fit_chunk(spec: FieldSpec, images: torch.Tensor, inr_seeds: list[int], s: int, steps: int, lr: float,
               anti_alias: bool, device: torch.device, report: Callable[[int, torch.Tensor], None],
               ) -> tuple[Params, torch.Tensor]:
    """Fits len(inr_seeds) INRs (image-major, s per image) with Adam; returns their params and final MSE `[B]`."""
    _, _, height, width = images.shape
    batch = len(inr_seeds)
    # One flat buffer for all parameters (and one for their gradients) so that Adam is a handful of tensor ops; laid
    # out as the fused step wants it (inr.fused.packed_views).
    flat = torch.empty(batch, packed_size(spec), device=device)
    flat_grad = torch.zeros_like(flat)
    params = packed_views(spec, flat)
    start = init(spec, batch, seeds=inr_seeds, grid_size=(height, width), device=device)
    for name, view in params.items():
        view.copy_(start[name])
    freqs = limit = None
    if anti_alias:  # one clamp of every filter's (omega_rows, omega_cols) against the per-filter budget
        freqs = filter_bank(spec, flat)[:, :, :2]  # [B, filters * hidden, 2]
        limit = torch.tensor([f / spec.filters for f in nyquist(height, width)], device=device)
        freqs.clamp_(min=-limit, max=limit)

    coords = grid(height, width, device=device)
    target = _targets(images.to(device=device, dtype=torch.float32), s)
    step_fn = FusedStep(spec, flat, flat_grad, coords, target)
    adam = _Adam(flat, flat_grad, lr)
    for step in range(1, steps + 1):
        loss = step_fn()
        adam()
        if freqs is not None:
            freqs.clamp_(min=-limit, max=limit)
        report(step, loss)
    with torch.no_grad():
        final_mse = (evaluate(spec, params, coords) - target).square().mean(dim=(1, 2))
    return {name: t.clone(memory_format=torch.contiguous_format) for name, t in params.items()}, final_mse


class _Adam:
    """Adam (Kingma & Ba; torch.optim.Adam's arithmetic) on one flat parameter tensor: all INRs of a chunk at once.

    On the CPU and CUDA it is torch's fused kernel (what torch.optim.Adam(fused=True) calls): one pass instead of
    the eight elementwise ops of the textbook update (6 against 20 us per step for 4 INRs, bench/README.md)."""

    def __init__(self, flat: torch.Tensor, grad: torch.Tensor, lr: float) -> None:
        self.flat, self.grad, self.lr = flat, grad, lr
        self.m, self.v = torch.zeros_like(flat), torch.zeros_like(flat)
        self.step = torch.zeros((), dtype=torch.float32, device=flat.device)
        self.fused = flat.device.type in ("cpu", "cuda")
        self.denom = None if self.fused else torch.empty_like(flat)

    def __call__(self) -> None:
        beta1, beta2 = ADAM_BETAS
        self.step += 1
        if self.fused:
            torch._fused_adam_([self.flat], [self.grad], [self.m], [self.v], [], [self.step], lr=self.lr,
                               beta1=beta1, beta2=beta2, weight_decay=0.0, eps=ADAM_EPS, amsgrad=False,
                               maximize=False)
            return
        step = int(self.step)
        self.m.mul_(beta1).add_(self.grad, alpha=1 - beta1)
        self.v.mul_(beta2).addcmul_(self.grad, self.grad, value=1 - beta2)
        torch.sqrt(self.v, out=self.denom).div_(math.sqrt(1 - beta2**step)).add_(ADAM_EPS)
        self.flat.addcdiv_(self.m, self.denom, value=-self.lr / (1 - beta1**step))


def _targets(images: torch.Tensor, s: int) -> torch.Tensor:
    # [N, C, H, W] -> [N*S, H*W, C], image-major
    n, c, h, w = images.shape
    t = images.reshape(n, c, h * w).transpose(1, 2)
    return t.repeat_interleave(s, dim=0).contiguous()


def _psnr_from_mse(mse: torch.Tensor) -> torch.Tensor:
    return -10.0 * torch.log10(mse.clamp_min(1e-20))


def _seed_list(seeds: int | Sequence[int]) -> list[int]:
    if isinstance(seeds, bool):
        raise ValueError("seeds must be a count or a list of seed ids")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        return list(range(seeds))
    ids = [int(sd) for sd in seeds]
    if not ids:
        raise ValueError("seeds is an empty list")
    if min(ids) < 0 or max(ids) >= _IMAGE_STRIDE:
        raise ValueError(f"seed ids must lie in [0, {_IMAGE_STRIDE}), got {min(ids)}..{max(ids)}")
    if len(set(ids)) != len(ids):
        raise ValueError("seed ids repeat")
    return ids


def _check_images(spec: FieldSpec, images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a tensor [N, C, H, W], got {type(images).__name__}")
    if images.dim() != 4:
        raise ValueError(f"images must have shape [N, C, H, W], got {list(images.shape)}")
    n, c, h, w = images.shape
    if n < 1:
        raise ValueError("images is empty")
    if c != spec.out_dim:
        raise ValueError(f"images have {c} channels but the field outputs {spec.out_dim} (spec.out_dim)")
    if h < 2 or w < 2:
        raise ValueError(f"images must be at least 2x2 pixels, got {h}x{w}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point in [0, 1], got {images.dtype}")
    if not bool(torch.isfinite(images).all()):
        raise ValueError("images contain NaN or infinite values")
    lo, hi = float(images.min()), float(images.max())
    if lo < 0.0 or hi > 1.0:
        raise ValueError(f"image values must lie in [0, 1], got [{lo:g}, {hi:g}]")
