"""Runs recover without a person: a worker killed with kill -9 mid-fit, Redis losing its queued messages, cancel of a
run whose worker is gone, `stale_runs --seconds N --rerun`. Real `celery worker` processes (tests/workers.py) on
this session's database and media, each test on Redis prefixes of its own."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
import torch
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone

from cinr_web.inrsets.models import INRSet
from cinr_web.inrsets.services import save_chunk_result, start_fit
from cinr_web.runs.models import FitChunk, MetricPoint, Run
from cinr_web.runs.recovery import broker_messages, sweep
from cinr_web.runs.services import cancel_run, send_messages
from cinr_web.storage import save_bytes
from inr import FieldSpec
from inr.fit import fit as fit_inrs
from tests.workers import WorkerProcess, delete_redis_keys, new_prefix, producing_to, running_workers, wait_until

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = FieldSpec.siren(hidden=16, layers=3)
SLOW_FIT = {"steps": 3000, "lr": 1e-3}  # a few seconds per chunk of 14 images: time to kill a worker mid-chunk
QUICK_FIT = {"steps": 30, "lr": 1e-3}


@pytest.fixture
def prefix():
    """A Redis key prefix of this test's own, emptied afterwards."""
    prefix = new_prefix("recovery")
    try:
        with producing_to(prefix):
            yield prefix
    finally:
        delete_redis_keys(prefix)


def chunk_files(run: Run) -> list[Path]:
    folder = Path(settings.MEDIA_ROOT) / "runs" / str(run.pk) / "chunks"
    return sorted(folder.iterdir()) if folder.exists() else []


def fitting_lines(log: str, run: Run) -> list[str]:
    return [line for line in log.splitlines() if f"of run {run.pk} (images" in line]


@pytest.mark.slow  # real worker processes: ~15-40 s
def test_it_finishes_a_fit_whose_worker_was_killed_mid_chunk(tiny_digits_dataset, prefix, tmp_path):
    first = WorkerProcess(prefix, "first", tmp_path / "first.log")
    second = WorkerProcess(prefix, "second", tmp_path / "second.log")
    victim = start_fit(tiny_digits_dataset, SPEC, SLOW_FIT, chunk_images=14).fit_run  # chunks of 14, 14, 12 images
    with running_workers(first):
        wait_until(lambda: FitChunk.objects.filter(run=victim, index=1, status="running").exists(), 60,
                   "chunk 1 to start", (first,))
        first.kill()
    chunks = {c.index: c for c in FitChunk.objects.filter(run=victim)}
    assert [chunks[i].status for i in range(3)] == ["succeeded", "running", "queued"], "killed too late"
    assert Run.objects.get(pk=victim.pk).status == "running"
    reference = start_fit(tiny_digits_dataset, SPEC, SLOW_FIT, chunk_images=14).fit_run  # the one-worker fit
    with running_workers(second):
        for run in (victim, reference):
            wait_until(lambda run=run: Run.objects.get(pk=run.pk).status in ("succeeded", "failed", "cancelled"),
                       60, f"run {run.pk} to finish", (first, second))
    victim, reference = Run.objects.get(pk=victim.pk), Run.objects.get(pk=reference.pk)
    assert (victim.status, reference.status) == ("succeeded", "succeeded"), victim.error + reference.error
    assert f"run {victim.pk} lost its worker" in second.log()

    # The recovered set is the one-worker fit, bit for bit.
    a, b = victim.inrset.load(), reference.inrset.load()
    assert len(a) == len(b) == 40
    for name in SPEC.param_shapes():
        assert torch.equal(a.params[name], b.params[name]), name
    assert torch.equal(a.psnr, b.psnr) and torch.equal(a.image_index, b.image_index)
    assert INRSet.objects.get(pk=victim.inrset_id).status == "succeeded"

    # No chunk was fitted twice: the finished chunk 0 kept its file and was merged; the second worker fitted only
    # the chunk the first died in and the one it never reached.
    assert [line.split("fitting ")[1][:7] for line in fitting_lines(first.log(), victim)] == ["chunk 0", "chunk 1"]
    assert sorted(line.split("fitting ")[1][:7] for line in fitting_lines(second.log(), victim)) == [
        "chunk 1", "chunk 2"]
    assert FitChunk.objects.get(run=victim, index=0).seconds == chunks[0].seconds
    assert chunk_files(victim) == [] and chunk_files(reference) == []  # no orphan chunk files
    assert not FitChunk.objects.filter(run=victim).exclude(file="").exists()


@pytest.mark.slow  # real worker processes: ~15-40 s
def test_it_sends_again_the_runs_whose_messages_redis_lost(tiny_digits_dataset, prefix, tmp_path):
    lost = start_fit(tiny_digits_dataset, SPEC, QUICK_FIT, chunk_images=20).fit_run
    assert broker_messages() == {("cinr.fit_chunk", (lost.pk, 0)), ("cinr.fit_chunk", (lost.pk, 1))}
    # Redis loses this deployment's keys (a restart without persistence); only ours: others share this Redis.
    assert delete_redis_keys(prefix) > 0
    kept = start_fit(tiny_digits_dataset, SPEC, QUICK_FIT, chunk_images=20).fit_run
    Run.objects.filter(pk__in=[lost.pk, kept.pk]).update(dispatched_at=timezone.now() - dt.timedelta(minutes=10))

    report = sweep()
    assert report["resent"] == [lost.pk]  # the kept run's messages still wait in the broker: not sent twice
    assert broker_messages() == {("cinr.fit_chunk", (run.pk, i)) for run in (lost, kept) for i in (0, 1)}
    assert sweep()["resent"] == []  # just sent: not again

    # Lost again, after the sweep: a worker's own sweeper sends them when it starts, and both runs finish.
    delete_redis_keys(prefix)
    worker = WorkerProcess(prefix, "sweeper", tmp_path / "sweeper.log")
    with running_workers(worker):
        for run in (lost, kept):
            wait_until(lambda run=run: Run.objects.get(pk=run.pk).status == "succeeded", 60,
                       f"run {run.pk} to succeed", (worker,))
    log = worker.log()
    assert f"run {lost.pk}: 2 message(s) missing from the broker" in log
    for run in (lost, kept):
        assert len(fitting_lines(log, run)) == 2  # each chunk fitted once
        assert INRSet.objects.get(pk=run.inrset_id).num_inrs == 40


def make_running(run: Run, heartbeat_age: float, finished_chunks: int) -> None:
    """What a worker that died mid-fit leaves behind: the run running with an old heartbeat, its first chunks
    finished with their files stored, the next one running, metric points."""
    run.refresh_from_db()
    images = run.inrset.dataset.load().images
    for chunk in FitChunk.objects.filter(run=run, index__lt=finished_chunks):
        result = fit_inrs(SPEC, images[chunk.start:chunk.stop], seeds=1, steps=QUICK_FIT["steps"], lr=1e-3,
                          image_offset=chunk.start, device="cpu")
        chunk.file = save_bytes(f"runs/{run.pk}/chunks/chunk-{chunk.index:05d}.safetensors",
                                save_chunk_result(result))
        chunk.status, chunk.done, chunk.seconds = "succeeded", chunk.total, 1.0
        chunk.save()
    FitChunk.objects.filter(run=run, index=finished_chunks).update(status="running")
    MetricPoint.objects.bulk_create([MetricPoint(run=run, step=s, name="loss", value=1.0 / (s + 1),
                                                 time=timezone.now()) for s in range(5)])
    heartbeat = timezone.now() - dt.timedelta(seconds=heartbeat_age)
    Run.objects.filter(pk=run.pk).update(status="running", started_at=heartbeat, heartbeat_at=heartbeat,
                                         worker="gone:1")


def test_it_requeues_a_stale_fit_with_only_its_unfinished_chunks(tiny_digits_dataset, prefix):
    run = start_fit(tiny_digits_dataset, SPEC, QUICK_FIT, chunk_images=14).fit_run
    make_running(run, heartbeat_age=3600, finished_chunks=1)
    delete_redis_keys(prefix)  # the dead worker took the messages of chunks 0 and 1; chunk 2's still waits
    send_messages([("cinr.fit_chunk", (run.pk, 2))])
    stored = FitChunk.objects.get(run=run, index=0).file.name
    assert sweep()["requeued"] == [run.pk]
    run.refresh_from_db()
    assert run.status == "queued" and run.worker == "" and "lost" in run.error
    assert list(run.chunks.order_by("index").values_list("status", flat=True)) == ["succeeded", "queued", "queued"]
    assert FitChunk.objects.get(run=run, index=0).file.name == stored and (Path(settings.MEDIA_ROOT) / stored).exists()
    # chunk 1 sent again; chunk 0 finished; chunk 2's first message still there, not doubled
    messages = [m for m in broker_messages() if m[1][0] == run.pk]
    assert sorted(messages) == [("cinr.fit_chunk", (run.pk, 1)), ("cinr.fit_chunk", (run.pk, 2))]
    assert sweep() == {"cancelled": [], "requeued": [], "resent": [], "sent": []}


def test_it_cancels_a_run_whose_worker_is_gone(tiny_digits_dataset, prefix):
    gone = start_fit(tiny_digits_dataset, SPEC, QUICK_FIT, chunk_images=20).fit_run
    make_running(gone, heartbeat_age=3600, finished_chunks=1)
    stored = Path(settings.MEDIA_ROOT) / FitChunk.objects.get(run=gone, index=0).file.name
    cancel_run(gone)  # stale: ended at once
    gone.refresh_from_db()
    assert gone.status == "cancelled" and gone.finished_at is not None
    assert MetricPoint.objects.filter(run=gone).count() == 5  # history kept
    assert INRSet.objects.get(pk=gone.inrset_id).status == "cancelled"
    assert not stored.exists() and chunk_files(gone) == []

    # A worker that died a moment ago: the cancel is asked for; the sweep ends the run once its heartbeat is stale.
    recent = start_fit(tiny_digits_dataset, SPEC, QUICK_FIT, chunk_images=20).fit_run
    make_running(recent, heartbeat_age=2, finished_chunks=0)
    cancel_run(recent)
    assert Run.objects.get(pk=recent.pk).status == "running"
    assert sweep()["cancelled"] == []
    with override_settings(CINR_STALE_SECONDS=1):
        assert sweep()["cancelled"] == [recent.pk]
    recent.refresh_from_db()
    assert recent.status == "cancelled" and MetricPoint.objects.filter(run=recent).count() == 5


def test_it_reruns_stale_runs_with_the_given_threshold(tiny_digits_dataset, prefix):
    run = start_fit(tiny_digits_dataset, SPEC, QUICK_FIT, chunk_images=20).fit_run
    make_running(run, heartbeat_age=10, finished_chunks=1)  # stale after 5 s, fresh by the 300 s default
    old_file = FitChunk.objects.get(run=run, index=0).file.name
    delete_redis_keys(prefix)
    out = io.StringIO()
    call_command("stale_runs", "--seconds", "5", "--rerun", stdout=out)
    assert "re-run as run" in out.getvalue()
    run.refresh_from_db()
    assert run.status == "failed" and "re-run" in run.error
    new = Run.objects.exclude(pk=run.pk).get(inrset=run.inrset)
    # the re-run takes over the finished chunk (its file moves over) and fits only the other one
    chunks = list(new.chunks.order_by("index"))
    assert [(c.status, c.file.name) for c in chunks] == [("succeeded", old_file), ("queued", "")]
    assert not FitChunk.objects.filter(run=run).exclude(file="").exists()
    assert broker_messages() == {("cinr.fit_chunk", (new.pk, 1))}
