"""inr.native: the libmvec sine/cosine kernels match float64 sin/cos over a wide range and odd lengths, route what
they cannot take to torch, and a fit through the torch fallback (CINR_NATIVE=0) matches the native one."""

import logging
import math

import pytest
import torch
from sklearn.datasets import load_digits

import inr
from inr import native

# libmvec's sinf/cosf claim 4 ulp; |sin| <= 1, so 4 ulp of 1 (4.8e-7) bounds the absolute error. torch.sin meets it too.
ATOL = 5e-7
LENGTHS = [1, 7, 8, 15, 16, 17, 33, 784, 1001]  # remainders of both the 8-wide (AVX2) and 16-wide (AVX-512) loops

def sin(x: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    native.bind_sin(x, out)()
    return out


def cos_mul(x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    out = torch.empty_like(x)
    native.bind_cos_mul(x, d, out)()
    return out


needs_native = pytest.mark.skipif(not native.available(), reason=f"no native kernel here: {native.sine_path()}")


@pytest.fixture
def path_switch(monkeypatch):
    """Switches inr.native between the kernel and the torch fallback with the real CINR_NATIVE setting; restores
    the kernel afterwards."""

    def use(native_on: bool) -> None:
        monkeypatch.setenv("CINR_NATIVE", "1" if native_on else "0")
        native._native.cache_clear()

    yield use
    monkeypatch.delenv("CINR_NATIVE", raising=False)
    native._native.cache_clear()


def wide_arguments(n: int, seed: int = 0) -> torch.Tensor:
    """n float32 values with magnitudes spread log-uniformly from 1e-3 to 1e6, both signs."""
    gen = torch.Generator().manual_seed(seed)
    magnitude = 10 ** (torch.rand(n, generator=gen, dtype=torch.float64) * 9 - 3)
    sign = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
    return (magnitude * sign).float()


@needs_native
@pytest.mark.parametrize("n", LENGTHS)
def test_it_matches_float64_sin_and_cos_at_odd_lengths(n):
    x = wide_arguments(n, seed=n)
    exact = x.double()
    torch.testing.assert_close(sin(x).double(), exact.sin(), rtol=0, atol=ATOL)
    torch.testing.assert_close(cos_mul(x, torch.ones_like(x)).double(), exact.cos(), rtol=0, atol=ATOL)


@needs_native
def test_it_matches_float64_over_a_wide_range_of_arguments():
    x = torch.cat([wide_arguments(200_000), torch.linspace(-1e4, 1e4, 100_001),
                   torch.tensor([0.0, -0.0, 1e-30, math.pi, 1e7, -3e7, 1e9, 3.4e38, -3.4e38])])
    exact = x.double()
    for name, got in (("sin", sin(x)), ("cos", cos_mul(x, torch.ones(1)))):
        want = getattr(exact, name)()
        torch.testing.assert_close(got.double(), want, rtol=0, atol=ATOL, msg=name)
        torch.testing.assert_close(getattr(torch, name)(x).double(), want, rtol=0, atol=ATOL, msg=f"torch.{name}")
    special = torch.tensor([math.inf, -math.inf, math.nan])
    assert sin(special).isnan().all()


@needs_native
def test_it_fuses_the_mfn_products_and_broadcasts_in_place():
    gen = torch.Generator().manual_seed(1)
    a, u, dz = (torch.randn(3, 16, 101, generator=gen) * 30 for _ in range(3))
    dy = torch.randn(3, 1, 101, generator=gen)  # one output channel, broadcast over the neurons
    a64, u64, dz64, dy64 = a.double(), u.double(), dz.double(), dy.double()

    g, z = torch.empty_like(a), torch.empty_like(a)
    native.bind_sin_mul(a, u, g, z)()
    torch.testing.assert_close(g.double(), a64.sin(), rtol=0, atol=ATOL)
    torch.testing.assert_close(z.double(), u64 * a64.sin(), rtol=1e-5, atol=1e-5)

    da, du = a.clone(), g.clone()
    native.bind_mfn_back(da, du, u, dz, du=du, da=da)()  # in place, as inr.fused runs it
    torch.testing.assert_close(du.double(), a64.sin() * dz64, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(da.double(), a64.cos() * u64 * dz64, rtol=1e-5, atol=1e-3)

    e = a.clone()
    native.bind_cos_mul(e, dy, out=e)()
    torch.testing.assert_close(e.double(), a64.cos() * dy64, rtol=1e-5, atol=1e-6)


@needs_native
@pytest.mark.parametrize("pixels", [1, 23, 784])
def test_it_computes_a_first_layer_inside_the_sine_and_cosine(pixels):
    gen = torch.Generator().manual_seed(pixels)
    coords = torch.cat([torch.rand(2, pixels, generator=gen) * 2 - 1, torch.ones(1, pixels)])  # rows x, y, ones
    w = torch.randn(3, 5, 3, generator=gen) * 30  # SIREN's omega0 W_0 and b_0
    d = torch.randn(3, 5, pixels, generator=gen)
    a = (w.double() @ coords.double())  # [3, 5, P]
    out, scratch = torch.empty(3, 5, pixels), torch.empty(3, 5, pixels)
    op = native.bind_sin_affine(w, coords, out, scratch=scratch)
    assert op.native
    op()
    terms = w.double().abs() @ coords.double().abs()  # a is summed in float32 inside: two roundings of these terms
    bound = ATOL + terms * 2.0**-23
    assert ((out.double() - a.sin()).abs() <= bound).all()
    native.bind_cos_affine_mul(w, coords, d, out=out)()
    assert ((out.double() - a.cos() * d.double()).abs() <= bound * d.double().abs() + 1e-7).all()
    for bad in (torch.randn(3, 5, 2), torch.randn(3, 4, 3)):
        with pytest.raises(ValueError, match="first layer"):
            native.bind_sin_affine(bad, coords, out, scratch=scratch)


@needs_native
def test_it_takes_strided_rows_and_routes_other_layouts_and_dtypes_to_torch():
    x = wide_arguments(2 * 5 * 37).view(2, 5, 37) / 1e3
    h = torch.full((2, 6, 37), 7.0)  # a layer input with a row of ones, as inr.fused writes the sines into it
    op = native.bind_sin(x, out=h[:, :5])
    assert op.native  # the kernel took the strided blocks
    op()
    torch.testing.assert_close(h[:, :5].double(), x.double().sin(), rtol=0, atol=ATOL)
    assert (h[:, 5] == 7.0).all()  # the row after each block is untouched
    x.mul_(2.0)  # a bound op reads its tensors' current contents
    op()
    torch.testing.assert_close(h[:, :5].double(), x.double().sin(), rtol=0, atol=ATOL)

    for other in (x.transpose(1, 2), x.double(), x[None]):  # last dimension strided; float64; 4 dimensions
        assert not native.bind_sin(other, torch.empty_like(other)).native
        torch.testing.assert_close(sin(other), torch.sin(other), rtol=0, atol=0)
        d = torch.rand_like(other)
        torch.testing.assert_close(cos_mul(other, d), torch.cos(other) * d, rtol=0, atol=0)

    with pytest.raises(ValueError, match="shape"):
        native.bind_sin(x, torch.empty(2, 5, 36))
    with pytest.raises(ValueError, match="broadcast"):
        native.bind_cos_mul(x, torch.ones(2, 2, 37), torch.empty_like(x))


def test_it_compiles_into_the_cache_folder_once(tmp_path, monkeypatch, path_switch):
    monkeypatch.setenv("CINR_CACHE_DIR", str(tmp_path))
    path_switch(True)
    if not native.available():
        pytest.skip(native.sine_path())
    built = list(tmp_path.iterdir())
    assert len(built) == 1 and built[0].name.startswith("native-") and built[0].suffix == ".so"  # no temp files left
    assert str(built[0]) in native.sine_path()
    stamp = built[0].stat().st_mtime_ns
    path_switch(True)  # a second load finds the file
    assert native.available() and built[0].stat().st_mtime_ns == stamp


def test_it_says_when_it_falls_back_to_torch(path_switch, caplog):
    with caplog.at_level(logging.INFO, logger="inr.native"):
        path_switch(False)
        assert not native.available()
        assert "CINR_NATIVE=0" in native.sine_path()
        assert not native.bind_sin(torch.zeros(3), torch.empty(3)).native
    assert sum("CINR_NATIVE=0" in r.getMessage() for r in caplog.records) == 1  # logged once


@needs_native
@pytest.mark.parametrize("arch", ["siren", "mfn"])
def test_it_fits_the_same_through_the_torch_fallback(arch, path_switch):
    images = torch.tensor(load_digits().images[:4], dtype=torch.float32).unsqueeze(1) / 16.0
    spec = inr.FieldSpec.siren() if arch == "siren" else inr.FieldSpec.mfn()
    results = {}
    for native_on in (True, False):
        path_switch(native_on)
        results[native_on] = inr.fit(spec, images, steps=100, device="cpu", anti_alias=arch == "mfn")
    fast, slow = results[True], results[False]
    # seen: PSNR within 6e-4 dB, weights within 1e-6 (float rounding of the sines, over 100 Adam steps)
    torch.testing.assert_close(fast.psnr, slow.psnr, rtol=0, atol=0.01)
    for name, t in fast.params.items():
        torch.testing.assert_close(t, slow.params[name], rtol=1e-4, atol=1e-5, msg=name)
