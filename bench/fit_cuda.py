"""`python -m bench.fit --device cuda`: inr.fit on a GPU against the batched autograd loop on the same stacked weights
and against the device's arithmetic limit (its measured matrix-product and sine rates at the fit's shapes), and with
`--precision tf32|bf16` the speed and PSNR change of reduced-precision matrix products against float32.

Precision. float32: IEEE float32 products (torch's default). tf32: float32 products on TF32 tensor cores
(`torch.backends.cuda.matmul.allow_tf32`), for inr.fit and the baseline alike. bf16: the baseline under
`torch.autocast(bfloat16)` (its products take bfloat16 inputs, weights and Adam stay float32); inr.fit has no
bfloat16 path (its fused step writes float32 buffers, and CUDA's float32 products go no lower than TF32), so it runs
TF32 there, and the bench says so.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

import numpy as np
import torch

import inr
from bench.fit import _setup, batched_autograd, one_at_a_time, print_band, step_cost, sync, timed_fit
from inr.fit import default_chunk_size


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """float32 matrix products on CUDA's TF32 tensor cores (enabled) or in IEEE float32; the setting before comes
    back afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = saved


def best_wall(fn: Callable[[], object], device: torch.device, repeats: int = 7, inner: int = 10) -> float:
    """Wall seconds per call, best of `repeats` (synchronised around each group of `inner` calls; one warm-up)."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        started = time.perf_counter()
        for _ in range(inner):
            fn()
        sync(device)
        times.append((time.perf_counter() - started) / inner)
    return min(times)


def device_rates(spec: inr.FieldSpec, batch: int, pixels: int, device: torch.device,
                 precision: str) -> tuple[float, float]:
    """(FLOP/s of a hidden layer's batched product, sines/s) on a chunk of `batch` INRs, as the fused step shapes
    them: [B, hidden, hidden + 1] x [B, hidden + 1, P], and torch.sin over [B, width, P] (what CUDA runs for the
    fit's sines: the native kernel is CPU-only)."""
    width = spec.hidden * (spec.layers - 1 if spec.arch == "siren" else spec.filters)
    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    w = torch.randn(batch, spec.hidden, spec.hidden + 1, device=device, dtype=dtype)
    h = torch.randn(batch, spec.hidden + 1, pixels, device=device, dtype=dtype)
    out = torch.empty(batch, spec.hidden, pixels, device=device, dtype=dtype)
    flops = 2 * batch * spec.hidden * (spec.hidden + 1) * pixels
    with tf32(precision != "float32"):
        bmm = flops / best_wall(lambda: torch.bmm(w, h, out=out), device)
    x = torch.randn(batch, width, pixels, device=device)
    y = torch.empty_like(x)
    sin = x.numel() / best_wall(lambda: torch.sin(x, out=y), device)
    return bmm, sin


def run_cuda(arch: str, n: int, steps: int | None, lr: float | None, baseline_n: int, chunk: int | None,
             repeats: int, device: torch.device, precision: str = "float32") -> None:
    """inr.fit against both baselines and the device's limit, all on the GPU, wall rates; with a reduced precision
    also each one's speed and PSNR change against float32."""
    spec, steps, lr, anti_alias, images, nb = _setup(arch, n, steps, lr, baseline_n)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else str(device)
    size = chunk or default_chunk_size(spec, 28 * 28, 1, device, images=n)
    print(f"== {arch}: {spec.to_json()}  {n} MNIST-5k images, {steps} steps, lr {lr}, anti_alias {anti_alias}, "
          f"device {device} ({name}), torch {torch.__version__}, chunks of {size} INRs, precision {precision}")

    # untimed warm-up of each (a few steps): CUDA init and kernel loading
    warm = min(3, steps)
    timed_fit(spec, images[:nb], warm, lr, anti_alias, chunk, device)
    one_at_a_time(spec, images[:1], warm, lr, anti_alias, device)
    batched_autograd(spec, images[:nb], warm, lr, anti_alias, device)

    ratios, rates = [], []
    for r in range(repeats):
        seconds, result = timed_fit(spec, images, steps, lr, anti_alias, chunk, device)
        rate = n / seconds
        print(f"[{r + 1}] inr.fit        {rate:9.1f} INRs/s   PSNR mean {result.psnr.mean():.2f} dB, "
              f"min {result.psnr.min():.2f}   ({n} INRs, {seconds:.2f} s)")
        seconds, _, psnr = one_at_a_time(spec, images[:nb], steps, lr, anti_alias, device)
        print(f"[{r + 1}] one at a time  {nb / seconds:9.2f} INRs/s   PSNR mean {psnr.mean():.2f} dB   ({nb} "
              f"INRs);  ratio {rate * seconds / nb:.1f}x wall")
        ratios.append(rate * seconds / nb)
        rates.append(rate)
    print(f"ratio inr.fit / one at a time, median of {repeats}: {np.median(ratios):.1f}x wall "
              f"(range {min(ratios):.1f}-{max(ratios):.1f})")
    if arch == "mfn":
        print_band(spec, result.params)
    fit_rate = float(np.median(rates))

    seconds, _, psnr = batched_autograd(spec, images, steps, lr, anti_alias, device)  # all n: both are batched
    auto_rate = n / seconds
    print(f"batched autograd  {auto_rate:9.1f} INRs/s   PSNR mean {psnr.mean():.2f} dB   ({n} INRs);  "
          f"inr.fit (median) / batched autograd: {fit_rate / auto_rate:.2f}x wall")

    flops, sines = step_cost(spec, 28, 28)
    bmm_rate, sin_rate = device_rates(spec, size, 28 * 28, device, "float32")
    limit = flops / bmm_rate + sines / sin_rate  # seconds per INR-step
    whole = 1 / (fit_rate * steps)
    print(f"one step of one INR: {flops / 1e6:.2f} MFLOP in matrix products, {sines / 1e3:.1f} k sines + cosines; "
          f"device (best of 7, {size} INRs): bmm {bmm_rate / 1e12:.3f} TFLOP/s, torch.sin {sin_rate / 1e9:.1f} G/s "
          f"-> limit {limit * 1e9:.1f} ns per INR-step (bmm {flops / bmm_rate * 1e9:.1f} + sin "
          f"{sines / sin_rate * 1e9:.1f}); whole fit {whole * 1e9:.1f} ns: reached {limit / whole:.2f}")
    if precision != "float32":
        compare_precision(spec, images, steps, lr, anti_alias, chunk, size, device, precision, result, psnr,
                          fit_rate, auto_rate, bmm_rate)


def compare_precision(spec: inr.FieldSpec, images: torch.Tensor, steps: int, lr: float, anti_alias: bool,
                      chunk: int | None, size: int, device: torch.device, precision: str, reference: inr.FitResult,
                      reference_auto_psnr: torch.Tensor, fit_rate: float, auto_rate: float,
                      float32_bmm: float) -> None:
    """inr.fit and the batched autograd loop again at `precision`: rates and PSNR against the float32 runs."""
    n = len(images)
    fit_precision = "tf32" if precision == "bf16" else precision
    with tf32(True):
        timed_fit(spec, images[:4], min(3, steps), lr, anti_alias, chunk, device)  # warm-up of the new kernels
        seconds, result = timed_fit(spec, images, steps, lr, anti_alias, chunk, device)
    change = result.psnr - reference.psnr
    why = " (no bf16 path: TF32 is as low as its float32 products go)" if precision == "bf16" else ""
    print(f"inr.fit at {fit_precision}{why}: {n / seconds:9.1f} INRs/s ({n / seconds / fit_rate:.2f}x float32), "
          f"PSNR mean {result.psnr.mean():.2f} dB, change per INR against float32 mean {change.mean():+.3f} dB "
          f"(min {change.min():+.3f}, max {change.max():+.3f})")
    with tf32(True):
        autocast = torch.bfloat16 if precision == "bf16" else None
        batched_autograd(spec, images[:4], min(3, steps), lr, anti_alias, device, autocast)
        seconds, _, psnr = batched_autograd(spec, images, steps, lr, anti_alias, device, autocast)
    change = psnr.float().cpu() - reference_auto_psnr.float().cpu()
    print(f"batched autograd at {precision}: {n / seconds:9.1f} INRs/s ({n / seconds / auto_rate:.2f}x float32), "
          f"PSNR mean {psnr.mean():.2f} dB, change per INR against float32 mean {change.mean():+.3f} dB "
          f"(min {change.min():+.3f}, max {change.max():+.3f})")
    bmm_rate = device_rates(spec, size, 28 * 28, device, precision)[0]
    print(f"device bmm at {precision}: {bmm_rate / 1e12:.3f} TFLOP/s (float32: {float32_bmm / 1e12:.3f})")
