"""Helpers shared by the dashboard views: login/staff guards and small formatting."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse_lazy

# Our own login page, whatever settings.LOGIN_URL says (the admin login refuses non-staff users).
LOGIN_URL = reverse_lazy("frontend:login")


def member(view: Callable) -> Callable:
    """Any logged-in user; anonymous users are redirected to the dashboard's login page."""
    return login_required(view, login_url=LOGIN_URL)


def staff(view: Callable) -> Callable:
    """Logged-in staff only (they start and cancel work): anonymous -> login, others -> 403."""

    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_staff:
            raise PermissionDenied("Only staff users may start or cancel work.")
        return view(request, *args, **kwargs)

    return member(guarded)


def pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)


def int_param(request: HttpRequest, name: str, default: int, lo: int, hi: int) -> int:
    """An integer query parameter clamped to [lo, hi]; garbage gives the default."""
    try:
        value = int(request.GET.get(name, default))
    except (TypeError, ValueError):
        return default
    return max(lo, min(hi, value))


# Paths of the REST API (web-api's cinr_web/api/urls.py) the pages call from JavaScript.
API_UPLOAD = "/api/datasets/upload/"


def api_image_url(dataset_id: int, index: int) -> str:
    return f"/api/datasets/{dataset_id}/images/{index}/image.png"


def api_render_base(inrset_id: int) -> str:
    """Prefix of an INR render: + f"{index}/render.png?..."."""
    return f"/api/inrsets/{inrset_id}/inrs/"
