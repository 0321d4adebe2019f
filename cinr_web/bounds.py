"""The web service's input bounds, from the settings (CINR_MAX_*; docs/api.md, "Limits"), for the REST API and the
dashboard alike. Each is checked before the work it bounds is done."""

from __future__ import annotations

from django.conf import settings

import inr
from inr import safejson


def spec_limits() -> inr.SpecLimits:
    """The largest architecture a user may send: weight files, JSON specs, new INR sets."""
    return inr.SpecLimits(out_dim=settings.CINR_MAX_SPEC_OUT_DIM, hidden=settings.CINR_MAX_SPEC_HIDDEN,
                          layers=settings.CINR_MAX_SPEC_LAYERS, filters=settings.CINR_MAX_SPEC_FILTERS,
                          params=settings.CINR_MAX_SPEC_PARAMS)


def check_json_depth(text: str | bytes, what: str = "JSON") -> None:
    """safejson.TooDeep (a ValueError) when `text` nests deeper than CINR_MAX_JSON_DEPTH."""
    safejson.check_depth(text, settings.CINR_MAX_JSON_DEPTH, what)


def short_message(text: str) -> str:
    """An error message cut to CINR_MAX_ERROR_CHARS characters."""
    limit = settings.CINR_MAX_ERROR_CHARS
    return text if len(text) <= limit else text[:max(0, limit - 3)] + "..."
