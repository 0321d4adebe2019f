"""Run pages: live charts, status, cancel, follow-up runs (probe, embedding) and the comparison chart."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

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


def probe_summary(run: Run | None) -> dict | None:
    """Accuracy, class names and confusion matrix from a finished probe run's result (None when there is none)."""
    if run is None or run.status != "succeeded":
        return None
    result = run.result or {}
    if "accuracy" not in result:
        return None
    class_names = result.get("class_names") or (run.inrset.dataset.class_names if run.inrset else [])
    return {"run": run, "accuracy": result.get("accuracy"), "confusion": result.get("confusion") or [],
            "class_names": class_names, "per_class": result.get("per_class_accuracy") or [],
            "raw_accuracy": result.get("raw_weights_accuracy", result.get("raw_accuracy"))}


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
        "is_encoder": run.kind in (Run.Kind.SIMCLR, Run.Kind.SUPERVISED), "others": others,
        "chart_data": {"run": run.pk, "kind": run.kind, "status": run.status,
                       "steps": (run.config or {}).get("steps") if run.kind != Run.Kind.FIT else None,
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
