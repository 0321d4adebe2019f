"""Native float32 sine and cosine kernels for the fitting step (`inr/native.c`, glibc's libmvec vector functions).

torch.sin on the CPU is MKL's vector sine, which runs at ~1 G values/s on AMD EPYC (against ~3 on Intel); libmvec's
AVX-512 sinf runs at ~5 G/s there (sines and cosines were two thirds of a SIREN step's arithmetic limit at torch.sin's
rate). The C source is compiled on first use with the system gcc (0.3 s, no torch headers) into `$CINR_CACHE_DIR`
(default `~/.cache/cinr`), under a name keyed by a hash of the source, flags and CPU features, and loaded with
ctypes.

The `bind_*` functions bind an op to the fused step's fixed buffers once (converting the kernel's arguments once),
and route: float32 CPU tensors whose last dimension is contiguous (after broadcasting) go to the kernel; anything
else (float64, CUDA, strided rows), or every op when the kernel is unavailable (no gcc, no libmvec, no AVX2, or
`CINR_NATIVE=0`), runs the same maths with torch ops. Which path is used is logged once and given by `sine_path()`.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("native.c")


def _cpu_flags() -> set[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _compile_flags() -> tuple[list[str], str] | None:
    """gcc flags for this CPU's widest supported variant and its name, or None."""
    flags = _cpu_flags()
    if {"avx512f", "avx512dq"} <= flags:
        return ["-DVW=16", "-mavx512f", "-mavx512dq", "-mfma"], "AVX-512"
    if {"avx2", "fma"} <= flags:
        return ["-DVW=8", "-mavx2", "-mfma"], "AVX2"
    return None


def _build() -> tuple[ctypes.CDLL, str]:
    """Compiles (once per source, flags and CPU) and loads the kernel; raises RuntimeError saying why it cannot."""
    if os.environ.get("CINR_NATIVE", "1") == "0":
        raise RuntimeError("CINR_NATIVE=0")
    if sys.platform != "linux":
        raise RuntimeError(f"platform {sys.platform} (needs Linux with glibc's libmvec)")
    chosen = _compile_flags()
    if chosen is None:
        raise RuntimeError("the CPU has neither AVX-512 nor AVX2 + FMA")
    flags, variant = chosen
    gcc = shutil.which("gcc")
    if gcc is None:
        raise RuntimeError("no gcc on PATH")
    source = SOURCE.read_bytes()
    command = [gcc, "-O2", "-std=gnu11", "-shared", "-fPIC", *flags]
    key = hashlib.sha256(source + " ".join(command + sorted(_cpu_flags())).encode()).hexdigest()[:16]
    cache = Path(os.environ.get("CINR_CACHE_DIR") or Path.home() / ".cache" / "cinr")
    target = cache / f"native-{key}.so"
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=".native-", suffix=".so")  # then renamed: no half-written .so
        os.close(fd)
        try:
            done = subprocess.run([*command, str(SOURCE), "-o", tmp, "-lmvec", "-lm"], capture_output=True,
                                  text=True, timeout=60)
            if done.returncode != 0:
                raise RuntimeError(f"gcc failed: {done.stderr.strip()[-500:]}")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    lib = ctypes.CDLL(str(target))
    array, pointer = [ctypes.c_void_p, ctypes.c_long, ctypes.c_long], [ctypes.c_void_p]
    signatures = {"cinr_sin": array * 2, "cinr_cos_mul": array * 3, "cinr_sin_mul": array * 4,
                  "cinr_mfn_back": array * 6, "cinr_sin_affine": array + pointer + array,
                  "cinr_cos_affine_mul": array + pointer + array * 2}
    for name, operands in signatures.items():
        fn = getattr(lib, name)
        fn.argtypes = [ctypes.c_long] * 3 + operands  # B, R, P, then the operands
        fn.restype = None
    return lib, f"native libmvec {variant} ({target})"


@functools.cache
def _native() -> tuple[ctypes.CDLL | None, str]:
    try:
        lib, path = _build()
    except (RuntimeError, OSError, subprocess.SubprocessError) as err:
        path = f"torch.sin/cos (native kernel off: {err})"
        (log.info if os.environ.get("CINR_NATIVE") == "0" else log.warning)("inr.native: %s", path)
        return None, path
    log.info("inr.native: %s", path)
    return lib, path


def sine_path() -> str:
    """Which sine and cosine float32 CPU fits use: the native kernel (with its file) or torch, and why."""
    return _native()[1]


def available() -> bool:
    """Whether the native kernel is loaded (float32 CPU calls go to it)."""
    return _native()[0] is not None


def _operands(shape: torch.Size, *tensors: torch.Tensor) -> list[int] | None:
    """(pointer, stride of B, stride of R) per tensor, each broadcast to shape seen as [B, R, P], when the kernel can
    take them all; None otherwise."""
    if _native()[0] is None or len(shape) > 3 or shape.numel() == 0:
        return None
    out3 = (1,) * (3 - len(shape)) + tuple(shape)
    args: list[int] = []
    for t in tensors:
        if t.dtype != torch.float32 or not t.is_cpu or t.dim() > 3:
            return None
        pad = 3 - t.dim()
        sizes, strides = (1,) * pad + tuple(t.shape), (0,) * pad + t.stride()
        if sizes != out3:  # broadcast: stride 0 along the dimensions of size 1
            strides = tuple(0 if n != m else s for n, m, s in zip(sizes, out3, strides, strict=True))
        if out3[2] > 1 and strides[2] != 1:
            return None
        args += (t.data_ptr(), strides[0], strides[1])
    return [*out3, *args]


def _first_layer_operands(shape: torch.Size, w: torch.Tensor, coords: torch.Tensor) -> list[int] | None:
    """(pointer, stride of B, stride of R) of w `[B, R, 3]` and the pointer of coords `[3, P]`, when the kernel can
    take them; None otherwise."""
    for t in (w, coords):
        if t.dtype != torch.float32 or not t.is_cpu:
            return None
    if len(shape) != 3 or w.stride(2) != 1 or not coords.is_contiguous():
        return None
    return [w.data_ptr(), w.stride(0), w.stride(1), coords.data_ptr()]


def _broadcasts(shape: torch.Size, to: torch.Size) -> bool:
    try:
        return torch.broadcast_shapes(shape, to) == to
    except RuntimeError:
        return False


class Bound:
    """One elementwise op bound to its tensors: each call runs it again on their current contents, with the native
    kernel (arguments converted once: a call costs ~0.5 us) or with torch ops. The tensors must keep their storage
    (in-place updates are fine); the object holds them. first: (w `[B, R, 3]`, coords `[3, P]`) of a first layer
    that the kernel computes itself (the `*_affine` kernels)."""

    def __init__(self, kernel: str, fallback: Callable[[], object], shape: torch.Size, *tensors: torch.Tensor,
                 first: tuple[torch.Tensor, torch.Tensor] | None = None) -> None:
        for t in tensors:
            if not _broadcasts(t.shape, shape):
                raise ValueError(f"shape {tuple(t.shape)} does not broadcast to {tuple(shape)}")
        if first is not None and (first[0].shape != (*shape[:2], 3) or first[1].shape != (3, shape[-1])):
            raise ValueError(f"first layer shapes {tuple(first[0].shape)}, {tuple(first[1].shape)} do not fit "
                             f"{tuple(shape)}")
        self.tensors, self.first, self.native = tensors, first, False
        self._fn: Callable[..., object] = fallback
        self._args: list[object] = []
        args = _operands(shape, *tensors)
        if args is not None and first is not None:
            extra = _first_layer_operands(shape, *first)
            args = None if extra is None else args[:3] + extra + args[3:]
        if args is not None:
            self._fn, self.native = getattr(_native()[0], kernel), True
            self._args = [t(a) for t, a in zip(self._fn.argtypes, args, strict=True)]

    def __call__(self) -> None:
        self._fn(*self._args)


def _check_out(out: torch.Tensor, shape: torch.Size) -> None:
    if out.shape != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, expected {tuple(shape)}")


def bind_sin(x: torch.Tensor, out: torch.Tensor) -> Bound:
    """out = sin(x); x and out of one shape (at most 3 dimensions for the kernel)."""
    _check_out(out, x.shape)
    return Bound("cinr_sin", lambda: torch.sin(x, out=out), x.shape, x, out)


def bind_cos_mul(x: torch.Tensor, d: torch.Tensor, out: torch.Tensor) -> Bound:
    """out = cos(x) * d (d broadcast to x's shape; out may be x)."""
    _check_out(out, x.shape)
    return Bound("cinr_cos_mul", lambda: torch.cos(x, out=out).mul_(d), x.shape, x, d, out)


def bind_sin_mul(x: torch.Tensor, u: torch.Tensor, g: torch.Tensor, z: torch.Tensor) -> Bound:
    """g = sin(x), z = u * g (an MFN filter and its product with the previous layer's output)."""
    _check_out(g, x.shape)
    _check_out(z, x.shape)

    def fallback() -> None:
        torch.sin(x, out=g)
        torch.mul(u, g, out=z)

    return Bound("cinr_sin_mul", fallback, x.shape, x, u, g, z)


def bind_mfn_back(a: torch.Tensor, g: torch.Tensor, u: torch.Tensor, dz: torch.Tensor, du: torch.Tensor,
                  da: torch.Tensor) -> Bound:
    """The backward of z = u * sin(a) with g = sin(a): du = g * dz, da = cos(a) * u * dz (dz broadcast to a's
    shape; du may be g, da may be a)."""
    _check_out(du, a.shape)
    _check_out(da, a.shape)

    def fallback() -> None:
        torch.cos(a, out=da).mul_(u).mul_(dz)
        torch.mul(g, dz, out=du)

    return Bound("cinr_mfn_back", fallback, a.shape, a, g, u, dz, du, da)


def bind_sin_affine(w: torch.Tensor, coords: torch.Tensor, out: torch.Tensor, scratch: torch.Tensor) -> Bound:
    """out = sin(a) with a = w @ coords for every INR: w `[B, R, 3]`, coords `[3, P]` (rows x, y, ones) shared by all
    INRs, out `[B, R, P]`: a first layer, which the kernel computes where it uses it instead of storing a. The torch
    fallback writes a into scratch (`[B, R, P]`, may be out's buffer only if out is scratch)."""
    _check_out(scratch, out.shape)

    def fallback() -> None:
        torch.mm(w.reshape(-1, 3), coords, out=scratch.view(-1, scratch.shape[-1]))
        torch.sin(scratch, out=out)

    return Bound("cinr_sin_affine", fallback, out.shape, out, first=(w, coords))


def bind_cos_affine_mul(w: torch.Tensor, coords: torch.Tensor, d: torch.Tensor, out: torch.Tensor) -> Bound:
    """out = cos(a) * d with a = w @ coords as in `bind_sin_affine` (its backward; d broadcast to out's shape). The
    torch fallback computes a into out (contiguous), then multiplies in place."""

    def fallback() -> None:
        torch.mm(w.reshape(-1, 3), coords, out=out.view(-1, out.shape[-1]))
        torch.cos(out, out=out).mul_(d)

    return Bound("cinr_cos_affine_mul", fallback, out.shape, d, out, first=(w, coords))
