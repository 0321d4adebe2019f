"""WebSocket consumers: the history of a run (or an INR set's fit) on connect, then its live events.

Workers publish `{"type": "live.events", "events": [{...}, ...]}` to the groups `run-<id>` / `inrset-<id>` through
the Redis channel layer (cinr_web/live.py). A consumer joins its group BEFORE it reads the history, so no event
published while the history is read is lost; an event may then arrive twice (in the history and live): clients key
points by (run, name, step).
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import MetricPoint, Run

# The most recent points sent on connect; older ones are available from GET /api/runs/<id>/metrics/.
HISTORY_LIMIT = 20000

CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def _points(run_ids: list[int]) -> list[dict]:
    rows = (MetricPoint.objects.filter(run_id__in=run_ids).order_by("-time", "-id")
            .values("run_id", "step", "name", "value", "time")[:HISTORY_LIMIT])
    points = [{"kind": "metric", "run": r["run_id"], "step": r["step"], "name": r["name"], "value": r["value"],
               "time": r["time"].isoformat() if r["time"] else None} for r in rows]
    points.reverse()  # oldest first
    return points


def run_history(run_id: int) -> dict | None:
    run = Run.objects.filter(pk=run_id).first()
    if run is None:
        return None
    return {"kind": "history", "run": run.pk, "status": run.status, "progress": run.progress,
            "error": run.error or "", "points": _points([run.pk])}


def inrset_history(inrset_id: int) -> dict | None:
    inrset = INRSet.objects.filter(pk=inrset_id).first()
    if inrset is None:
        return None
    fit = inrset.fit_run  # the latest fit run (a re-run creates a new one)
    if fit is not None:
        progress = float(fit.progress)
    else:
        progress = 1.0 if inrset.status == "succeeded" else 0.0
    return {"kind": "history", "inrset": inrset.pk, "status": inrset.status, "progress": progress,
            "psnr_mean": inrset.psnr_mean, "fit_run": fit.pk if fit else None,
            "points": _points([fit.pk]) if fit else []}


class _LiveConsumer(AsyncJsonWebsocketConsumer):
    """Authenticated; joins `<prefix>-<id>`, sends the history, then relays every live event as-is, one frame each."""

    prefix = ""

    def history(self, object_id: int) -> dict | None:
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)  # before accept: the handshake is refused (HTTP 403)
            return
        self.object_id = int(self.scope["url_route"]["kwargs"]["pk"])
        self.group = f"{self.prefix}-{self.object_id}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        history = await database_sync_to_async(self.history)(self.object_id)
        await self.accept()
        if history is None:  # accepted first: a close code reaches the client only on an open socket
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = ""
            await self.close(code=CLOSE_NOT_FOUND)
            return
        await self.send_json(history)

    async def disconnect(self, code: int) -> None:
        group = getattr(self, "group", None)
        if group:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        # Read-only stream: a client message gets a short error, never an exception that drops the socket.
        await self.send_json({"kind": "error", "error": "this stream is read-only"})

    async def live_events(self, message: dict) -> None:
        for event in message["events"]:
            await self.send_json(event)


class RunConsumer(_LiveConsumer):
    """ws/runs/<id>/: metric points and status changes of one run."""

    prefix = "run"

    def history(self, object_id: int) -> dict | None:
        return run_history(object_id)


class INRSetConsumer(_LiveConsumer):
    """ws/inrsets/<id>/: fit progress of one INR set (all its chunks)."""

    prefix = "inrset"

    def history(self, object_id: int) -> dict | None:
        return inrset_history(object_id)


class UnknownPathConsumer(AsyncJsonWebsocketConsumer):
    """Any other ws/ path: accepted, then closed with 4404 (a clean close, not a routing error in the server)."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)
