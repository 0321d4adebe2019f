"""Live events: a real worker's fit publishes metric, progress and status events to the run and INR-set groups of
the real Redis channel layer, in the shapes cinr_web.live documents."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connections

from cinr_web import live
from cinr_web.inrsets.services import start_fit
from cinr_web.runs.models import Run
from inr import FieldSpec

pytestmark = pytest.mark.django_db(transaction=True)


def start_tiny_fit(dataset):
    try:
        inrset = start_fit(dataset, FieldSpec.siren(hidden=8), {"steps": 300}, seeds_per_image=2, chunk_images=20,
                           max_seconds=120)
        return inrset, inrset.fit_run.pk
    finally:
        connections.close_all()  # this helper thread's connection would keep the test database from being dropped


def test_a_fit_publishes_metrics_progress_and_status(celery_worker, tiny_digits_dataset):
    async def follow() -> tuple[int, int, list[dict]]:
        layer = get_channel_layer()
        channel = await layer.new_channel()
        # The groups are known once the rows exist; 300 steps in two chunks leave ample time to join them before
        # the worker is done (the assertions below only need the later events).
        inrset, run_id = await sync_to_async(start_tiny_fit)(tiny_digits_dataset)
        await layer.group_add(live.run_group(run_id), channel)
        await layer.group_add(live.inrset_group(inrset.pk), channel)
        events, sizes = [], []
        async with asyncio.timeout(90):
            while True:
                message = await layer.receive(channel)
                assert message["type"] == "live.events" and message["events"]
                events.extend(message["events"])
                sizes.append(len(message["events"]))
                if events[-1]["kind"] == "status" and events[-1]["status"] in ("succeeded", "failed"):
                    return run_id, inrset.pk, events, sizes

    run_id, inrset_id, events, sizes = asyncio.run(follow())
    assert max(sizes) > 1  # a flush's points and status travel as one message
    run = Run.objects.get(pk=run_id)
    assert run.status == "succeeded", run.error
    kinds = {e["kind"] for e in events}
    assert kinds == {"metric", "progress", "status"}
    metric = next(e for e in events if e["kind"] == "metric")
    assert metric["run"] == run_id and metric["name"] in ("loss", "psnr_mean") and isinstance(metric["step"], int)
    assert isinstance(metric["value"], float) and "T" in metric["time"]
    progress = [e for e in events if e["kind"] == "progress"]
    assert all(e["inrset"] == inrset_id and e["total"] == 80 for e in progress)
    assert progress[-1]["progress"] == pytest.approx(1.0)
    assert events[-1] == {"kind": "status", "run": run_id, "status": "succeeded", "progress": 1.0, "error": ""}
    running = [e for e in events if e["kind"] == "status" and e["status"] == "running"]
    assert running and all(0.0 <= e["progress"] <= 1.0 for e in running)
    assert any(0.0 < e["progress"] < 1.0 for e in running)  # progress rides along with the points while it runs
