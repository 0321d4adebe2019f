"""Celery tasks. Each message carries a run id (and, for fits, a chunk index); everything else is in the database.

Life of a run in a worker: claim it (queued -> running, heartbeat, worker name; a duplicate delivery of a run that
another live worker holds is dropped), do the work with a Reporter wired into the training callbacks, then finish it
(succeeded with its result and artifacts, cancelled, or failed with the error text), keeping its metric history.
Then the runs that waited for it are dispatched (or cancelled if it did not succeed).
"""

from __future__ import annotations

import logging
import os
import socket
import time
import traceback
from collections.abc import Callable

from celery import shared_task
from celery.signals import worker_ready, worker_shutting_down
from django.db import transaction
from django.utils import timezone

from cinr_web import live
from cinr_web.inrsets.models import INRSet
from cinr_web.inrsets.services import merge_chunks, save_chunk_result
from cinr_web.runs import recovery, work
from cinr_web.runs.models import FitChunk, Run
from cinr_web.runs.progress import FitReporter, Reporter, RunCancelled, WorkerStopping, worker_stopping
from cinr_web.runs.services import delete_chunk_files, dispatch_children, finish_children, stale_runs
from cinr_web.runs.status import FINISHED, Status
from cinr_web.storage import delete_quietly, save_bytes
from inr.fit import FitCancelled

log = logging.getLogger(__name__)

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"
MAX_ERROR_CHARS = 8000


@worker_shutting_down.connect
def _stop_running_work(**kwargs) -> None:
    """A warm shutdown stops the running task at its next step (it is marked failed and can be re-run) instead of
    waiting for the whole run: with the solo pool the task runs in the worker's main thread."""
    worker_stopping.set()
    recovery.stop_sweeper()


@worker_ready.connect
def _start_work(**kwargs) -> None:
    worker_stopping.clear()  # a worker started again in the same process (tests) works again
    recovery.start_sweeper()  # `celery worker` only: the in-thread test worker sends no worker_ready


def cancel_exceptions() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "stopped on request": ours, inr's and training's (when training has one)."""
    kinds: list[type[BaseException]] = [RunCancelled, FitCancelled]
    try:
        from training.loop import Cancelled

        kinds.append(Cancelled)
    except ImportError:  # pragma: no cover - training without a loop module
        pass
    return tuple(kinds)


def error_text(exc: BaseException) -> str:
    """The error first (what an admin reads), then the traceback (what a developer needs)."""
    text = f"{type(exc).__name__}: {exc}\n\n" + "".join(traceback.format_exception(exc))
    return text[:MAX_ERROR_CHARS]


def finish(run_id: int, status: str, *, error: str = "", result: dict | None = None,
           on_success: Callable[[Run], None] | None = None) -> Run | None:
    """Marks a run finished (once: a run that is already finished stays as it is) and wakes or cancels its children.

    on_success runs inside the same transaction before the status flips (the fit's merge), so a failure there
    fails the run instead of leaving a half-finished one.
    """
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in FINISHED:
            return run
        if status == Status.SUCCEEDED and on_success is not None:
            on_success(run)
        run.status = status
        run.error = error
        run.finished_at = timezone.now()
        run.heartbeat_at = run.finished_at
        if status == Status.SUCCEEDED:
            run.progress = 1.0
        if result is not None:
            run.result = result
        run.save(update_fields=["status", "error", "finished_at", "heartbeat_at", "progress", "result"])
        if run.kind == Run.Kind.FIT and run.inrset_id and status != Status.SUCCEEDED:
            INRSet.objects.filter(pk=run.inrset_id).update(status=status)
        if run.kind == Run.Kind.FIT and status == Status.CANCELLED:
            delete_chunk_files(run.pk)  # a failed fit keeps its finished chunks: a re-run takes them over
        if status == Status.SUCCEEDED:
            dispatch_children(run)
        else:
            finish_children(run)
        transaction.on_commit(lambda: live.publish_status(run))
    log.info("run %s %s", run_id, status)
    return run


def claim(run_id: int) -> Run | None:
    """queued -> running for this worker; None when the run is gone, finished, cancelled, or held by a live worker."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            log.warning("run %s does not exist; message dropped", run_id)
            return None
        if run.status in FINISHED:
            return None
        if run.status == Status.RUNNING and not stale_runs().filter(pk=run_id).exists():
            log.warning("run %s is already running on %s; duplicate message dropped", run_id, run.worker)
            return None
        if run.cancel_requested:
            run.status = Status.CANCELLED
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "finished_at"])
            finish_children(run)
            transaction.on_commit(lambda: live.publish_status(run))
            return None
        now = timezone.now()
        run.status = Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.worker = WORKER_NAME
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
        transaction.on_commit(lambda: live.publish_status(run))
    return run


def execute(run_id: int, body: Callable[[Run, Reporter], dict]) -> None:
    """Claims the run, runs `body(run, reporter) -> result dict`, and finishes the run by its outcome."""
    run = claim(run_id)
    if run is None:
        return
    reporter = Reporter(run)
    try:
        result = body(run, reporter)
    except cancel_exceptions():
        _final_flush(reporter)
        finish(run_id, Status.CANCELLED)
    except Exception as exc:
        _log_failure(exc, "run %s failed", run_id)
        _final_flush(reporter)
        finish(run_id, Status.FAILED, error=error_text(exc))
    else:
        _final_flush(reporter)
        finish(run_id, Status.SUCCEEDED, result=result)


def _log_failure(exc: BaseException, message: str, *args) -> None:
    if isinstance(exc, WorkerStopping):  # an expected interruption, not a bug: no traceback in the log
        log.warning(message + ": %s", *args, exc)
    else:
        log.exception(message, *args)


def _final_flush(reporter: Reporter) -> None:
    try:
        reporter.flush()
    except Exception:  # noqa: BLE001 - the run's outcome matters more than its last few points
        log.exception("could not write the last metric points of run %s", reporter.run.pk)


# -- fit -------------------------------------------------------------------------------------------------------------

def _claim_chunk(run_id: int, index: int) -> tuple[Run, FitChunk] | None:
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status in FINISHED:
            return None
        if run.cancel_requested:
            transaction.on_commit(lambda: finish(run_id, Status.CANCELLED))
            return None
        chunk = FitChunk.objects.select_for_update().filter(run=run, index=index).first()
        if chunk is None or chunk.status == Status.SUCCEEDED:
            return None
        if chunk.status == Status.RUNNING and not stale_runs().filter(pk=run_id).exists():
            return None  # a duplicate delivery while a live worker fits this chunk
        log.info("fitting chunk %s of run %s (images %s..%s)", index, run_id, chunk.start, chunk.stop - 1)
        now = timezone.now()
        chunk.status = Status.RUNNING
        chunk.done = 0
        chunk.worker = WORKER_NAME
        chunk.save(update_fields=["status", "done", "worker"])
        first = run.status == Status.QUEUED
        run.status = Status.RUNNING
        run.started_at = run.started_at or now
        run.heartbeat_at = now
        run.worker = WORKER_NAME
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker"])
        if first:
            INRSet.objects.filter(pk=run.inrset_id).update(status=Status.RUNNING)
            transaction.on_commit(lambda: live.publish_status(run))
    return run, chunk


@shared_task(name="cinr.fit_chunk")
def fit_chunk(run_id: int, index: int) -> None:
    """Fits the images [start, stop) of one chunk of a fit run; the chunk that completes the set merges it."""
    claimed = _claim_chunk(run_id, index)
    if claimed is None:
        return
    run, chunk = claimed
    reporter = FitReporter(run, chunk)
    started = time.perf_counter()
    try:
        result = work.fit_chunk(run, chunk, reporter)
        reporter.progress(1.0)
        reporter.flush()
        stored = save_bytes(f"runs/{run.pk}/chunks/chunk-{index:05d}.safetensors", save_chunk_result(result))
    except cancel_exceptions():
        _final_flush(reporter)
        FitChunk.objects.filter(pk=chunk.pk).update(status=Status.CANCELLED)
        finish(run_id, Status.CANCELLED)
        return
    except Exception as exc:
        _log_failure(exc, "chunk %s of fit run %s failed", index, run_id)
        _final_flush(reporter)
        FitChunk.objects.filter(pk=chunk.pk).update(status=Status.FAILED)
        finish(run_id, Status.FAILED, error=f"chunk {index} (images {chunk.start}..{chunk.stop - 1}): "
                                            + error_text(exc))
        return
    try:
        _complete_chunk(run_id, chunk, stored, float(result.psnr.mean()), time.perf_counter() - started)
    except Exception as exc:
        log.exception("merging fit run %s failed", run_id)
        finish(run_id, Status.FAILED, error="merging the chunks: " + error_text(exc))


def _complete_chunk(run_id: int, chunk: FitChunk, stored: str, psnr_mean: float, seconds: float) -> None:
    """Records the chunk; if it was the last one, merges all chunks into the INR set and finishes the run, all in
    one transaction holding the run's row lock (so exactly one chunk merges)."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run_id)
        done = FitChunk.objects.filter(pk=chunk.pk, status=Status.SUCCEEDED).exists()
        # Cancelled or failed meanwhile, or this chunk was finished by another worker (this one was thought dead and
        # the chunk sent again): this chunk's work is not needed.
        if run.status in FINISHED or done:
            transaction.on_commit(lambda: delete_quietly([stored]))
            return
        FitChunk.objects.filter(pk=chunk.pk).update(status=Status.SUCCEEDED, file=stored, psnr_mean=psnr_mean,
                                                    seconds=seconds, done=chunk.total)
        chunks = list(run.chunks.order_by("index"))
        if any(c.status != Status.SUCCEEDED for c in chunks):
            return
        files = [c.file.name for c in chunks]

        def merge(run: Run) -> None:
            meta = {"fit": {k: run.config.get(k) for k in ("steps", "lr", "anti_alias", "shared_init")},
                    "seeds_per_image": run.config.get("seeds_per_image"), "run": run.pk}
            dataset = merge_chunks(run.inrset, files, meta)
            run.result = {"num_inrs": len(dataset), "psnr_mean": float(dataset.psnr.mean()),
                          "chunks": len(files), "fit_seconds": sum(c.seconds or 0.0 for c in chunks)}

        finished = finish(run_id, Status.SUCCEEDED, on_success=merge, result=None)
        if finished is not None and finished.status == Status.SUCCEEDED:
            delete_chunk_files(run_id)


# -- training, probes, embedding maps -------------------------------------------------------------------------------

@shared_task(name="cinr.train")
def train(run_id: int) -> None:
    """SimCLR pretraining or supervised training (gpu queue)."""
    execute(run_id, work.train_encoder)


@shared_task(name="cinr.probe")
def probe(run_id: int) -> None:
    """Linear probe on an encoder's features or the raw weights (default queue)."""
    execute(run_id, work.probe)


@shared_task(name="cinr.embedding")
def embedding(run_id: int) -> None:
    """t-SNE maps of an encoder's features and of the raw weights (default queue)."""
    execute(run_id, work.embedding)
