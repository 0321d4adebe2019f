"""Every Redis key of a deployment carries its prefix (CINR_REDIS_PREFIX), the broker's included: two deployments on
one Redis never take each other's tasks. Real `celery worker` processes configured by environment, as deployed."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cinr_web.celery import broker_transport_options
from cinr_web.inrsets.services import start_fit
from cinr_web.runs.models import Run
from cinr_web.runs.recovery import broker_messages
from inr import FieldSpec
from tests.workers import (
    REPO,
    WorkerProcess,
    delete_redis_keys,
    new_prefix,
    producing_to,
    redis_keys,
    running_workers,
    wait_until,
)

SPEC = FieldSpec.siren(hidden=8, layers=3)
FIT = {"steps": 30, "lr": 1e-3}


SHOW_PREFIXES = """
import json
from django.conf import settings
from cinr_web.celery import app
print(json.dumps({"broker": app.conf.broker_transport_options,
                  "channels": settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
                  "cache": settings.CACHES["default"]["KEY_PREFIX"]}))
"""


def test_it_puts_every_redis_key_of_a_deployment_under_its_prefix():
    assert broker_transport_options({"global_keyprefix": "lab-a:"}) == {"global_keyprefix": "lab-a:",
                                                                        "visibility_timeout": 24 * 3600}
    # What a deployment's process builds from its environment (the session's own app is set up by conftest).
    shown = subprocess.run([sys.executable, "-c", SHOW_PREFIXES], cwd=REPO,
                           env={**_environment(), "CINR_REDIS_PREFIX": "lab-a:"}, capture_output=True, text=True,
                           timeout=120)
    assert shown.returncode == 0, shown.stderr
    prefixes = json.loads(shown.stdout.strip().splitlines()[-1])
    assert prefixes["broker"] == {"global_keyprefix": "lab-a:", "visibility_timeout": 24 * 3600}
    assert prefixes["channels"] == "lab-a:asgi" and prefixes["cache"] == "lab-a:cache"


def _environment() -> dict:
    import os

    return {**os.environ, "DJANGO_SETTINGS_MODULE": "cinr_web.settings"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow  # real worker processes: ~15-40 s
def test_it_runs_two_deployments_on_one_redis_without_taking_each_others_tasks(tiny_digits_dataset, tmp_path):
    a, b = new_prefix("deployment-a"), new_prefix("deployment-b")
    # Both deployments use this session's database (real ones each have their own): their sweepers stay off, or B's
    # would find A's rows queued with no message in B's broker and rightly send them again, to B.
    worker_a = WorkerProcess(a, "a", tmp_path / "a.log", sweep_seconds=0)
    worker_b = WorkerProcess(b, "b", tmp_path / "b.log", sweep_seconds=0)

    def fit_in(prefix: str) -> Run:
        with producing_to(prefix):
            return start_fit(tiny_digits_dataset, SPEC, FIT, chunk_images=20).fit_run  # 2 chunk messages

    def finished(run: Run, workers) -> Run:
        wait_until(lambda: Run.objects.get(pk=run.pk).status == "succeeded", 60, f"run {run.pk} to succeed", workers)
        return Run.objects.get(pk=run.pk)

    def untouched(run: Run, prefix: str) -> None:
        run.refresh_from_db()
        assert run.status == "queued" and run.started_at is None and run.worker == ""
        with producing_to(prefix):  # the sweeper's view of that deployment's queues
            assert broker_messages() == {("cinr.fit_chunk", (run.pk, 0)), ("cinr.fit_chunk", (run.pk, 1))}

    try:
        # Deployment B's worker runs while both deployments have work queued: it takes only B's.
        run_a, run_b = fit_in(a), fit_in(b)
        with running_workers(worker_b):
            run_b = finished(run_b, (worker_b,))
            untouched(run_a, a)
        assert run_b.worker == worker_b.worker_name
        # ... and the other way round.
        second_b = fit_in(b)
        with running_workers(worker_a):
            run_a = finished(run_a, (worker_a,))
            untouched(second_b, b)
        assert run_a.worker == worker_a.worker_name
        assert "does not exist" not in worker_a.log() + worker_b.log()

        # The broker's keys (kombu's bindings, the queues) are under each deployment's prefix; B's queue still holds
        # its second run.
        assert any("_kombu.binding" in key for key in redis_keys(a))
        assert f"{b}gpu" in redis_keys(b)
    finally:
        delete_redis_keys(a)
        delete_redis_keys(b)
