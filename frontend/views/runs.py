"""Run pages: live charts, status, cancel, follow-up runs (probe, embedding) and the comparison chart."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from cinr_web.runs.exports import run_files
from cinr_web.runs.models import Run
from frontend.views.common import member, pretty_json, staff

FOLLOW_UPS = {"probe": Run.Kind.PROBE, "embedding": Run.Kind.EMBEDDING}


def probe_of(run: Run) -> Run | None:
    """The run whose result holds probe accuracy: the run itself (probe/supervised) or its latest probe child."""
    if run.kind == Run.Kind.PROBE:
        return run
    return run.children.filter(kind=Run.Kind.PROBE).order_by("-id").first()


def embedding_of(run: Run) -> Run | None:
    if run.kind == Run.Kind.EMBEDDING:
        return run
    return run.children.filter(kind=Run.Kind.EMBEDDING).order_by("-id").first()


# The chart panels each kind of run fills (probe and embedding runs log no curves: their page shows their result).
PANELS = {
    Run.Kind.FIT: ["loss", "psnr"],
    Run.Kind.SIMCLR: ["loss", "lr", "alignment"],
    Run.Kind.SUPERVISED: ["loss", "lr", "accuracy"],
}


def probe_subject(run: Run) -> str:
    """What a probe run probed, in words: the encoder run's features or the INR set's raw weights."""
    encoder = run.parent if run.parent is not None and run.parent.is_encoder else None
    if encoder is not None:
        return f"the features of encoder run {encoder.pk} ({encoder.get_kind_display()})"
    return f"the raw, flattened weights of INR set {run.inrset_id}"


def probe_summary(run: Run | None) -> dict | None:
    """Accuracy (percent), what was probed, its baselines, class names and confusion matrix from a finished probe
    run's result (None when there is none)."""
    if run is None or run.status != "succeeded":
        return None
    result = run.result or {}
    if "accuracy" not in result:
        return None
    class_names = result.get("class_names") or (run.inrset.dataset.class_names if run.inrset else [])
    baselines = []
    raw = result.get("raw_weights_accuracy", result.get("raw_accuracy"))
    if raw is not None:
        baselines.append(("raw, flattened weights", raw))
    if result.get("random_encoder_accuracy") is not None:
        baselines.append(("the same encoder, untrained (random weights)", result["random_encoder_accuracy"]))
    if class_names:
        baselines.append((f"chance (1 of {len(class_names)} classes)", 100.0 / len(class_names)))
    return {"run": run, "accuracy": result.get("accuracy"), "confusion": result.get("confusion") or [],
            "class_names": class_names, "per_class": result.get("per_class_accuracy") or [],
            "subject": probe_subject(run), "baselines": baselines,
            "num_train": result.get("num_train"), "num_test": result.get("num_test")}


def pending_child(run: Run, kind: str) -> Run | None:
    """A queued or running follow-up of `kind` (e.g. the probe a chain started): the page links to it instead of
    offering to start another."""
    return run.children.filter(kind=kind, status__in=["queued", "running"]).order_by("-id").first()


@member
def run_detail(request: HttpRequest, pk: int) -> HttpResponse:
    run = get_object_or_404(Run.objects.select_related("inrset", "inrset__dataset", "parent"), pk=pk)
    probe = probe_summary(probe_of(run))
    embedding = embedding_of(run)
    others = (Run.objects.filter(kind=run.kind).exclude(pk=run.pk).order_by("-id")[:20]
              if run.kind != Run.Kind.FIT else [])
    return render(request, "frontend/run.html", {
        "run": run, "config_json": pretty_json(run.config), "result_json": pretty_json(run.result),
        "probe": probe, "embedding": embedding, "children": run.children.order_by("id"),
        "is_encoder": run.is_encoder, "others": others, "panels": PANELS.get(run.kind, []),
        "downloads": [(f"/api/runs/{run.pk}/{name}", name, what) for name, what in run_files(run).items()],
        "pending_probe": pending_child(run, Run.Kind.PROBE) if run.is_encoder else None,
        "pending_embedding": pending_child(run, Run.Kind.EMBEDDING) if run.is_encoder else None,
        "chart_data": {"run": run.pk, "kind": run.kind, "status": run.status,
                       # A fit's curve runs over steps 1..steps once per batch of INRs: its step is no progress.
                       "steps": (run.config or {}).get("steps") if run.kind != Run.Kind.FIT else None,
                       "started_at": run.started_at.isoformat() if run.started_at else None,
                       "finished_at": run.finished_at.isoformat() if run.finished_at else None,
                       "confusion": probe["confusion"] if probe else None,
                       "class_names": probe["class_names"] if probe else None},
    })


@staff
@require_POST
def run_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    from cinr_web.runs import services

    run = get_object_or_404(Run, pk=pk)
    if run.is_finished:
        messages.error(request, f"Run {run.pk} has already {run.status}.")
    else:
        services.cancel_run(run)
        messages.success(request, f"Cancel requested for run {run.pk}; the worker stops at its next step.")
    return redirect("frontend:run", pk=run.pk)


@staff
@require_POST
def run_follow_up(request: HttpRequest, pk: int) -> HttpResponse:
    """Start a probe or an embedding map of an encoder run (staff)."""
    from cinr_web.runs import services

    run = get_object_or_404(Run, pk=pk)
    kind = FOLLOW_UPS.get(request.POST.get("kind", ""))
    if kind is None or run.kind not in (Run.Kind.SIMCLR, Run.Kind.SUPERVISED):
        messages.error(request, "Probes and embedding maps are started from a SimCLR or supervised run.")
        return redirect("frontend:run", pk=run.pk)
    try:
        child = services.start_run(kind, run.inrset, {}, request.user, parent=run)
    except ValueError as error:
        messages.error(request, f"Could not start the {kind}: {error}")
        return redirect("frontend:run", pk=run.pk)
    return redirect("frontend:run", pk=child.pk)


@member
def compare(request: HttpRequest) -> HttpResponse:
    """Two or more runs on one chart (live: one websocket per run)."""
    chosen_ids = []
    for value in request.GET.getlist("run"):
        try:
            chosen_ids.append(int(value))
        except ValueError:
            continue
    chosen = list(Run.objects.filter(pk__in=chosen_ids).order_by("id"))
    candidates = Run.objects.exclude(kind=Run.Kind.FIT).select_related("inrset", "inrset__dataset").order_by("-id")[:60]
    metric = request.GET.get("metric", "loss")[:64] or "loss"
    return render(request, "frontend/compare.html", {
        "nav": "compare", "chosen": chosen, "chosen_ids": [r.pk for r in chosen], "candidates": candidates,
        "metric": metric, "metrics": ["loss", "lr", "top1", "top5", "accuracy", "psnr_mean"],
        "chart_data": {"runs": [{"id": r.pk, "label": f"run {r.pk} · {r.kind}", "status": r.status} for r in chosen],
                       "metric": metric},
    })
