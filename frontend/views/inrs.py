"""Facts about one INR of a set that the INR set page shows beside its spectrum (the paper's Figure 2)."""

from __future__ import annotations

import torch
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404
from django.views.decorators.http import require_GET
from rest_framework.exceptions import NotFound

import inr
from cinr_web.api.views_data import one_inr
from cinr_web.inrsets.models import INRSet
from frontend.views.common import member

RENDER_FACTOR = 4  # the page shows the 4x render's spectrum


@member
@require_GET
def band(request: HttpRequest, pk: int, index: int) -> JsonResponse:
    """{"out_of_band_energy": fraction of the 4x render's spectral energy outside the grid's band,
    "band_limit": [rows, cols] rad/unit (MFN) or null, "nyquist": [rows, cols] rad/unit, "anti_alias": bool}."""
    inrset = get_object_or_404(INRSet.objects.select_related("dataset"), pk=pk)
    try:
        data = one_inr(inrset, index)  # this INR's rows of the weight file, not the whole set
    except NotFound as error:
        return JsonResponse({"error": str(error.detail)}, status=404)
    params = data.params
    height, width = inrset.dataset.height, inrset.dataset.width
    with torch.no_grad():
        energy = float(inr.out_of_band_energy(data.spec, params, height, width, factor=RENDER_FACTOR)[0])
        limit = inr.band_limit(data.spec, params)[0].tolist() if data.spec.arch == "mfn" else None
    return JsonResponse({"out_of_band_energy": energy, "band_limit": limit, "nyquist": list(inr.nyquist(height, width)),
                         "anti_alias": bool((inrset.fit_config or {}).get("anti_alias")), "factor": RENDER_FACTOR})
