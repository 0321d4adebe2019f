"""Batched fields: grid conventions, rendering, and the fused forward/backward that `inr.fit` runs on."""

import math

import pytest
import torch

import inr
from inr.fields import mse_and_grad

SPECS = [
    inr.FieldSpec.siren(),
    inr.FieldSpec.siren(out_dim=3, hidden=8, layers=4),
    inr.FieldSpec.siren(hidden=5, layers=2),
    inr.FieldSpec.mfn(),
    inr.FieldSpec.mfn(out_dim=3, hidden=6, filters=2),
    inr.FieldSpec.mfn(hidden=4, filters=1),
]


def test_it_lays_out_the_grid_rows_first():
    g = inr.grid(3, 4)
    assert g.shape == (12, 2)
    assert g[0].tolist() == [-1.0, -1.0] and g[-1].tolist() == [1.0, 1.0]
    assert g[1, 0] == -1.0 and g[1, 1] > -1.0  # second pixel: same row, next column
    assert inr.pixel_spacing(3, 5) == (1.0, 0.5)
    assert inr.nyquist(3, 5) == (math.pi, 2 * math.pi)


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_it_matches_autograd_gradients(spec):
    params = inr.init(spec, 3, seed=4, grid_size=7, dtype=torch.float64)
    coords = inr.grid(7, 6, dtype=torch.float64)
    target = torch.rand(3, 42, spec.out_dim, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    loss, grads = mse_and_grad(spec, params, coords, target.clone())

    leaves = {name: t.clone().requires_grad_() for name, t in params.items()}
    expected = (inr.evaluate(spec, leaves, coords) - target).square().mean(dim=(1, 2))
    expected.sum().backward()
    torch.testing.assert_close(loss, expected.detach(), rtol=1e-12, atol=1e-14)
    for name, leaf in leaves.items():
        assert leaf.grad.abs().max() > 0, name
        torch.testing.assert_close(grads[name], leaf.grad, rtol=1e-10, atol=1e-12, msg=name)
    # params are left as they were
    for name, t in inr.init(spec, 3, seed=4, grid_size=7, dtype=torch.float64).items():
        assert torch.equal(params[name], t)


def test_it_gives_each_inr_the_gradient_of_its_own_loss():
    spec = inr.FieldSpec.mfn(hidden=6)
    params = inr.init(spec, 4, seed=1, dtype=torch.float64)
    coords = inr.grid(5, 5, dtype=torch.float64)
    target = torch.rand(4, 25, 1, dtype=torch.float64)
    _, grads = mse_and_grad(spec, params, coords, target)
    one = {name: t[2:3] for name, t in params.items()}
    _, grads_one = mse_and_grad(spec, one, coords, target[2:3])
    for name in grads:
        torch.testing.assert_close(grads[name][2:3], grads_one[name], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("spec", [SPECS[1], SPECS[4]], ids=str)
def test_it_renders_at_any_resolution(spec):
    params = inr.init(spec, 2, seed=0)
    image = inr.render(spec, params, 5, 7)
    assert image.shape == (2, spec.out_dim, 5, 7)
    values = inr.evaluate(spec, params, inr.grid(5, 7))  # [B, P, C]
    torch.testing.assert_close(image, values.transpose(1, 2).reshape(2, spec.out_dim, 5, 7))
    # the corners are the same points of the plane at every resolution
    fine = inr.render(spec, params, 9, 13, chunk=10)
    torch.testing.assert_close(fine[..., 0, 0], image[..., 0, 0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fine[..., -1, -1], image[..., -1, -1], rtol=1e-5, atol=1e-6)
