"""The Celery app of CINR.

Queues: `gpu` (fit chunks, SimCLR and supervised training) and `default` (linear probes, embedding maps).
Run one worker per GPU with the solo pool, pinned to its device, because CUDA and fork() do not mix:

    CUDA_VISIBLE_DEVICES=0 celery -A cinr_web worker -Q gpu -P solo -c 1 -n gpu0@%h
    CUDA_VISIBLE_DEVICES=1 celery -A cinr_web worker -Q gpu -P solo -c 1 -n gpu1@%h
    celery -A cinr_web worker -Q default -c 2 -n cpu@%h

Workers on other machines join by pointing at the same REDIS_URL, DATABASE_URL and MEDIA_ROOT (or S3 bucket).
Tasks are acknowledged late and fetched one at a time: a worker that dies mid-task leaves its message to another
worker, and a long task never holds a second one hostage. The Run row in the database is the source of truth; a task
message carries only the run id.
"""

import os

from celery import Celery
from celery.signals import worker_init
from kombu import Queue

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cinr_web.settings")

from django.conf import settings  # noqa: E402 - after DJANGO_SETTINGS_MODULE is set


def broker_transport_options(from_settings: dict) -> dict:
    """The settings' broker options (their `global_keyprefix`, CINR_REDIS_PREFIX, puts every broker key of this
    deployment under its prefix) with CINR's visibility timeout added, never replacing them."""
    # Redis redelivers an unacknowledged message after this long; longer than the longest task so a slow task is not
    # run twice. A dead worker's run does not wait for it: the sweeper (cinr_web.runs.recovery) re-sends it.
    return {"visibility_timeout": 24 * 3600, **from_settings}


app = Celery("cinr_web")
app.config_from_object("django.conf:settings", namespace="CELERY")

GPU_TASKS = ("cinr.fit_chunk", "cinr.train")
DEFAULT_TASKS = ("cinr.probe", "cinr.embedding")

app.conf.update(
    task_queues=(Queue("gpu"), Queue("default")),
    task_default_queue="default",
    task_routes={
        **{name: {"queue": "gpu"} for name in GPU_TASKS},
        **{name: {"queue": "default"} for name in DEFAULT_TASKS},
    },
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,  # results live in the Run rows
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
    broker_transport_options=broker_transport_options(settings.CELERY_BROKER_TRANSPORT_OPTIONS),
    worker_hijack_root_logger=False,
)
app.autodiscover_tasks(["cinr_web.runs"])


@worker_init.connect
def _apply_thread_policy(**kwargs) -> None:
    """A worker's torch threads come from the one policy (training.threads; the pools' variables were set when
    cinr_web loaded). Logged, because a wrong count makes a run several times slower without any other sign."""
    import logging

    from training.threads import apply_thread_policy, describe

    apply_thread_policy()
    logging.getLogger(__name__).info("thread policy: %s", describe())
