"""Live events from workers to browsers: channel-layer `group_send` to the groups `run-<id>` and `inrset-<id>`.

Message: {"type": "live.events", "events": [{...}, ...]}, the events of one `publish` call in order, each one of
    {"kind": "metric", "run": id, "step": int, "name": str, "value": float, "time": iso}
    {"kind": "status", "run": id, "status": str, "progress": float, "error": str}
    {"kind": "progress", "inrset": id, "progress": float, "done": int, "total": int, "psnr_mean": float}
web-api's consumers relay each event to the websocket as one JSON frame. One message per publish, not per event:
a Reporter's flush carries every metric point since the last one, and one message costs one channel-layer
group_send (a few Redis round trips) however many points it holds; it also keeps a flush of many points from
filling a browser's channel (channels_redis drops messages past a channel's capacity, 100 by default).

Why a dedicated event loop: Celery runs tasks in plain threads without an event loop. `async_to_sync` would spin up
a new loop per call, and channels_redis keeps its Redis connections per loop, so connections bound to dead loops
pile up (or break with "attached to a different loop"). Instead every process gets one daemon thread running one
loop forever, with its own channel-layer instance living on it; `publish` hands coroutines to that loop and waits
for them (with a timeout). Publishing never fails a run: errors are logged and, for a few seconds, further events
are dropped instead of stalling training on a dead Redis.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterable

from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers
from django.utils import timezone

log = logging.getLogger(__name__)

SEND_TIMEOUT_S = 5.0
BACKOFF_S = 10.0


class _Publisher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._layer = None
        self._paused_until = 0.0

    def _ensure(self) -> tuple[asyncio.AbstractEventLoop, object]:
        with self._lock:
            # After a fork the thread is gone: start a fresh loop in the child.
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="cinr-live-events", daemon=True).start()
                self._loop, self._pid = loop, os.getpid()
                self._layer = channel_layers.make_backend(DEFAULT_CHANNEL_LAYER)
            return self._loop, self._layer

    def send(self, groups: Iterable[str], events: list[dict]) -> bool:
        if not events or time.monotonic() < self._paused_until:
            return False
        loop, layer = self._ensure()
        if layer is None:
            return False
        groups = list(groups)

        async def send_all() -> None:
            for group in groups:
                await layer.group_send(group, {"type": "live.events", "events": events})

        try:
            asyncio.run_coroutine_threadsafe(send_all(), loop).result(SEND_TIMEOUT_S)
            return True
        except Exception as exc:  # noqa: BLE001 - live events are best effort; the database has the history
            self._paused_until = time.monotonic() + BACKOFF_S
            log.warning("live events to %s dropped (%s: %s); pausing for %.0f s", groups, type(exc).__name__, exc,
                        BACKOFF_S)
            return False


_publisher = _Publisher()


def run_group(run_id: int) -> str:
    return f"run-{run_id}"


def inrset_group(inrset_id: int) -> str:
    return f"inrset-{inrset_id}"


def publish(groups: Iterable[str], events: list[dict]) -> bool:
    """Sends each event to each group; True when Redis took them. Never raises."""
    return _publisher.send(groups, events)


def metric_event(run_id: int, step: int, name: str, value: float, time_: object | None = None) -> dict:
    when = time_ or timezone.now()
    return {"kind": "metric", "run": run_id, "step": int(step), "name": name, "value": float(value),
            "time": when.isoformat() if hasattr(when, "isoformat") else str(when)}


def status_event(run) -> dict:
    return {"kind": "status", "run": run.pk, "status": run.status, "progress": float(run.progress),
            "error": run.error or ""}


def progress_event(inrset_id: int, progress: float, done: int, total: int, psnr_mean: float | None) -> dict:
    return {"kind": "progress", "inrset": inrset_id, "progress": float(progress), "done": int(done),
            "total": int(total), "psnr_mean": float(psnr_mean) if psnr_mean is not None else None}


def publish_status(run) -> bool:
    """The run's status to `run-<id>` (and to `inrset-<id>` for a fit, whose page follows the set)."""
    groups = [run_group(run.pk)]
    if run.kind == "fit" and run.inrset_id:
        groups.append(inrset_group(run.inrset_id))
    return publish(groups, [status_event(run)])
