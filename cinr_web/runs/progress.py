"""The bridge from training callbacks to the database and live events.

A Reporter buffers metric points and writes them in batches (after `flush_steps` steps or `flush_seconds`, whichever
comes first: fast steps are not slowed by a query each, slow ones still show up live within a second), with
the run's heartbeat and progress, and publishes them as live events. It reads the run's cancel_requested flag from
the database at most every `cancel_seconds` (so a cancel takes effect within a step or two without a query per step)
and enforces the run's "max_seconds" budget.
"""

from __future__ import annotations

import math
import threading
import time

from django.db.models import Sum
from django.utils import timezone

from cinr_web import live
from cinr_web.runs.models import FitChunk, MetricPoint, Run
from cinr_web.runs.status import FINISHED


class RunCancelled(Exception):
    """The run was cancelled (cancel_requested, or its fit was stopped by another chunk's failure)."""


class RunTimeLimit(RuntimeError):
    """The run used up its max_seconds budget."""


class WorkerStopping(RuntimeError):
    """The worker is shutting down (Ctrl-C, SIGTERM, a deploy): the run stops now, as failed, and can be re-run."""


# Set by the worker_shutting_down signal (cinr_web.runs.tasks): every running Reporter stops at its next step, so a
# warm shutdown takes a step instead of the rest of a training run.
worker_stopping = threading.Event()


class Reporter:
    def __init__(self, run: Run, *, flush_steps: int = 100, flush_seconds: float = 1.0,
                 cancel_seconds: float = 0.25) -> None:
        self.run = run
        self.flush_steps = flush_steps
        self.flush_seconds = flush_seconds
        self.cancel_seconds = cancel_seconds
        self.started = time.monotonic()
        budget = run.config.get("max_seconds")
        self.deadline = self.started + float(budget) if budget else math.inf
        self.progress_value = float(run.progress)
        self._points: list[MetricPoint] = []
        self._steps_since_flush = 0
        self._last_flush = time.monotonic()
        self._last_cancel_check = -math.inf
        self._cancelled = False

    # -- what training calls ----------------------------------------------------------------------------------------
    def metrics(self, step: int, values: dict) -> None:
        now = timezone.now()
        for name, value in values.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                continue  # counters, flags and NaN are not plottable points
            self._points.append(MetricPoint(run_id=self.run.pk, step=int(step), name=str(name)[:64],
                                            value=float(value), time=now))
        self._steps_since_flush += 1

    def progress(self, fraction: float) -> None:
        self.progress_value = min(1.0, max(0.0, float(fraction)))

    def tick(self) -> bool:
        """Flushes when due; False when the run should stop (cancelled); RunTimeLimit past the budget."""
        now = time.monotonic()
        if worker_stopping.is_set():
            self.flush()
            raise WorkerStopping(f"run {self.run.pk} interrupted: its worker shut down; re-run it")
        if now > self.deadline:
            self.flush()
            raise RunTimeLimit(f"run {self.run.pk} exceeded its time limit of {self.run.config['max_seconds']} s")
        if self._steps_since_flush >= self.flush_steps or now - self._last_flush >= self.flush_seconds:
            self.flush()
        return not self.cancelled()

    def step(self, step: int, values: dict, fraction: float | None = None) -> bool:
        """metrics + progress + tick in one call: the shape of training's on_step(step, metrics) -> bool."""
        self.metrics(step, values)
        if fraction is not None:
            self.progress(fraction)
        return self.tick()

    def check(self) -> None:
        """Raises RunCancelled / RunTimeLimit between phases of work that has no step callback."""
        if not self.tick():
            raise RunCancelled(f"run {self.run.pk} was cancelled")

    # -- database and events -----------------------------------------------------------------------------------------
    def cancelled(self) -> bool:
        now = time.monotonic()
        if not self._cancelled and now - self._last_cancel_check >= self.cancel_seconds:
            self._last_cancel_check = now
            row = Run.objects.filter(pk=self.run.pk).values("cancel_requested", "status").first()
            self._cancelled = row is None or row["cancel_requested"] or row["status"] in FINISHED
        return self._cancelled

    def flush(self) -> None:
        points, self._points = self._points, []
        self._steps_since_flush = 0
        self._last_flush = time.monotonic()
        if points:
            MetricPoint.objects.bulk_create(points, batch_size=1000)
        self.write_progress()
        if points:
            # The run's progress rides along with its points, so pages follow training without polling.
            live.publish([live.run_group(self.run.pk)],
                         [live.metric_event(p.run_id, p.step, p.name, p.value, p.time) for p in points]
                         + [live.status_event(self.run)])

    def write_progress(self) -> None:
        self.run.progress = self.progress_value
        Run.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now(), progress=self.progress_value)


class FitReporter(Reporter):
    """A fit chunk's reporter: its progress is the chunk's; the run's is the mean over chunks, and the INR set's page
    gets progress events."""

    def __init__(self, run: Run, chunk: FitChunk, **kwargs) -> None:
        super().__init__(run, **kwargs)
        self.chunk = chunk
        self.psnr_mean: float | None = None

    def metrics(self, step: int, values: dict) -> None:
        if "psnr_mean" in values and math.isfinite(values["psnr_mean"]):
            self.psnr_mean = float(values["psnr_mean"])
        super().metrics(step, values)

    def write_progress(self) -> None:
        done = int(round(self.progress_value * self.chunk.total))
        FitChunk.objects.filter(pk=self.chunk.pk).update(done=done, psnr_mean=self.psnr_mean)
        totals = FitChunk.objects.filter(run_id=self.run.pk).aggregate(done=Sum("done"), total=Sum("total"))
        total = totals["total"] or 1
        fraction = (totals["done"] or 0) / total
        self.run.progress = fraction
        Run.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now(), progress=fraction)
        if self.run.inrset_id:
            live.publish([live.inrset_group(self.run.inrset_id), live.run_group(self.run.pk)],
                         [live.progress_event(self.run.inrset_id, fraction, totals["done"] or 0, total,
                                              self.psnr_mean)])
