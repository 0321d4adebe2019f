"""One fit shared by several GPU workers: every `celery worker` on the gpu queue takes chunks of it, and the merged INR
set is the one a single worker makes, bit for bit. Real worker processes (tests/workers.py) on this session's
database and media, on a Redis prefix of this test's own."""

from __future__ import annotations

import pytest
import torch

from cinr_web.inrsets.services import start_fit
from cinr_web.runs.models import FitChunk, Run
from inr import FieldSpec
from tests.workers import WorkerProcess, delete_redis_keys, new_prefix, producing_to, running_workers, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = FieldSpec.siren(hidden=16, layers=3)
FIT = {"steps": 60, "lr": 1e-3}
CHUNK_IMAGES = 10  # 40 tiny digits -> 4 chunks


@pytest.fixture
def prefix():
    prefix = new_prefix("shared-fit")
    try:
        with producing_to(prefix):
            yield prefix
    finally:
        delete_redis_keys(prefix)


def wait_finished(run: Run, workers: tuple[WorkerProcess, ...]) -> Run:
    wait_until(lambda: Run.objects.get(pk=run.pk).status in ("succeeded", "failed", "cancelled"), 60,
               f"run {run.pk} to finish", workers)
    return Run.objects.get(pk=run.pk)


@pytest.mark.slow  # real worker processes: ~20-40 s
def test_it_shares_a_fit_between_two_workers_with_the_bits_of_one(tiny_digits_dataset, prefix, tmp_path):
    first = WorkerProcess(prefix, "gpu0", tmp_path / "gpu0.log", stale_seconds=60)
    second = WorkerProcess(prefix, "gpu1", tmp_path / "gpu1.log", stale_seconds=60)
    with running_workers(first, second):
        # Both workers listen before the chunks are sent, so each takes its share from the start.
        shared = wait_finished(start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2,
                                         chunk_images=CHUNK_IMAGES).fit_run, (first, second))
        second.stop()
        alone = wait_finished(start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2,
                                        chunk_images=CHUNK_IMAGES).fit_run, (first, second))
    assert (shared.status, alone.status) == ("succeeded", "succeeded"), shared.error + alone.error

    fitted_by = list(FitChunk.objects.filter(run=shared).order_by("index").values_list("worker", flat=True))
    assert len(fitted_by) == 4 and set(fitted_by) == {first.worker_name, second.worker_name}, fitted_by
    assert set(FitChunk.objects.filter(run=alone).values_list("worker", flat=True)) == {first.worker_name}

    a, b = shared.inrset.load(), alone.inrset.load()
    assert len(a) == len(b) == 80
    for name in SPEC.param_shapes():
        assert torch.equal(a.params[name], b.params[name]), name
    for name in ("psnr", "image_index", "seed", "labels", "is_train"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
