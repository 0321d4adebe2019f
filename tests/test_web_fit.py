"""Fit runs through a real Celery worker: chunked fits merge to the same INR set as one unchunked fit, progress and
metric points land in the database, cancel is quick, failures keep history and say what went wrong."""

from __future__ import annotations

import pytest
import torch

from cinr_web.inrsets.models import INRSet
from cinr_web.inrsets.services import start_fit
from cinr_web.runs.models import FitChunk, MetricPoint, Run
from cinr_web.runs.services import cancel_run, rerun, stale_runs
from inr import FieldSpec
from inr.fit import fit as fit_inrs
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

TINY_SPEC = FieldSpec.siren(hidden=8, layers=3, omega0=30.0)
TINY_FIT = {"steps": 30, "lr": 1e-3}


def test_it_fits_in_chunks_and_merges_to_the_unchunked_result(celery_worker, tiny_digits_dataset, wait_for_run):
    chunked = start_fit(tiny_digits_dataset, TINY_SPEC, TINY_FIT, seeds_per_image=2, chunk_images=16)
    whole = start_fit(tiny_digits_dataset, TINY_SPEC, TINY_FIT, seeds_per_image=2, chunk_images=1000)
    chunked_run, whole_run = wait_for_run(chunked.fit_run), wait_for_run(whole.fit_run)
    assert (chunked_run.status, whole_run.status) == ("succeeded", "succeeded"), chunked_run.error + whole_run.error
    assert chunked_run.chunks.count() == 3 and whole_run.chunks.count() == 1
    assert chunked_run.progress == 1.0 and chunked_run.result["num_inrs"] == 80

    a, b = INRSet.objects.get(pk=chunked.pk).load(), INRSet.objects.get(pk=whole.pk).load()
    assert len(a) == len(b) == 80
    assert torch.equal(a.image_index, b.image_index) and torch.equal(a.seed, b.seed)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.is_train, b.is_train)
    for name in TINY_SPEC.param_shapes():
        torch.testing.assert_close(a.params[name], b.params[name], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(a.psnr, b.psnr, rtol=1e-5, atol=1e-4)

    # ... and both equal inr.fit called directly on all images at once.
    images = tiny_digits_dataset.load().images
    direct = fit_inrs(TINY_SPEC, images, seeds=2, steps=30, lr=1e-3, device="cpu",
                      shared_init=chunked.fit_config["shared_init"])  # the set's own setting (default: independent)
    for name in TINY_SPEC.param_shapes():
        torch.testing.assert_close(a.params[name], direct.params[name], rtol=1e-5, atol=1e-6)

    stored = INRSet.objects.get(pk=chunked.pk)
    assert stored.status == "succeeded" and stored.num_inrs == 80
    assert stored.psnr_min <= stored.psnr_mean <= stored.psnr_max
    assert sum(stored.psnr_histogram["counts"]) == 80
    # the chunk files were temporary: merged and deleted
    assert not FitChunk.objects.filter(run=chunked_run).exclude(file="").exists()
    names = set(MetricPoint.objects.filter(run=chunked_run).values_list("name", flat=True))
    assert names == {"loss", "psnr_mean", "inrs"}  # means over the INRs at each step of the fit, and how many


def test_it_cancels_a_running_fit_quickly_and_keeps_its_history(celery_worker, tiny_digits_dataset, wait_for_run):
    inrset = start_fit(tiny_digits_dataset, TINY_SPEC, {"steps": 200_00}, seeds_per_image=1)
    run = inrset.fit_run
    wait_for(lambda: MetricPoint.objects.filter(run=run).exists(), timeout=60, what="first metric points")
    cancel_run(run)
    run = wait_for_run(run, timeout=15)
    assert run.status == "cancelled"
    assert MetricPoint.objects.filter(run=run).exists()
    assert INRSet.objects.get(pk=inrset.pk).status == "cancelled"
    assert not INRSet.objects.get(pk=inrset.pk).weights


def test_a_failing_fit_is_marked_failed_with_its_error(celery_worker, tiny_digits_dataset, wait_for_run):
    from django.core.files.storage import default_storage

    default_storage.delete(tiny_digits_dataset.arrays.name)  # a worker that cannot reach the images
    inrset = start_fit(tiny_digits_dataset, TINY_SPEC, TINY_FIT)
    run = wait_for_run(inrset.fit_run)
    assert run.status == "failed"
    assert "FileNotFoundError" in run.error and "chunk 0" in run.error
    assert INRSet.objects.get(pk=inrset.pk).status == "failed"


def test_a_fit_over_its_time_budget_fails_and_keeps_its_history(celery_worker, tiny_digits_dataset, wait_for_run):
    inrset = start_fit(tiny_digits_dataset, TINY_SPEC, {"steps": 200_00}, max_seconds=1.5)
    run = wait_for_run(inrset.fit_run, timeout=60)
    assert run.status == "failed" and "time limit" in run.error
    assert MetricPoint.objects.filter(run=run, name="loss").count() >= 1


def test_a_stale_run_is_found_and_rerun(celery_worker, tiny_digits_dataset, wait_for_run):
    import datetime as dt

    from django.utils import timezone

    inrset = start_fit(tiny_digits_dataset, TINY_SPEC, TINY_FIT)
    first = wait_for_run(inrset.fit_run)
    assert first.status == "succeeded"
    # A worker that died mid-run: running, heartbeat long ago (what a killed worker leaves behind).
    long_ago = timezone.now() - dt.timedelta(hours=1)
    Run.objects.filter(pk=first.pk).update(status="running", heartbeat_at=long_ago, finished_at=None)
    assert list(stale_runs()) == [Run.objects.get(pk=first.pk)]
    second = rerun(first)
    assert Run.objects.get(pk=first.pk).status == "failed"
    second = wait_for_run(second)
    assert second.status == "succeeded" and second.inrset_id == inrset.pk
    assert INRSet.objects.get(pk=inrset.pk).status == "succeeded"
    assert list(stale_runs()) == []


def test_it_refuses_bad_fit_settings(tiny_digits_dataset):
    with pytest.raises(ValueError, match="out_dim"):
        start_fit(tiny_digits_dataset, FieldSpec.siren(out_dim=3), TINY_FIT)
    with pytest.raises(ValueError, match="unknown fit settings"):
        start_fit(tiny_digits_dataset, TINY_SPEC, {"stepz": 3})
    with pytest.raises(ValueError, match="anti_alias"):
        start_fit(tiny_digits_dataset, TINY_SPEC, {"anti_alias": True})
    with pytest.raises(ValueError, match="seeds_per_image"):
        start_fit(tiny_digits_dataset, TINY_SPEC, TINY_FIT, seeds_per_image=0)
    assert INRSet.objects.count() == 0 and Run.objects.count() == 0


def test_it_clamps_an_mfns_band_limit_unless_told_not_to_and_never_a_sirens():
    from cinr_web.inrsets.services import normalise_fit_config

    mfn = FieldSpec.mfn(hidden=8)
    assert normalise_fit_config(mfn, {})["anti_alias"] is True  # the preset fits MFNs with it on
    assert normalise_fit_config(mfn, {"anti_alias": False})["anti_alias"] is False
    assert normalise_fit_config(TINY_SPEC, {})["anti_alias"] is False
