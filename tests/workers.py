"""Real `celery worker` processes for the recovery and Redis-prefix tests.

A worker process is configured the way a deployment configures one, through environment variables: this session's
test database (DATABASE_URL), MEDIA_ROOT and Redis, a Redis key prefix of the test's choosing (CINR_REDIS_PREFIX) and
short sweeper intervals. Each test uses prefixes of its own, so the session's in-thread worker (`celery_worker`,
listening on the session prefix) never takes their messages; `producing_to(prefix)` sends this process's messages
there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import SESSION_TAG, wait_for

REPO = Path(__file__).resolve().parent.parent


def new_prefix(what: str) -> str:
    """A fresh Redis key prefix under this session's."""
    return f"cinr-test-{SESSION_TAG}-{what}-{uuid.uuid4().hex[:8]}:"


def database_url() -> str:
    """The URL of the database this test session uses (its test database, once pytest-django created it)."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    return f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


class WorkerProcess:
    """`celery -A cinr_web worker` on the gpu and default queues, solo pool, logging to `log_path`."""

    def __init__(self, prefix: str, name: str, log_path: Path, *, stale_seconds: int = 3,
                 sweep_seconds: int = 1) -> None:
        from django.conf import settings

        self.name = name
        self.log_path = log_path
        self.env = {**os.environ, "DJANGO_SETTINGS_MODULE": "cinr_web.settings", "DATABASE_URL": database_url(),
                    "REDIS_URL": settings.REDIS_URL, "CINR_REDIS_PREFIX": prefix,
                    "MEDIA_ROOT": str(settings.MEDIA_ROOT), "CINR_DEVICE": "cpu", "CINR_TORCH_THREADS": "1",
                    "CINR_STALE_SECONDS": str(stale_seconds), "CINR_SWEEP_SECONDS": str(sweep_seconds),
                    "PYTHONUNBUFFERED": "1"}
        self.env.pop("CELERY_BROKER_URL", None)
        self.process: subprocess.Popen | None = None

    def start(self) -> WorkerProcess:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "cinr_web", "worker", "-Q", "gpu,default", "-P", "solo",
                 "-c", "1", "-n", f"{self.name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--loglevel", "INFO"], cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def worker_name(self) -> str:
        """What the process writes into Run.worker (cinr_web.runs.tasks.WORKER_NAME)."""
        import socket

        return f"{socket.gethostname()}:{self.pid}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        def ready() -> bool:
            assert self.process is not None and self.process.poll() is None, f"worker exited:\n{self.log()}"
            return " ready." in self.log()

        wait_for(ready, timeout=timeout, interval=0.2, what=f"worker {self.name} to start")

    def kill(self) -> None:
        """kill -9: no shutdown, no acknowledgement, no last heartbeat."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


@contextlib.contextmanager
def running_workers(*workers: WorkerProcess) -> Iterator[tuple[WorkerProcess, ...]]:
    """Starts the workers (in parallel) and kills whatever is left of them on the way out."""
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.kill()


@contextlib.contextmanager
def producing_to(prefix: str) -> Iterator[None]:
    """This process's Celery app sends its messages under `prefix` (another deployment's broker keys) meanwhile."""
    from cinr_web.celery import app

    before = app.conf.broker_transport_options
    app.conf.broker_transport_options = {**before, "global_keyprefix": prefix}
    app.amqp._producer_pool = None  # the producer pool belongs to a connection with the old options
    try:
        yield
    finally:
        app.conf.broker_transport_options = before
        app.amqp._producer_pool = None


def redis_keys(prefix: str) -> list[str]:
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        return sorted(key.decode() for key in client.scan_iter(match=f"{prefix}*", count=1000))
    finally:
        client.close()


def delete_redis_keys(prefix: str) -> int:
    """Deletes every key under `prefix` (only those: other sessions share this Redis); returns how many."""
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        return client.delete(*keys) if keys else 0
    finally:
        client.close()


def wait_until(predicate, timeout: float, what: str, workers: tuple[WorkerProcess, ...] = ()):
    """wait_for that shows the workers' logs when it times out."""
    try:
        return wait_for(predicate, timeout=timeout, interval=0.2, what=what)
    except AssertionError as exc:
        logs = "\n".join(f"--- {w.name} ---\n{w.log()[-4000:]}" for w in workers)
        raise AssertionError(f"{exc}\n{logs}") from None
