"""WebSocket streams ws/runs/<id>/ and ws/inrsets/<id>/ through the real ASGI app and the real Redis channel layer.

The live events come from a real Celery worker (the session's `celery_worker` fixture) fitting a tiny INR set.
"""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from cinr_web.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test runs its consumers on a new event loop (async_to_sync); channels_redis binds its receive lock to the
    loop that first used it, so every test gets its own channel-layer instance."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()

ORIGIN = (b"origin", b"http://localhost")


def session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    return [ORIGIN, (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]


async def connect(path: str, headers) -> tuple[WebsocketCommunicator, bool, object]:
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect(timeout=10)
    return communicator, connected, code


async def receive_until(communicator: WebsocketCommunicator, done, timeout: float) -> list[dict]:
    """Receives JSON messages until `done(message)` is true; fails after `timeout` seconds in all."""
    messages = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        remaining = deadline - loop.time()
        assert remaining > 0, f"no final message within {timeout} s; got {messages[-5:]}"
        message = await communicator.receive_json_from(timeout=remaining)
        messages.append(message)
        if done(message):
            return messages


def test_it_refuses_anonymous_and_unknown_ids(normal_user):
    from cinr_web.runs.models import Run

    run = Run.objects.create(kind="simclr")

    async def scenario():
        anonymous, connected, _ = await connect(f"/ws/runs/{run.pk}/", [ORIGIN])
        assert not connected
        await anonymous.disconnect()
        # accepted, then closed with 4404: a code sent before accepting would reach a browser as a refused handshake
        unknown, connected, _ = await connect(f"/ws/runs/{run.pk + 1000}/", session_headers_value)
        assert connected
        assert await unknown.receive_output(timeout=10) == {"type": "websocket.close", "code": 4404}
        await unknown.disconnect()

    session_headers_value = session_headers(normal_user)
    async_to_sync(scenario)()


def test_it_sends_history_then_relays_published_events(normal_user):
    """Points already stored come as the history; events published afterwards arrive live, as-is."""
    from django.utils import timezone

    from cinr_web import live
    from cinr_web.runs.models import MetricPoint, Run

    run = Run.objects.create(kind="simclr", status="running", progress=0.25)
    MetricPoint.objects.create(run=run, step=1, name="loss", value=2.5, time=timezone.now())
    headers = session_headers(normal_user)

    async def scenario():
        communicator, connected, _ = await connect(f"/ws/runs/{run.pk}/", headers)
        assert connected
        history = await communicator.receive_json_from(timeout=10)
        assert history["kind"] == "history" and history["status"] == "running" and history["progress"] == 0.25
        assert [(p["step"], p["name"], p["value"]) for p in history["points"]] == [(1, "loss", 2.5)]
        # live.publish runs on its own loop and thread, like a Celery task's callback
        events = [live.metric_event(run.pk, 2, "loss", 2.25), live.metric_event(run.pk, 3, "loss", 2.0)]
        assert await asyncio.to_thread(live.publish, [live.run_group(run.pk)], events)
        # one channel-layer message, relayed as one frame per event, in order
        assert [await communicator.receive_json_from(timeout=10) for _ in events] == events
        await communicator.send_json_to({"hello": 1})
        assert (await communicator.receive_json_from(timeout=10))["kind"] == "error"
        await communicator.disconnect()

    async_to_sync(scenario)()


FINISHED = ("succeeded", "failed", "cancelled")


def test_it_streams_the_points_a_real_worker_publishes_while_fitting(celery_worker, tiny_digits_dataset,
                                                                     normal_user):
    """A real Celery worker fits a tiny INR set; both streams get the history, then live points and statuses."""
    import inr
    from cinr_web.inrsets.services import start_fit

    inrset = start_fit(tiny_digits_dataset, inr.FieldSpec.siren(hidden=8), {"steps": 1500, "lr": 1e-3},
                       seeds_per_image=2)
    run = inrset.fit_run
    headers = session_headers(normal_user)

    async def scenario():
        run_ws, connected, _ = await connect(f"/ws/runs/{run.pk}/", headers)
        assert connected
        set_ws, connected, _ = await connect(f"/ws/inrsets/{inrset.pk}/", headers)
        assert connected
        run_history = await run_ws.receive_json_from(timeout=10)
        set_history = await set_ws.receive_json_from(timeout=10)
        assert run_history["kind"] == set_history["kind"] == "history"
        assert set_history["fit_run"] == run.pk and set_history["inrset"] == inrset.pk

        def finished(message):
            return message.get("kind") == "status" and message["status"] in FINISHED

        run_live = await receive_until(run_ws, finished, timeout=120)
        set_live = await receive_until(set_ws, finished, timeout=30)
        await run_ws.disconnect()
        await set_ws.disconnect()
        return run_history, run_live, set_live

    run_history, run_live, set_live = async_to_sync(scenario)()
    assert run_live[-1]["status"] == "succeeded" and run_live[-1]["progress"] == 1.0, run_live[-1]
    metrics = [m for m in run_live if m["kind"] == "metric"]
    assert {m["name"] for m in metrics} == {"loss", "psnr_mean", "inrs"} and all(m["run"] == run.pk for m in metrics)
    seen = {(p["name"], p["step"]) for p in run_history["points"]}
    assert any((m["name"], m["step"]) not in seen for m in metrics), "no point arrived live"
    losses = [m["value"] for m in metrics if m["name"] == "loss"]
    assert losses[-1] < losses[0]  # the worker is really fitting
    progress = [m for m in set_live if m["kind"] == "progress"]
    assert progress and all(m["inrset"] == inrset.pk and m["total"] == 80 for m in progress)
    assert progress[-1]["done"] == 80 and set_live[-1]["status"] == "succeeded"
