"""Recovery without a person: a sweeper in every worker process sends again the work that a dead worker, or a Redis
that lost its data, left behind.

Why in the workers and not in Celery beat: recovered work needs a worker to run it anyway; a worker sweeps as soon as
it starts (so a restarted worker picks up what its predecessor left) and then every CINR_SWEEP_SECONDS from a thread
of its own (so it sweeps while its main thread runs a long task); and there is no extra process to deploy, keep
single and watch. Several workers sweeping at once is safe: every change is made under the Run row's lock after
checking its state again, and a duplicate message is dropped when a worker claims it.

One sweep (`sweep()`):
1. A running run whose heartbeat is older than CINR_STALE_SECONDS lost its worker. If a cancel was asked for, it
   ends cancelled (history kept). Otherwise it goes back to queued and its messages are sent again: for a fit only
   its unfinished chunks (the finished chunks' files are kept and merged at the end: no chunk is fitted twice), for
   the other kinds the whole run, which starts over (its earlier metric points are dropped).
2. A queued run that was sent more than CINR_STALE_SECONDS ago and whose messages are in none of the broker's queues
   was lost by the broker (a Redis restarted without persistence) or by a worker that died before claiming it: the
   missing messages are sent again.
3. A queued run that was never sent although nothing holds it back (the broker was down when it was started) is
   sent.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import threading

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q
from django.utils import timezone

from cinr_web import live
from cinr_web.inrsets.models import INRSet
from cinr_web.runs import services
from cinr_web.runs.models import MetricPoint, Run
from cinr_web.runs.status import Status

log = logging.getLogger(__name__)

Message = tuple[str, tuple[int, ...]]


def sweep() -> dict[str, list[int]]:
    """One pass of the three rules above; returns the ids of the runs it cancelled, re-queued, re-sent and sent."""
    report: dict[str, list[int]] = {"cancelled": [], "requeued": [], "resent": [], "sent": []}
    cutoff = timezone.now() - dt.timedelta(seconds=settings.CINR_STALE_SECONDS)
    stale = list(services.stale_runs().values_list("pk", flat=True))
    waiting = list(Run.objects.filter(status=Status.QUEUED, dispatched_at__lt=cutoff).values_list("pk", flat=True))
    # Read after the runs: a message a worker takes meanwhile belongs to a run that is claimed by the time it is
    # looked at again under its lock.
    in_broker = broker_messages() if stale or waiting else set()
    for run_id in stale:
        outcome = recover_stale(run_id, in_broker or set())
        if outcome:
            report[outcome].append(run_id)
    if in_broker is not None:  # None: a broker CINR cannot look into, where lost messages go unnoticed
        for run_id in waiting:
            if resend_lost(run_id, cutoff, in_broker):
                report["resent"].append(run_id)
    never_sent = Run.objects.filter(status=Status.QUEUED, dispatched_at__isnull=True, created_at__lt=cutoff).filter(
        Q(parent__isnull=True) | Q(parent__status=Status.SUCCEEDED))
    for run in never_sent:
        services.dispatch(run)  # outside a transaction: sent at once; a run that is dispatched meanwhile is skipped
        report["sent"].append(run.pk)
    if any(report.values()):
        log.warning("sweep: %s", {k: v for k, v in report.items() if v})
    return report


def recover_stale(run_id: int, in_broker: set[Message]) -> str | None:
    """Rule 1 for one run: "cancelled", "requeued", or None when it is no longer stale (another sweeper or a worker
    got there first). Messages already waiting in the broker (`in_broker`) are not sent twice."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or not services.stale_runs().filter(pk=run_id).exists():
            return None
        if run.cancel_requested:
            services.cancel_run(run)  # a stale run is cancelled at once
            return "cancelled"
        if run.kind == Run.Kind.FIT:
            steps = int(run.config.get("steps", 0))
            for index in run.chunks.filter(status=Status.RUNNING).values_list("index", flat=True):
                # the lost attempt's points of this chunk; the chunk's next attempt plots them again
                MetricPoint.objects.filter(run=run, step__gte=index * steps, step__lt=(index + 1) * steps).delete()
            run.chunks.exclude(status=Status.SUCCEEDED).update(status=Status.QUEUED, done=0)
            INRSet.objects.filter(pk=run.inrset_id).update(status=Status.QUEUED)
        else:
            MetricPoint.objects.filter(run=run).delete()  # it starts over from step 0
            run.progress = 0.0
        run.status = Status.QUEUED
        run.error = (run.error + "\n" if run.error else "") + f"worker {run.worker or '?'} lost; sent again"
        run.worker = ""
        run.dispatched_at = timezone.now()
        run.save(update_fields=["status", "error", "worker", "progress", "dispatched_at"])
        _send_on_commit([message for message in services.messages_of(run) if message not in in_broker])
        transaction.on_commit(lambda: live.publish_status(run))
    log.warning("run %s lost its worker (heartbeat older than %s s); sent again", run_id, settings.CINR_STALE_SECONDS)
    return "requeued"


def resend_lost(run_id: int, cutoff: dt.datetime, in_broker: set[Message]) -> bool:
    """Rule 2 for one run: sends the run's messages that are not in `in_broker`; True when some were missing."""
    with transaction.atomic():
        run = Run.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != Status.QUEUED or run.dispatched_at is None or run.dispatched_at >= cutoff:
            return False  # claimed, finished or sent again meanwhile
        missing = [message for message in services.messages_of(run) if message not in in_broker]
        if not missing:
            return False
        run.dispatched_at = timezone.now()
        run.save(update_fields=["dispatched_at"])
        _send_on_commit(missing)
    log.warning("run %s: %s message(s) missing from the broker; sent again", run_id, len(missing))
    return True


def _send_on_commit(messages: list[Message]) -> None:
    def send() -> None:
        try:
            services.send_messages(messages)
        except Exception:  # noqa: BLE001 - the next sweep finds the messages missing and tries again
            log.exception("could not send %s message(s); the next sweep tries again", len(messages))

    transaction.on_commit(send)


def broker_messages() -> set[Message] | None:
    """(task name, args) of every message waiting in this deployment's broker queues; None for a broker that is not
    Redis (rule 2 then stays off).

    Reads kombu's Redis layout: each queue is a list `<global_keyprefix><queue name>` of JSON messages (Celery's
    protocol 2: the task name in the headers, `[args, kwargs, embed]` as the body, base64-encoded). Messages a worker
    has taken but not acknowledged are not counted: a queued run's message that a worker took and never claimed
    belongs to a dead worker.
    """
    import redis

    from cinr_web.celery import app

    if not str(app.conf.broker_url).startswith(("redis://", "rediss://")):
        return None
    prefix = app.conf.broker_transport_options.get("global_keyprefix", "")
    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        found = set()
        for queue in app.conf.task_queues:
            for raw in client.lrange(f"{prefix}{queue.name}", 0, -1):
                message = _parse(raw)
                if message is not None:
                    found.add(message)
        return found
    finally:
        client.close()


def _parse(raw: bytes) -> Message | None:
    try:
        message = json.loads(raw)
        body = message["body"]
        if message.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(message["headers"]["task"]), tuple(int(a) for a in args)
    except (ValueError, KeyError, TypeError, IndexError):
        return None  # not a CINR task message


# -- the worker's sweeper thread -------------------------------------------------------------------------------------

class Sweeper(threading.Thread):
    """Sweeps at once, then every `seconds`, until stopped."""

    def __init__(self, seconds: float) -> None:
        super().__init__(name="cinr-sweeper", daemon=True)
        self.seconds = seconds
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                sweep()
            except Exception:  # noqa: BLE001 - a database or broker hiccup: try again next time
                log.exception("sweep failed")
            finally:
                close_old_connections()
            self.stopping.wait(self.seconds)


_sweeper: Sweeper | None = None


def start_sweeper() -> None:
    """Starts this process's sweeper (once) unless CINR_SWEEP_SECONDS is 0."""
    global _sweeper
    if settings.CINR_SWEEP_SECONDS > 0 and (_sweeper is None or not _sweeper.is_alive()):
        _sweeper = Sweeper(settings.CINR_SWEEP_SECONDS)
        _sweeper.start()
        log.info("sweeper: every %s s, stale after %s s", settings.CINR_SWEEP_SECONDS, settings.CINR_STALE_SECONDS)


def stop_sweeper() -> None:
    if _sweeper is not None:
        _sweeper.stopping.set()
