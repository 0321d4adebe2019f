"""What a run will cost on THIS machine, before it starts: its steps times the step time this machine measured for
that kind of run.

Training (SimCLR, supervised): seconds per step of the last succeeded runs of the same kind, INR architecture, batch
size and encoder, read from their metric points' timestamps (first to last "loss" point: no start-up, no
checkpoint). Fits: seconds per INR-step of the last succeeded fit chunks with the same field spec and image size
(FitChunk.seconds is the time inside inr.fit). The median over at most MAX_RUNS runs; nothing measured -> no number,
and the caller says so.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field

from django.db.models import Max, Min

from cinr_web.runs.models import FitChunk, MetricPoint, Run

MAX_RUNS = 5  # the last runs that count: a machine's speed drifts (load, upgrades)
CANDIDATES = 50  # recent runs looked at to find MAX_RUNS that match


@dataclass(frozen=True)
class Estimate:
    units: int  # steps (training) or INR-steps (fits) the run will take
    unit: str  # "step" or "INR-step"
    seconds_per_unit: float | None  # None: nothing measured on this machine yet
    measured_runs: list[int] = field(default_factory=list)

    @property
    def seconds(self) -> float | None:
        return None if self.seconds_per_unit is None else self.units * self.seconds_per_unit

    @property
    def text(self) -> str:
        if self.seconds is None:
            return (f"{self.units:,} {self.unit}s; no run like this has finished on this machine yet, so there is "
                    "no estimate")
        runs = ", ".join(str(pk) for pk in self.measured_runs)
        return (f"about {duration(self.seconds)} on this machine ({self.units:,} {self.unit}s × "
                f"{self.seconds_per_unit:.3g} s, the median of run{'s' if len(self.measured_runs) > 1 else ''} {runs})")

    def as_dict(self) -> dict:
        return {"units": self.units, "unit": self.unit, "seconds_per_unit": self.seconds_per_unit,
                "seconds": self.seconds, "measured_runs": self.measured_runs, "text": self.text}


def duration(seconds: float) -> str:
    """A human duration: "40 s", "12 min", "1 h 35 min"."""
    seconds = max(0.0, float(seconds))
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


def _median(rates: list[tuple[int, float]]) -> tuple[float | None, list[int]]:
    if not rates:
        return None, []
    return statistics.median(rate for _, rate in rates), [pk for pk, _ in rates]


def step_seconds(run: Run) -> float | None:
    """Seconds per step of a finished training run, from its first to its last "loss" point."""
    span = MetricPoint.objects.filter(run=run, name="loss").aggregate(
        first_step=Min("step"), last_step=Max("step"), first_time=Min("time"), last_time=Max("time"))
    if span["first_step"] is None or span["last_step"] <= span["first_step"]:
        return None
    return (span["last_time"] - span["first_time"]).total_seconds() / (span["last_step"] - span["first_step"])


def _key(value: dict) -> str:
    return json.dumps(value or {}, sort_keys=True)


def training_rates(arch: str) -> list[dict]:
    """Every kind of training run measured on `arch` INRs: [{"kind", "batch_size", "encoder", "seconds_per_step",
    "runs"}], each the median over its last MAX_RUNS succeeded runs (the dashboard's form looks its choice up here)."""
    measured: dict[tuple, list[tuple[int, float]]] = {}
    runs = (Run.objects.filter(kind__in=[Run.Kind.SIMCLR, Run.Kind.SUPERVISED], status=Run.Status.SUCCEEDED,
                               inrset__spec__arch=arch).order_by("-finished_at", "-id")[:CANDIDATES])
    for run in runs:
        config = run.config or {}
        key = (run.kind, config.get("batch_size"), _key(config.get("encoder")))
        if len(measured.get(key, [])) >= MAX_RUNS:
            continue
        rate = step_seconds(run)
        if rate is not None:
            measured.setdefault(key, []).append((run.pk, rate))
    rows = []
    for (kind, batch_size, encoder), rates in measured.items():
        seconds, pks = _median(rates)
        rows.append({"kind": kind, "batch_size": batch_size, "encoder": json.loads(encoder),
                     "seconds_per_step": seconds, "runs": pks})
    return rows


def training_rate(kind: str, arch: str, batch_size: int, encoder: dict) -> tuple[float | None, list[int]]:
    """(median seconds per step, the runs measured) of the last succeeded `kind` runs on `arch` INRs with this batch
    size and encoder; (None, []) when there are none."""
    for row in training_rates(arch):
        if row["kind"] == kind and row["batch_size"] == batch_size and _key(row["encoder"]) == _key(encoder):
            return row["seconds_per_step"], row["runs"]
    return None, []


def fit_rates(height: int, width: int) -> list[dict]:
    """Every field spec fitted to images of this size: [{"spec", "seconds_per_inr_step", "runs"}], each the median
    over its last MAX_RUNS succeeded fit runs (a run's value: the median of its chunks)."""
    chunks = (FitChunk.objects.filter(status=Run.Status.SUCCEEDED, seconds__gt=0, total__gt=0,
                                      run__inrset__dataset__height=height, run__inrset__dataset__width=width)
              .select_related("run", "run__inrset").order_by("-run__finished_at", "-id")[:CANDIDATES * 4])
    per_run: dict[str, dict[int, list[float]]] = {}
    for chunk in chunks:
        steps = int((chunk.run.config or {}).get("steps") or 0)
        runs = per_run.setdefault(_key(chunk.run.inrset.spec), {})
        if steps > 0 and (chunk.run_id in runs or len(runs) < MAX_RUNS):
            runs.setdefault(chunk.run_id, []).append(chunk.seconds / (chunk.total * steps))
    rows = []
    for spec, runs in per_run.items():
        if runs:
            seconds, pks = _median([(pk, statistics.median(values)) for pk, values in runs.items()])
            rows.append({"spec": json.loads(spec), "seconds_per_inr_step": seconds, "runs": pks})
    return rows


def fit_rate(spec: dict, height: int, width: int) -> tuple[float | None, list[int]]:
    """(median seconds per INR-step, the fit runs measured) of the last succeeded fits of INRs with this spec on
    images of this size; (None, []) when there are none."""
    for row in fit_rates(height, width):
        if _key(row["spec"]) == _key(spec):
            return row["seconds_per_inr_step"], row["runs"]
    return None, []


def estimate_training(kind: str, inrset, config: dict) -> Estimate:
    """The cost of a `kind` run on `inrset` with `config` (a stored config: cinr_web.runs.configs.normalise_config
    has filled in the defaults)."""
    rate, runs = training_rate(kind, (inrset.spec or {}).get("arch", ""), int(config["batch_size"]),
                               config.get("encoder") or {})
    return Estimate(units=int(config["steps"]), unit="step", seconds_per_unit=rate, measured_runs=runs)


def estimate_fit(dataset, spec: dict, steps: int, seeds_per_image: int) -> Estimate:
    """The cost of fitting every image of `dataset` `seeds_per_image` times for `steps` steps with `spec`."""
    rate, runs = fit_rate(spec, dataset.height, dataset.width)
    return Estimate(units=int(dataset.num_images) * int(seeds_per_image) * int(steps), unit="INR-step",
                    seconds_per_unit=rate, measured_runs=runs)
