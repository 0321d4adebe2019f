"""The API keeps answering while Redis is down: the rate limits (counted in Redis) fail open, with a warning, and
the answer is the request's own (stored upload, 404 for an unknown encoder), never a 500."""

from __future__ import annotations

import io
import logging
import socket
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image as PILImage

from cinr_web.datasets.models import ImageDataset
from tests.api_support import client_for

pytestmark = pytest.mark.django_db


def _closed_port() -> int:
    with socket.socket() as s:  # bound, then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def redis_down(settings):
    cache = dict(settings.CACHES["default"])
    cache["LOCATION"] = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.CACHES = {"default": cache}  # Django resets its cache handlers on this change


def png() -> SimpleUploadedFile:
    buffer = io.BytesIO()
    PILImage.new("L", (8, 8), 128).save(buffer, format="PNG")
    return SimpleUploadedFile("a.png", buffer.getvalue())


def test_it_answers_embeds_and_uploads_with_redis_down(redis_down, normal_user, caplog):
    client = client_for(normal_user)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="cinr_web.api.throttles"):
        embed = client.post("/api/encoders/999999/embed/", {}, format="json")
        upload = client.post("/api/datasets/upload/", {"name": "while-redis-is-down", "files": [png()]},
                             format="multipart")
    assert embed.status_code == 404  # the throttle let it through to the view's own answer
    assert upload.status_code == 201 and ImageDataset.objects.filter(name="while-redis-is-down").exists()
    assert time.monotonic() - started < 10  # refused connections fail fast; no hanging request
    warnings = [r.getMessage() for r in caplog.records]
    assert any("embed rate limit not checked" in m for m in warnings)
    assert any("upload rate limit not checked" in m for m in warnings)
