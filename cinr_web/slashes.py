"""Paths without their trailing slash (`POST /api/runs`) are redirected with 308, which keeps the method and the body,
instead of Django's 301, after which clients repeat a POST as a GET: `POST /api/runs` would list runs instead of
starting one. Django's CommonMiddleware otherwise, in place of it in settings.MIDDLEWARE."""

from __future__ import annotations

from django.http import HttpRequest
from django.http.response import HttpResponseRedirectBase
from django.middleware.common import CommonMiddleware
from django.utils.http import escape_leading_slashes


class PermanentRedirectKeepingMethod(HttpResponseRedirectBase):
    status_code = 308


class AppendSlashMiddleware(CommonMiddleware):
    response_redirect_class = PermanentRedirectKeepingMethod

    def get_full_path_with_slash(self, request: HttpRequest) -> str:
        # Django's refuses (in DEBUG) to redirect a POST, PUT, PATCH or DELETE because a 301 drops its body; a 308
        # keeps it.
        return escape_leading_slashes(request.get_full_path(force_append_slash=True))
