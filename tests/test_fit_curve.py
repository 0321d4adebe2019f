"""A fit's curve is by step of the fit: at each recorded step, the mean loss and PSNR over every INR that has reached
it, whichever inr.fit batch or chunk task fitted it (cinr_web.runs.progress.FitReporter), not one batch's values
drawn one after another (a sawtooth)."""

from __future__ import annotations

import pytest

from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import FitChunk, MetricPoint, Run
from cinr_web.runs.progress import FitReporter


def curve(run: Run) -> dict[tuple[str, int], float]:
    return {(p.name, p.step): p.value for p in MetricPoint.objects.filter(run=run)}


@pytest.mark.django_db
def test_it_averages_every_inr_at_each_step_over_batches_and_chunk_tasks(tiny_digits_dataset):
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec={"arch": "siren"}, seeds_per_image=2)
    run = Run.objects.create(kind="fit", inrset=inrset, status="running", config={"steps": 2})
    first = FitChunk.objects.create(run=run, index=0, start=0, stop=20, total=40)
    second = FitChunk.objects.create(run=run, index=1, start=20, stop=40, total=40)
    a, b = FitReporter(run, first), FitReporter(run, second)

    # Chunk task a: a batch of 30 INRs, then one of 10, each from step 1 (one flush for both).
    a.fit_step(1, 30, loss=0.4, psnr_mean=10.0, last=False)
    a.fit_step(2, 30, loss=0.1, psnr_mean=20.0, last=True)
    a.fit_step(1, 10, loss=0.8, psnr_mean=8.0, last=False)
    a.progress(0.75)
    a.flush()
    points = curve(run)
    assert points[("inrs", 1)] == 40 and points[("inrs", 2)] == 30
    assert points[("psnr_mean", 1)] == pytest.approx((30 * 10.0 + 10 * 8.0) / 40)
    assert points[("loss", 2)] == pytest.approx(0.1)
    assert FitChunk.objects.get(pk=first.pk).psnr_mean == pytest.approx(20.0)  # its finished INRs' mean

    # Chunk task b (another worker) folds its 40 INRs into the same points; a finishes its second batch.
    b.fit_step(1, 40, loss=0.5, psnr_mean=12.0, last=False)
    b.fit_step(2, 40, loss=0.2, psnr_mean=30.0, last=True)
    b.flush()
    a.fit_step(2, 10, loss=0.3, psnr_mean=18.0, last=True)
    a.flush()
    points = curve(run)
    assert points[("inrs", 1)] == 80 and points[("inrs", 2)] == 80
    assert points[("psnr_mean", 1)] == pytest.approx((30 * 10.0 + 10 * 8.0 + 40 * 12.0) / 80)
    assert points[("psnr_mean", 2)] == pytest.approx((30 * 20.0 + 40 * 30.0 + 10 * 18.0) / 80)
    assert points[("loss", 2)] == pytest.approx((30 * 0.1 + 40 * 0.2 + 10 * 0.3) / 80)
    assert MetricPoint.objects.filter(run=run).count() == 6  # one point per (name, step): updated, not appended
