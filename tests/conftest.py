"""Shared fixtures of the web tests: a real Celery worker in a thread on the real Redis, users, a tiny dataset.

Isolation: several test sessions (and engineers) share this machine's PostgreSQL and Redis, so each session gets its
own test database name, its own Redis key prefix (Celery queues and the Channels layer) and its own MEDIA_ROOT.
Tests that need a worker to see their rows use `@pytest.mark.django_db(transaction=True)`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import pytest

SESSION_TAG = f"{os.getpid()}"
pytest_plugins = ["tests.browser_fixtures"]  # the browser tests' server, browser and page, shared by their modules


def _isolate_settings() -> None:
    """Per-session MEDIA_ROOT and Redis prefixes; must run before storage, Celery or the channel layer are used."""
    from django.conf import settings

    settings.MEDIA_ROOT = tempfile.mkdtemp(prefix=f"cinr-test-media-{SESSION_TAG}-")
    prefix = f"cinr-test-{SESSION_TAG}:"
    settings.REDIS_KEY_PREFIX = prefix
    layer = settings.CHANNEL_LAYERS["default"]
    layer["CONFIG"] = {**layer["CONFIG"], "prefix": f"{prefix}asgi"}
    settings.CACHES["default"]["KEY_PREFIX"] = f"{prefix}cache"
    from cinr_web.celery import app

    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "global_keyprefix": prefix}
    os.environ.setdefault("CINR_DEVICE", "cpu")


def pytest_configure(config) -> None:
    if os.environ.get("DJANGO_SETTINGS_MODULE") or config.getini("django_settings_module"):
        import django

        django.setup()
        _isolate_settings()


def pytest_unconfigure(config) -> None:
    from django.conf import settings

    prefix = getattr(settings, "REDIS_KEY_PREFIX", "")
    if prefix.startswith("cinr-test-"):
        _delete_redis_keys(settings.REDIS_URL, prefix)
    media = str(getattr(settings, "MEDIA_ROOT", ""))
    if media.startswith(tempfile.gettempdir()) and f"cinr-test-media-{SESSION_TAG}-" in media:
        shutil.rmtree(media, ignore_errors=True)


def _delete_redis_keys(url: str, prefix: str) -> None:
    """Removes this session's queues, bindings, channel-layer and cache keys from the shared Redis."""
    try:
        import redis

        client = redis.Redis.from_url(url)
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()
    except Exception:  # noqa: BLE001 - clean-up is best effort; Redis may already be gone
        pass


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix) -> None:
    """A test database of our own (test_cinr_<pid>): concurrent sessions on one PostgreSQL must not collide."""
    from django.db import connections

    for alias in connections:
        test = connections[alias].settings_dict.setdefault("TEST", {})
        if connections[alias].vendor == "sqlite":
            # A file, not shared-cache memory: the worker thread's connection then waits for locks (busy timeout)
            # instead of failing at once with "database table is locked".
            test["NAME"] = os.path.join(tempfile.gettempdir(), f"cinr-test-{SESSION_TAG}.sqlite3")
        else:
            test["NAME"] = f"test_{connections[alias].settings_dict['NAME']}_{SESSION_TAG}"


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real Celery worker (solo pool, queues gpu and default) in a thread, on the real Redis broker.

    The worker thread has its own database connections; it sees a test's rows only in transactional tests.
    """
    from celery.contrib.testing.worker import start_worker

    from cinr_web.celery import app

    # The worker's thread touches the database outside any one test's scope.
    django_db_blocker.unblock()
    try:
        with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, loglevel="WARNING",
                          queues=["gpu", "default"], shutdown_timeout=30.0) as worker:
            yield worker
    finally:
        django_db_blocker.restore()


@pytest.fixture
def staff_user(django_user_model):
    """A staff user (may start and cancel runs); password "staff-password"."""
    return django_user_model.objects.create_user("staff", "staff@example.org", "staff-password", is_staff=True)


@pytest.fixture
def normal_user(django_user_model):
    """A logged-in-only user (reads, does not start runs); password "user-password"."""
    return django_user_model.objects.create_user("user", "user@example.org", "user-password")


TINY_PER_CLASS = 4


@pytest.fixture
def tiny_digits_dataset(db):
    """40 digits images (4 per class, 8x8 grey) stored as ImageDataset "tiny-digits" with a 30/10 train/test split."""
    import torch

    from cinr_web.datasets.services import import_image_set
    from training.sources import ImageSet, load_builtin

    digits = load_builtin("digits")
    picked = torch.cat([torch.nonzero(digits.labels == c).reshape(-1)[:TINY_PER_CLASS] for c in range(10)])
    picked = picked.sort().values
    labels = digits.labels[picked]
    # The first image of every class goes to the test split: 30 train, 10 test, every class in both.
    first = torch.zeros(len(picked), dtype=torch.bool)
    for c in range(10):
        first[torch.nonzero(labels == c).reshape(-1)[0]] = True
    image_set = ImageSet(name="tiny-digits", images=digits.images[picked], labels=labels,
                         class_names=digits.class_names, train_index=torch.nonzero(~first).reshape(-1),
                         test_index=torch.nonzero(first).reshape(-1))
    return import_image_set(image_set, name="tiny-digits", source="builtin")


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate()` until it returns a truthy value (returned) or `timeout` seconds pass (AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@pytest.fixture
def wait_for_run():
    """wait_for_run(run, statuses=("succeeded", "failed", "cancelled"), timeout=120) -> the refreshed Run."""
    from cinr_web.runs.models import Run

    def wait(run, statuses=("succeeded", "failed", "cancelled"), timeout: float = 120.0):
        def finished():
            fresh = Run.objects.get(pk=run.pk)
            return fresh if fresh.status in statuses else None

        return wait_for(finished, timeout=timeout, what=f"run {run.pk} to reach {statuses}")

    return wait
