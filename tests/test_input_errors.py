"""Inputs that used to give 500s get a clean answer: integers beyond 64 bits in URL paths (404) and query strings
(400), `..` in a static path (404), an unknown websocket path or id (accepted, then closed with 4404)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.test import Client

from cinr_web.asgi import application
from tests.api_support import client_for

pytestmark = pytest.mark.django_db

HUGE = "9" * 30  # beyond 64 bits: SQLite raises OverflowError on it
LARGEST = str(10**18 - 1)  # the longest id a path takes (18 digits)

API_PATHS = ["/api/datasets/{}/", "/api/datasets/{}/images/", "/api/datasets/1/images/{}/image.png",
             "/api/inrsets/{}/", "/api/inrsets/{}/inrs/", "/api/inrsets/1/inrs/{}/render.png", "/api/runs/{}/",
             "/api/runs/{}/metrics/", "/api/runs/{}/artifacts/", "/api/encoders/{}/"]
PAGE_PATHS = ["/datasets/{}/", "/inrsets/{}/", "/inrsets/1/inrs/{}/band.json", "/runs/{}/", "/runs/{}/explorer/",
              "/runs/{}/explorer/points.json"]


@pytest.mark.parametrize("number", [HUGE, LARGEST])
def test_it_answers_404_for_ids_beyond_64_bits_in_paths(staff_user, number):
    api = client_for(staff_user)
    for path in API_PATHS:
        assert api.get(path.format(number)).status_code == 404, path
    for path in ["/api/runs/{}/cancel/", "/api/encoders/{}/embed"]:
        assert api.post(path.format(number), {}, format="json").status_code == 404, path
    pages = Client()
    pages.force_login(staff_user)
    for path in PAGE_PATHS:
        assert pages.get(path.format(number)).status_code == 404, path


def test_it_answers_400_for_integers_beyond_64_bits_in_query_strings(staff_user):
    api = client_for(staff_user)
    for query in [f"inrset={HUGE}", f"parent={HUGE}", f"parent={'1' * 5000}", "inrset=-1", "parent=x"]:
        response = api.get(f"/api/runs/?{query}")
        assert response.status_code == 400, (query, response.status_code)
        assert len(response.content) < 500
    assert api.get(f"/api/runs/?inrset={2**63 - 1}").json()["count"] == 0  # the largest id: a plain empty answer
    assert api.get(f"/api/runs/1/metrics/?after={HUGE}").status_code in (400, 404)
    assert api.get(f"/api/datasets/?page={HUGE}").status_code == 404
    assert api.post("/api/runs/", {"kind": "simclr", "inrset": int(HUGE), "parent": int(HUGE)},
                    format="json").status_code == 400


def asgi_get(path: str) -> int:
    async def get() -> int:
        response = await HttpCommunicator(application, "GET", path).get_response(timeout=10)
        return response["status"]

    return async_to_sync(get)()


def test_it_answers_404_for_dot_dot_in_a_static_path():
    for path in ["/static/../settings.py", "/static/%2e%2e/x", "/static/frontend/../../../etc/passwd",
                 "/static/.."]:
        assert asgi_get(path) == 404, path


ORIGIN = (b"origin", b"http://localhost")


def session_headers(user) -> list[tuple[bytes, bytes]]:
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"].value
    return [ORIGIN, (b"cookie", f"sessionid={cookie}".encode())]


@pytest.fixture
def fresh_channel_layer():
    """A channel-layer instance for this test's event loop (channels_redis binds to the loop that first used it)."""
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.mark.django_db(transaction=True)  # the consumers read the database from their own threads
def test_it_closes_unknown_websocket_paths_and_ids_with_4404(normal_user, fresh_channel_layer):
    headers = session_headers(normal_user)

    async def scenario() -> list:
        codes = []
        for path in ["/ws/nothing/", "/ws/", f"/ws/runs/{HUGE}/", "/ws/runs/x/", f"/ws/inrsets/{LARGEST}/",
                     f"/ws/runs/{LARGEST}/"]:
            socket = WebsocketCommunicator(application, path, headers=headers)
            connected, _ = await socket.connect(timeout=10)
            codes.append((path, connected, await socket.receive_output(timeout=10)))
            await socket.disconnect()
        return codes

    for path, connected, message in async_to_sync(scenario)():
        assert connected and message == {"type": "websocket.close", "code": 4404}, (path, connected, message)
