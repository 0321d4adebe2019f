"""Overview, dataset, INR set and API pages."""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.db.models import Count, OuterRef, Subquery
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from cinr_web.datasets.models import ImageDataset
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import Run
from frontend.forms import FitForm, TrainForm, fit_estimate, train_form_and_estimate
from frontend.views.common import API_UPLOAD, api_render_base, int_param, member, pretty_json, staff

IMAGES_PER_PAGE = 96
BUILTINS = {"digits": "scikit-learn digits (8×8, 1,797 images)", "mnist5k": "MNIST-5k (28×28, 5,000 images)"}


def _fit_progress():
    """Subquery: progress of the latest fit run of an INR set."""
    latest = Run.objects.filter(inrset=OuterRef("pk"), kind=Run.Kind.FIT).order_by("-id")
    return Subquery(latest.values("progress")[:1])


@member
def overview(request: HttpRequest) -> HttpResponse:
    datasets = ImageDataset.objects.annotate(inrset_count=Count("inrsets"))[:100]
    inrsets = INRSet.objects.select_related("dataset").annotate(fit_progress=_fit_progress())[:100]
    runs = Run.objects.exclude(kind=Run.Kind.FIT).select_related("inrset", "inrset__dataset", "parent")[:100]
    imported = set(ImageDataset.objects.filter(source=ImageDataset.Source.BUILTIN, name__in=list(BUILTINS))
                   .values_list("name", flat=True))
    return render(request, "frontend/overview.html", {
        "nav": "overview", "datasets": datasets, "inrsets": inrsets, "runs": runs,
        "builtins": {key: label for key, label in BUILTINS.items() if key not in imported},  # not imported yet
    })


@staff
@require_POST
def dataset_import_builtin(request: HttpRequest) -> HttpResponse:
    """Import a built-in dataset (staff); importing it again opens the existing one."""
    from cinr_web.datasets import services

    name = request.POST.get("name", "")
    if name not in BUILTINS:
        messages.error(request, f"Unknown built-in dataset {name!r}; choose one of {', '.join(BUILTINS)}.")
        return redirect("frontend:overview")
    dataset = services.import_builtin(name, user=request.user)
    return redirect("frontend:dataset", pk=dataset.pk)


@member
def dataset_new(request: HttpRequest) -> HttpResponse:
    return render(request, "frontend/dataset_new.html", {"nav": "new", "upload_url": API_UPLOAD})


@member
def dataset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    dataset = get_object_or_404(ImageDataset, pk=pk)
    return _dataset_page(request, dataset, FitForm())


def _dataset_page(request: HttpRequest, dataset: ImageDataset, fit_form: FitForm, status: int = 200) -> HttpResponse:
    paginator = Paginator(dataset.images.order_by("index"), IMAGES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    inrsets = dataset.inrsets.annotate(fit_progress=_fit_progress())
    return render(request, "frontend/dataset.html", {
        "dataset": dataset, "page": page, "inrsets": inrsets, "fit_form": fit_form,
        "fit_estimate": fit_estimate(dataset) if request.user.is_staff else None,
        "image_prefix": f"/api/datasets/{dataset.pk}/images/",
    }, status=status)


@staff
@require_POST
def dataset_fit(request: HttpRequest, pk: int) -> HttpResponse:
    from cinr_web.inrsets import services

    dataset = get_object_or_404(ImageDataset, pk=pk)
    form = FitForm(request.POST)
    if not form.is_valid():
        return _dataset_page(request, dataset, form, status=400)
    try:
        inrset = services.start_fit(dataset, form.spec(dataset.channels), form.fit_config(),
                                    form.cleaned_data["seeds_per_image"], request.user)
    except ValueError as error:
        messages.error(request, f"Could not start the fit: {error}")
        return redirect("frontend:dataset", pk=dataset.pk)
    messages.success(request, f"Fitting {dataset.num_images} images × {inrset.seeds_per_image} seed(s).")
    return redirect("frontend:inrset", pk=inrset.pk)


@member
def inrset_detail(request: HttpRequest, pk: int) -> HttpResponse:
    inrset = get_object_or_404(INRSet.objects.select_related("dataset"), pk=pk)
    dataset = inrset.dataset
    seeds = max(1, inrset.seeds_per_image)
    image = int_param(request, "image", 0, 0, max(0, dataset.num_images - 1))
    fit_run = inrset.fit_run
    encoder_runs = inrset.runs.exclude(kind=Run.Kind.FIT).order_by("-id")
    spec = inrset.spec or {}
    hist = inrset.psnr_histogram or {}
    anti_alias = bool((inrset.fit_config or {}).get("anti_alias"))
    twin = _aliasing_twin(inrset, anti_alias)
    train_form, train_estimate = train_form_and_estimate(inrset) if request.user.is_staff else (TrainForm(), None)
    return render(request, "frontend/inrset.html", {
        "inrset": inrset, "dataset": dataset, "fit_run": fit_run, "encoder_runs": encoder_runs,
        "spec_json": pretty_json(spec), "fit_config_json": pretty_json(inrset.fit_config),
        "anti_alias": anti_alias, "arch": spec.get("arch", "?"), "twin": twin,
        "twin_render_base": api_render_base(twin.pk) if twin else "",
        "seeds": seeds, "seeds_range": list(range(seeds)), "image": image, "max_image": max(0, dataset.num_images - 1),
        "histogram": {"edges": hist.get("edges", []), "counts": hist.get("counts", [])},
        "train_form": train_form, "train_estimate": train_estimate,
        "ready": inrset.status == "succeeded" and bool(inrset.weights),
        "render_base": api_render_base(inrset.pk), "image_prefix": f"/api/datasets/{dataset.pk}/images/",
    })


def _aliasing_twin(inrset: INRSet, anti_alias: bool) -> INRSet | None:
    """A succeeded set of the same dataset, architecture and seeds fitted with the other anti-aliasing setting: the
    INR set page shows its spectrum beside this one's (the paper's Figure 2)."""
    candidates = INRSet.objects.filter(dataset_id=inrset.dataset_id, spec=inrset.spec, status="succeeded",
                                       seeds_per_image=inrset.seeds_per_image).exclude(pk=inrset.pk).order_by("-id")
    for other in candidates[:20]:
        if bool((other.fit_config or {}).get("anti_alias")) != anti_alias and other.weights:
            return other
    return None


@staff
@require_POST
def inrset_train(request: HttpRequest, pk: int) -> HttpResponse:
    from cinr_web.runs import services

    inrset = get_object_or_404(INRSet, pk=pk)
    form = TrainForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Could not start the run: " + "; ".join(
            f"{field}: {' '.join(errors)}" for field, errors in form.errors.items()))
        return redirect("frontend:inrset", pk=inrset.pk)
    try:
        if form.cleaned_data["chain"]:
            run = services.start_chain(inrset, encoder_kind=form.cleaned_data["kind"], encoder_config=form.config(),
                                       user=request.user)[0]
        else:
            run = services.start_run(form.cleaned_data["kind"], inrset, form.config(), request.user)
    except ValueError as error:
        messages.error(request, f"Could not start the run: {error}")
        return redirect("frontend:inrset", pk=inrset.pk)
    return redirect("frontend:run", pk=run.pk)


@member
def api_help(request: HttpRequest) -> HttpResponse:
    token, _ = Token.objects.get_or_create(user=request.user)
    encoder = (Run.objects.filter(kind__in=[Run.Kind.SIMCLR, Run.Kind.SUPERVISED], status="succeeded")
               .order_by("-id").first())
    inrset = INRSet.objects.filter(status="succeeded").order_by("-id").first()
    base = request.build_absolute_uri("/").rstrip("/")
    return render(request, "frontend/api.html", {
        "nav": "api", "token": token.key, "base": base, "encoder_id": encoder.pk if encoder else 1,
        "inrset_id": inrset.pk if inrset else 1, "has_encoder": encoder is not None,
        "height": encoder.inrset.dataset.height if encoder and encoder.inrset else 28,
        "width": encoder.inrset.dataset.width if encoder and encoder.inrset else 28,
        "docs_url": "/api/docs/", "schema_url": "/api/schema/",
    })


@member
@require_POST
def api_token_reset(request: HttpRequest) -> HttpResponse:
    Token.objects.filter(user=request.user).delete()
    Token.objects.create(user=request.user)
    messages.success(request, "A new token was created; the old one no longer works.")
    return redirect(reverse("frontend:api_help"))
