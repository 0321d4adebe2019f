"""Embedding explorer: t-SNE of encoder features beside t-SNE of raw weights, and "Try it" (fit one image, embed it).

The maps come from the encoder run's embedding run (its artifact); "Try it" fits an uploaded image with the encoder's
INR spec and fit settings (or reads an uploaded INR weight file), then asks web-api's inference for the embedding,
class probabilities and map position.
"""

from __future__ import annotations

import base64
import io

import numpy as np
import torch
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET, require_POST
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

import inr
from cinr_web.api.rendering import RenderOptions, png_bytes, render_image
from cinr_web.api.throttles import TryThrottle
from cinr_web.bounds import short_message, spec_limits
from cinr_web.datasets.services import without_python_reprs
from cinr_web.runs.models import Run
from frontend.views.common import api_render_base, member
from training.importers import PIL_FORMATS

ENCODER_KINDS = (Run.Kind.SIMCLR, Run.Kind.SUPERVISED)
MAX_TRY_BYTES = 20 * 1024 * 1024
TRY_VIEWS = 4  # augmented views shown beside a "Try it" reconstruction


def embedding_run_of(encoder: Run) -> Run | None:
    return encoder.children.filter(kind=Run.Kind.EMBEDDING, status="succeeded").order_by("-id").first()


def resolve(run: Run) -> tuple[Run | None, Run | None]:
    """(encoder run or None, succeeded embedding run or None) behind an explorer URL: an encoder run, or an
    embedding run (whose parent is the encoder; a raw-weights map has none)."""
    if run.kind == Run.Kind.EMBEDDING:
        encoder = run.parent if run.parent is not None and run.parent.kind in ENCODER_KINDS else None
        return encoder, run if run.status == "succeeded" else None
    if run.kind in ENCODER_KINDS:
        return run, embedding_run_of(run)
    raise Http404(f"Run {run.pk} is a {run.kind} run: open the explorer of an encoder or embedding run.")


def _run(pk: int) -> Run:
    return get_object_or_404(Run.objects.select_related("parent", "inrset", "inrset__dataset"), pk=pk)


@member
def explorer(request: HttpRequest, pk: int) -> HttpResponse:
    run = _run(pk)
    encoder, embedding = resolve(run)
    pending = None
    if embedding is None:
        waiting = run if run.kind == Run.Kind.EMBEDDING else encoder.children.filter(kind=Run.Kind.EMBEDDING)
        pending = waiting if isinstance(waiting, Run) else waiting.order_by("-id").first()
    inrset = run.inrset
    return render(request, "frontend/explorer.html", {
        "run": run, "encoder": encoder, "embedding": embedding, "pending": pending, "inrset": inrset,
        "config": {"points_url": request.path + "points.json",
                   "try_url": f"/runs/{encoder.pk}/try/" if encoder else "",
                   "render_base": api_render_base(inrset.pk) if inrset else "",
                   "inrset_url": f"/inrsets/{inrset.pk}/" if inrset else "",
                   "height": inrset.dataset.height if inrset else 0,
                   "ready": embedding is not None},
    })


@member
@require_GET
def points(request: HttpRequest, pk: int) -> JsonResponse:
    from cinr_web.runs.artifacts import load_maps

    _, embedding = resolve(_run(pk))
    if embedding is None:
        return JsonResponse({"error": f"run {pk} has no succeeded embedding map yet"}, status=404)
    try:
        return JsonResponse(load_maps(embedding))
    except (LookupError, ValueError) as error:  # no artifact, or an artifact that is not a map
        return JsonResponse({"error": str(error)}, status=404)


def _data_uri(array: np.ndarray) -> str:
    return "data:image/png;base64," + base64.b64encode(png_bytes(array)).decode("ascii")


class TryError(ValueError):
    """A "Try it" upload that cannot be used; the message says why (HTTP 400)."""


# How PIL's image modes read to a person, for the conversions "Try it" reports.
MODE_NAMES = {"1": "black and white", "L": "grey", "LA": "grey with transparency", "P": "palette colour",
              "RGB": "colour (RGB)", "RGBA": "colour with transparency (RGBA)", "CMYK": "CMYK colour",
              "I": "32-bit grey", "I;16": "16-bit grey", "F": "floating-point grey"}


def conversions_of(mode: str, size: tuple[int, int], channels: int, height: int, width: int) -> list[str]:
    """What turning a picture of `mode` and `size` (width, height) into the dataset's channels and grid changes, in
    words: the encoder only reads INRs fitted to pictures like the set's, so nothing is changed silently."""
    target = "L" if channels == 1 else "RGB"
    notes = []
    if mode != target:
        notes.append(f"{MODE_NAMES.get(mode, mode)} converted to {MODE_NAMES[target]}: the set's images have "
                     f"{channels} channel{'s' if channels != 1 else ''}")
    if size != (width, height):
        note = f"resized from {size[0]}×{size[1]} to {width}×{height} pixels, the set's grid"
        if abs(size[0] * height - size[1] * width) > max(size[0] * height, size[1] * width) // 50:
            note += " (stretched: its aspect ratio differs)"
        notes.append(note)
    return notes


def _read_image(data: bytes, name: str, channels: int, height: int, width: int) -> tuple[torch.Tensor, list[str]]:
    """An uploaded picture as [1, C, H, W] in [0, 1], converted to the dataset's channels and resized to its grid,
    with the conversions made (conversions_of)."""
    limit = settings.CINR_MAX_IMAGE_PIXELS
    try:
        picture = PILImage.open(io.BytesIO(data), formats=PIL_FORMATS)  # reads the header only
        if picture.width * picture.height > limit:  # checked before the pixels are decoded
            raise TryError(f"{name}: {picture.width}×{picture.height} pixels is over the limit of {limit}")
        picture.load()
    except (UnidentifiedImageError, OSError, PILImage.DecompressionBombError) as error:
        raise TryError(f"{name}: not a readable image ({without_python_reprs(str(error))})") from None
    conversions = conversions_of(picture.mode, picture.size, channels, height, width)
    picture = picture.convert("L" if channels == 1 else "RGB")
    if picture.size != (width, height):
        picture = picture.resize((width, height), PILImage.Resampling.LANCZOS)
    array = np.asarray(picture, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array.copy())
    tensor = tensor[None, None] if channels == 1 else tensor.permute(2, 0, 1)[None]  # [1, C, H, W]
    return tensor, conversions


def fit_one(encoder: Run, image: torch.Tensor) -> tuple[inr.Params, float]:
    """Fits one image with the INR set's spec and fit settings (seed 0, as the set's first seed): (params, PSNR)."""
    from inr.fit import fit

    inrset = encoder.inrset
    cfg = inrset.fit_config or {}
    result = fit(inrset.field_spec, image, seeds=1, steps=cfg.get("steps"), lr=cfg.get("lr"),
                 anti_alias=bool(cfg.get("anti_alias", False)), shared_init=bool(cfg.get("shared_init", True)),
                 device="cpu")
    return result.params, float(result.psnr[0])


def _views(spec: inr.FieldSpec, params: inr.Params, height: int, width: int) -> dict:
    """Reconstruction at the grid size and 4x, and a few random SimCLR augmentations, as PNG data URIs."""
    big = RenderOptions(size=4 * height)
    views = {"reconstruction": _data_uri(render_image(spec, params, height, width, RenderOptions())),
             "reconstruction_4x": _data_uri(render_image(spec, params, height, width, big)),
             "augmented": [_data_uri(render_image(spec, params, height, width,
                                                  RenderOptions(size=4 * height, augment=True, seed=k)))
                           for k in range(TRY_VIEWS)]}
    return views


@member
@require_POST
def try_it(request: HttpRequest, pk: int) -> JsonResponse:
    """POST multipart "file": one image (fitted here) or one INR weight file -> embedding, class, map position."""
    from cinr_web.api.inference import EncoderUnavailable, embed_inrs

    throttle = TryThrottle()
    if not throttle.allow_request(request, None):  # per user, like the model API (CINR_TRY_THROTTLE)
        wait = throttle.wait()
        response = JsonResponse({"error": "too many requests: try again later"}, status=429)
        if wait is not None:
            response["Retry-After"] = str(max(1, round(wait)))
        return response
    encoder, _ = resolve(_run(pk))
    if encoder is None:
        return JsonResponse({"error": f"run {pk} has no encoder to embed with"}, status=400)
    if encoder.status != "succeeded":
        return JsonResponse({"error": f"run {encoder.pk} is {encoder.status}; try it on a succeeded encoder"},
                            status=400)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "send one image or INR weight file as the form field 'file'"}, status=400)
    limit = min(MAX_TRY_BYTES, settings.CINR_MAX_UPLOAD_BYTES)
    if upload.size > limit:
        return JsonResponse({"error": f"{upload.name}: {upload.size} bytes is over the limit of {limit}"},
                            status=400)
    inrset = encoder.inrset
    dataset = inrset.dataset
    spec = inrset.field_spec
    data = upload.read()
    answer: dict = {"source": upload.name}
    try:
        if upload.name.lower().endswith(".safetensors"):
            file_spec, params, _ = inr.load(data, max_bytes=limit, limits=spec_limits())
            if file_spec != spec:
                raise TryError(f"{upload.name}: architecture {file_spec.to_dict()} is not the encoder's "
                               f"{spec.to_dict()}")
            batch = inr.check_params(spec, params)
            if batch != 1:
                raise TryError(f"{upload.name}: holds {batch} INRs; drop a file with exactly one")
            answer["kind"] = "weights"
        else:
            image, conversions = _read_image(data, upload.name, dataset.channels, dataset.height, dataset.width)
            params, psnr = fit_one(encoder, image)
            answer.update(kind="image", psnr=psnr, conversions=conversions,
                          original=_data_uri((image[0].permute(1, 2, 0).squeeze(-1) * 255).round()
                                             .to(torch.uint8).numpy()))
        results = embed_inrs(encoder, spec, params)
    except (TryError, ValueError) as error:  # inr.InvalidWeights and web-api's BadWeights are ValueErrors
        return JsonResponse({"error": short_message(str(error))}, status=400)
    except EncoderUnavailable as error:
        return JsonResponse({"error": short_message(str(error))}, status=409)
    first = results[0]
    answer.update(predicted_class=first.get("predicted_class"), probabilities=first.get("probabilities") or {},
                  map_position=first.get("map_position"))
    answer.update(_views(spec, params, dataset.height, dataset.width))
    return JsonResponse(answer)
