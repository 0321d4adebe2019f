"""Static assets of the dashboard, served by Django itself so the pages work offline and without a static server.

Plotly.js comes from the installed `plotly` Python package (plotly/package_data/plotly.min.js): no CDN anywhere.
Our own CSS/JS live in frontend/static/frontend/ (so `collectstatic` also finds them).
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
from functools import lru_cache
from pathlib import Path

import plotly
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotModified
from django.views.decorators.http import require_GET

STATIC_DIR = Path(__file__).resolve().parent.parent / "static" / "frontend"
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
# Only plain file names of our own asset kinds: no sub-directories, no "..".
ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*\.(js|css|svg|ico)$")


def asset_path(name: str) -> Path:
    """The file behind an asset name, or Http404."""
    name = str.__str__(name)  # a plain str: templates pass SafeString, which pathlib refuses
    if name == "plotly.min.js":
        path = PLOTLY_JS
    elif ASSET_NAME.match(name):
        path = STATIC_DIR / name
    else:
        raise Http404("No such asset.")
    if not path.is_file():
        raise Http404("No such asset.")
    return path


@lru_cache(maxsize=32)
def _read(path: str, mtime_ns: int, size: int) -> tuple[bytes, str]:
    """(content, ETag) of an asset file version; small and few, so kept in memory (an ASGI server streams sync
    file iterators poorly)."""
    content = Path(path).read_bytes()
    return content, '"' + hashlib.sha1(content).hexdigest()[:16] + '"'


def asset_version(name: str) -> str:
    """A short hash of the asset's content (changes whenever the file does)."""
    path = asset_path(name)
    stat = path.stat()
    return _read(str(path), stat.st_mtime_ns, stat.st_size)[1].strip('"')[:10]


@require_GET
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on pages without an icon link (the admin, the API docs): our SVG icon."""
    return asset(request, "favicon.svg")


@require_GET
def asset(request: HttpRequest, name: str) -> HttpResponse:
    path = asset_path(name)
    stat = path.stat()
    content, etag = _read(str(path), stat.st_mtime_ns, stat.st_size)
    if request.headers.get("If-None-Match") == etag:
        return HttpResponseNotModified(headers={"ETag": etag})
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if content_type.startswith("text/") or content_type.endswith("javascript"):
        content_type += "; charset=utf-8"
    response = HttpResponse(content, content_type=content_type)
    response["ETag"] = etag
    # Pages link assets with ?v=<content hash> ({% asset %}): a new version has a new URL, so cache for long.
    response["Cache-Control"] = "public, max-age=86400" if request.GET.get("v") else "public, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
