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

from django.db import transaction
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
        self.seconds = 0.0  # spent in step(): metric writes, live events, heartbeats, cancel checks

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
        """metrics + progress + tick in one call: the shape of training's on_step(step, metrics) -> bool. The time
        it takes adds up in `seconds`: what reporting cost the run (bench.train prints it per step)."""
        started = time.perf_counter()
        try:
            self.metrics(step, values)
            if fraction is not None:
                self.progress(fraction)
            return self.tick()
        finally:
            self.seconds += time.perf_counter() - started

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
        with transaction.atomic():  # one commit for the points and the heartbeat
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
    """A fit chunk's reporter. Its progress is the chunk's; the run's is the sum over chunks, and the INR set's page
    gets progress events.

    The fit's curves are by step of the fit (1..steps, the x axis every INR shares): at each recorded step, "loss"
    and "psnr_mean" are the means over every INR that has reached that step so far, in all of inr.fit's batches and
    all chunk tasks, and "inrs" is how many INRs that is. inr.fit fits its batches one after the other, each from
    step 1, so a per-batch curve drawn on one axis would be a sawtooth. Each flush adds this task's new INR-steps to
    the stored means under the run's row lock, so chunk tasks on several workers combine into one curve, and the
    updated points go live to the run's and the INR set's pages (clients key points by step: an update replaces).
    """

    CURVE = ("loss", "psnr_mean", "inrs")

    def __init__(self, run: Run, chunk: FitChunk, **kwargs) -> None:
        super().__init__(run, **kwargs)
        self.chunk = chunk
        self.psnr_mean: float | None = None  # mean final PSNR of this chunk's INRs finished so far
        self._finished = [0, 0.0]  # INRs finished, sum of their final PSNRs
        self._curve: dict[int, list[float]] = {}  # step -> [INRs, loss sum, PSNR sum] not stored yet

    def fit_step(self, step: int, inrs: int, loss: float, psnr_mean: float, last: bool) -> None:
        """One batch of `inrs` INRs at `step` with mean `loss` and `psnr_mean`; `last`: the batch's final step."""
        if not (math.isfinite(loss) and math.isfinite(psnr_mean)):
            return
        entry = self._curve.setdefault(int(step), [0, 0.0, 0.0])
        entry[0] += inrs
        entry[1] += inrs * loss
        entry[2] += inrs * psnr_mean
        self._steps_since_flush += 1
        if last:
            self._finished[0] += inrs
            self._finished[1] += inrs * psnr_mean
            self.psnr_mean = self._finished[1] / self._finished[0]

    def flush(self) -> None:
        curve, self._curve = self._curve, {}
        self._steps_since_flush = 0
        self._last_flush = time.monotonic()
        points = self._add_to_curve(curve) if curve else []
        self.write_progress()
        if points:
            live.publish(self._groups(), [live.metric_event(p.run_id, p.step, p.name, p.value, p.time)
                                          for p in points] + [live.status_event(self.run)])

    def _add_to_curve(self, curve: dict[int, list[float]]) -> list[MetricPoint]:
        """Folds `curve` into the stored means; returns the points as they now are, in step order."""
        now = timezone.now()
        with transaction.atomic():
            Run.objects.select_for_update().filter(pk=self.run.pk).values_list("pk").first()
            stored = {(p.name, p.step): p for p in MetricPoint.objects.filter(
                run_id=self.run.pk, name__in=self.CURVE, step__in=list(curve))}
            new, changed = [], []
            for step in sorted(curve):
                inrs, loss_sum, psnr_sum = curve[step]
                count = stored.get(("inrs", step))
                before = count.value if count is not None else 0.0
                total = before + inrs
                for name, added in (("loss", loss_sum), ("psnr_mean", psnr_sum), ("inrs", float(inrs))):
                    point = stored.get((name, step))
                    if point is None:
                        point = MetricPoint(run_id=self.run.pk, step=step, name=name, value=0.0, time=now)
                        new.append(point)
                    else:
                        changed.append(point)
                    point.value = total if name == "inrs" else (point.value * before + added) / total
                    point.time = now
            MetricPoint.objects.bulk_create(new, batch_size=1000)
            MetricPoint.objects.bulk_update(changed, ["value", "time"], batch_size=1000)
        return sorted(new + changed, key=lambda p: (p.step, self.CURVE.index(p.name)))

    def _groups(self) -> list[str]:
        groups = [live.run_group(self.run.pk)]
        if self.run.inrset_id:
            groups.append(live.inrset_group(self.run.inrset_id))
        return groups

    def write_progress(self) -> None:
        done = int(round(self.progress_value * self.chunk.total))
        FitChunk.objects.filter(pk=self.chunk.pk).update(done=done, psnr_mean=self.psnr_mean)
        chunks = list(FitChunk.objects.filter(run_id=self.run.pk).values("done", "total", "psnr_mean"))
        total = sum(c["total"] for c in chunks) or 1
        done_all = sum(c["done"] for c in chunks)
        fraction = done_all / total
        # The mean final PSNR of the INRs finished so far, over all chunks (each chunk's mean weighted by its INRs).
        weighted = [(c["psnr_mean"], c["done"]) for c in chunks if c["psnr_mean"] is not None and c["done"]]
        psnr_mean = (sum(p * n for p, n in weighted) / sum(n for _, n in weighted)) if weighted else None
        self.run.progress = fraction
        Run.objects.filter(pk=self.run.pk).update(heartbeat_at=timezone.now(), progress=fraction)
        if self.run.inrset_id:
            live.publish(self._groups(), [live.progress_event(self.run.inrset_id, fraction, done_all, total,
                                                              psnr_mean)])
