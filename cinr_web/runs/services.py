"""Run services: start, chain, cancel, re-run, find stale runs, send a run's messages. Admin, commands, API and
dashboard all call these.

The Run row is created first and is the source of truth; the Celery message carries only its id and is sent when the
transaction that created the row commits (a worker never looks for a row that is not there yet). A run whose parent
has not succeeded yet waits, queued and undispatched, and is dispatched when the parent succeeds.
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from cinr_web import live
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.configs import normalise_config
from cinr_web.runs.models import FitChunk, Run
from cinr_web.runs.status import FINISHED, Status
from cinr_web.storage import delete_quietly

log = logging.getLogger(__name__)

TASK_OF_KIND = {
    Run.Kind.FIT: "cinr.fit_chunk",
    Run.Kind.SIMCLR: "cinr.train",
    Run.Kind.SUPERVISED: "cinr.train",
    Run.Kind.PROBE: "cinr.probe",
    Run.Kind.EMBEDDING: "cinr.embedding",
}


def _user(user):
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def messages_of(run: Run) -> list[tuple[str, tuple[int, ...]]]:
    """(task name, args) of the messages the run's remaining work needs: one per unfinished chunk of a fit (finished
    chunks keep their files and are merged), one for any other run."""
    task = TASK_OF_KIND[run.kind]
    if run.kind == Run.Kind.FIT:
        indexes = run.chunks.exclude(status=Status.SUCCEEDED).order_by("index").values_list("index", flat=True)
        return [(task, (run.pk, index)) for index in indexes]
    return [(task, (run.pk,))]


def send_messages(messages: list[tuple[str, tuple[int, ...]]]) -> None:
    """Hands task messages to the broker; raises when it cannot."""
    from cinr_web.celery import app

    for task, args in messages:
        app.send_task(task, args=list(args))


def _send(run_id: int) -> None:
    """Sends the task message(s) of a run; runs after commit. Marks the run dispatched once the broker took them.

    If the broker is unreachable the run stays queued and undispatched (and the error is logged): the request that
    started it still succeeds, and the sweeper (cinr_web.runs.recovery) sends it once Redis is back.
    """
    run = Run.objects.filter(pk=run_id).first()
    if run is None or run.status != Status.QUEUED or run.dispatched_at is not None:
        return
    try:
        send_messages(messages_of(run))
    except Exception:  # noqa: BLE001 - kombu raises many kinds; the run row says what happened
        log.exception("could not enqueue run %s; it stays queued (the sweeper sends it when the broker is back)",
                      run_id)
        return
    Run.objects.filter(pk=run_id).update(dispatched_at=timezone.now())


def dispatch(run: Run) -> None:
    """Enqueues the run when the current transaction commits (at once outside a transaction)."""
    run_id = run.pk
    transaction.on_commit(lambda: _send(run_id))


def start_run(kind: str, inrset: INRSet, config: dict | None = None, user=None, parent: Run | None = None) -> Run:
    """Creates a SimCLR / supervised / probe / embedding run on `inrset` and enqueues it (on commit).

    parent: for probe and embedding runs, the encoder run (SimCLR or supervised) whose features they use (None:
    the raw INR weights); for any run, a run that must succeed first (e.g. the fit of `inrset`). A run whose parent
    is still going waits; if the parent has failed or was cancelled, ValueError. Fits start with
    inrsets.services.start_fit. Raises ValueError on a bad kind or config.
    """
    if kind == Run.Kind.FIT:
        raise ValueError("fits are started with cinr_web.inrsets.services.start_fit")
    if kind not in Run.Kind.values:
        raise ValueError(f"unknown run kind {kind!r}; expected one of {Run.Kind.values}")
    if inrset is None:
        raise ValueError("a run needs an INR set")
    if parent is not None and parent.status in (Status.FAILED, Status.CANCELLED):
        raise ValueError(f"parent run {parent.pk} is {parent.status}")
    config = normalise_config(kind, config, inrset=inrset, parent=parent)
    with transaction.atomic():
        run = Run.objects.create(kind=kind, inrset=inrset, config=config, parent=parent, created_by=_user(user))
        if parent is None or parent.status == Status.SUCCEEDED:
            dispatch(run)
    return run


def start_chain(inrset: INRSet, *, encoder_kind: str = Run.Kind.SIMCLR, encoder_config: dict | None = None,
                probe_config: dict | None = None, embedding_config: dict | None = None, user=None,
                after: Run | None = None) -> list[Run]:
    """Encoder training -> linear probe -> embedding map on `inrset`, each waiting for the one before.

    after: the run the encoder waits for (default: the set's fit while it is not finished). Returns the runs.
    """
    if after is None:
        fit = inrset.fit_run
        after = fit if fit is not None and fit.status != Status.SUCCEEDED else None
    with transaction.atomic():
        encoder = start_run(encoder_kind, inrset, encoder_config, user, parent=after)
        probe = start_run(Run.Kind.PROBE, inrset, probe_config, user, parent=encoder)
        embedding = start_run(Run.Kind.EMBEDDING, inrset, embedding_config, user, parent=encoder)
    return [encoder, probe, embedding]


def dispatch_children(run: Run) -> None:
    """After `run` succeeded: enqueue the runs that waited for it."""
    for child in run.children.filter(status=Status.QUEUED, dispatched_at__isnull=True):
        dispatch(child)


def finish_children(run: Run) -> None:
    """After `run` failed or was cancelled: its waiting runs will never start; cancel them (and theirs)."""
    for child in run.children.filter(status=Status.QUEUED, dispatched_at__isnull=True):
        child.status = Status.CANCELLED
        child.error = f"parent run {run.pk} {run.status}"
        child.finished_at = timezone.now()
        child.save(update_fields=["status", "error", "finished_at"])
        live.publish_status(child)
        finish_children(child)


def cancel_run(run: Run) -> Run:
    """Cancels a run: a queued one, or a running one whose worker is gone (stale heartbeat), at once; a running one
    cooperatively (its worker stops within a step or two and marks it cancelled). The metric history stays. A
    finished run is left as it is. (A run whose worker died less than CINR_STALE_SECONDS ago is ended by the
    sweeper once its heartbeat is stale.)"""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status in FINISHED:
            return run
        run.cancel_requested = True
        fields = ["cancel_requested"]
        worker_gone = run.status == Status.RUNNING and stale_runs().filter(pk=run.pk).exists()
        if run.status == Status.QUEUED or worker_gone:
            run.status = Status.CANCELLED
            run.finished_at = timezone.now()
            fields += ["status", "finished_at"]
            if run.kind == Run.Kind.FIT and run.inrset_id:
                INRSet.objects.filter(pk=run.inrset_id).update(status=Status.CANCELLED)
                run.chunks.exclude(status=Status.SUCCEEDED).update(status=Status.CANCELLED)
                delete_chunk_files(run.pk)
        run.save(update_fields=fields)
        if run.status == Status.CANCELLED:
            finish_children(run)
            transaction.on_commit(lambda: live.publish_status(run))
    return run


def stale_runs(seconds: float | None = None) -> QuerySet[Run]:
    """Running runs whose heartbeat (or start, before the first heartbeat) is older than `seconds`
    (default CINR_STALE_SECONDS): their worker most likely died."""
    cutoff = timezone.now() - dt.timedelta(seconds=settings.CINR_STALE_SECONDS if seconds is None else seconds)
    return Run.objects.filter(status=Status.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff))


def rerun(run: Run, user=None, stale_seconds: float | None = None) -> Run:
    """A new run with the same kind, INR set, config and parent. A still "running" original must be stale (heartbeat
    older than `stale_seconds`, default CINR_STALE_SECONDS) and is marked failed first. A fit re-run takes over the
    original's finished chunks (their files move to the new run) and fits only the others."""
    with transaction.atomic():
        run = Run.objects.select_for_update().get(pk=run.pk)
        if run.status in (Status.QUEUED, Status.RUNNING):
            if run.status == Status.RUNNING and not stale_runs(stale_seconds).filter(pk=run.pk).exists():
                raise ValueError(f"run {run.pk} is running (heartbeat fresh); cancel it first")
            run.status = Status.FAILED
            run.error = (run.error + "\n" if run.error else "") + "worker lost (stale heartbeat); re-run"
            run.finished_at = timezone.now()
            run.save(update_fields=["status", "error", "finished_at"])
            transaction.on_commit(lambda: live.publish_status(run))
        new = Run.objects.create(kind=run.kind, inrset=run.inrset, config=run.config, parent=run.parent,
                                 created_by=_user(user) or run.created_by)
        if run.kind == Run.Kind.FIT:
            chunks = FitChunk.objects.bulk_create([_chunk_for_rerun(new, c) for c in run.chunks.order_by("index")])
            # The new run owns the finished chunks' files now (and deletes them after its merge); the rest go.
            delete_chunk_files(run.pk, keep=[c.file.name for c in chunks if c.file])
            INRSet.objects.filter(pk=run.inrset_id).update(status=Status.QUEUED)
        # Runs that waited on the old one now wait on the new one.
        run.children.filter(status=Status.QUEUED, dispatched_at__isnull=True).update(parent=new)
        if new.parent is None or new.parent.status == Status.SUCCEEDED:
            dispatch(new)
    return new


def _chunk_for_rerun(new: Run, old: FitChunk) -> FitChunk:
    chunk = FitChunk(run=new, index=old.index, start=old.start, stop=old.stop, total=old.total)
    if old.status == Status.SUCCEEDED and old.file:
        chunk.status, chunk.file, chunk.done = Status.SUCCEEDED, old.file.name, old.total
        chunk.psnr_mean, chunk.seconds, chunk.worker = old.psnr_mean, old.seconds, old.worker
    return chunk


def delete_chunk_files(run_id: int, keep: list[str] = ()) -> None:
    """After the current transaction commits, deletes a fit's chunk files but `keep`: those its chunks name and any
    stray one under runs/<id>/chunks/ (a worker that died between storing its chunk and recording it)."""
    from django.core.files.storage import default_storage

    names = [name for name in FitChunk.objects.filter(run_id=run_id).values_list("file", flat=True) if name]
    FitChunk.objects.filter(run_id=run_id).update(file="")
    folder = f"runs/{run_id}/chunks"

    def delete() -> None:
        try:
            strays = [f"{folder}/{name}" for name in default_storage.listdir(folder)[1]]
        except (FileNotFoundError, NotImplementedError):
            strays = []
        delete_quietly([name for name in names + strays if name not in keep])

    transaction.on_commit(delete)
