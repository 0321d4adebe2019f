"""/static/ served by the ASGI app (CINR_SERVE_STATIC): Django's handler, with paths that leave the static folders
answered 404 instead of a 500.

Django's finders raise SuspiciousFileOperation for `/static/../x` (or `%2e%2e`), and the static handler only turns
Http404 into a response."""

from __future__ import annotations

from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousFileOperation
from django.http import Http404


class StaticFilesHandler(ASGIStaticFilesHandler):
    def serve(self, request):
        try:
            return super().serve(request)
        except SuspiciousFileOperation:
            raise Http404("no such static file") from None
