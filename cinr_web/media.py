"""/media/ (stored datasets, weights and artifacts) from the filesystem, when the ASGI app serves it: for a logged-in
browser session or an API token (`Authorization: Token <key>`), like the API's reads. An anonymous browser is sent to
the login page; an anonymous script, or one with a bad token, gets 401 rather than a login page it cannot use.

Files are streamed in blocks; under ASGI from an async iterator (async_file_blocks), because Django reads a sync
iterator, such as FileResponse's, whole into memory before it sends anything there."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import BinaryIO

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.static import serve
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed


def media(request: HttpRequest, path: str) -> HttpResponse:
    if not request.user.is_authenticated:
        try:
            found = TokenAuthentication().authenticate(request)  # (user, token), or None without a token header
        except AuthenticationFailed as error:
            return _unauthorized(str(error))
        if found is None:
            if get_authorization_header(request):
                return _unauthorized("send a token as 'Authorization: Token <key>' (the dashboard's API page)")
            return redirect_to_login(request.get_full_path())
    response = serve(request, path, document_root=settings.MEDIA_ROOT)
    if isinstance(request, ASGIRequest) and getattr(response, "file_to_stream", None) is not None:
        response.streaming_content = async_file_blocks(response.file_to_stream)
    return response


async def async_file_blocks(handle: BinaryIO, block_bytes: int = 1 << 20) -> AsyncIterator[bytes]:
    """The bytes of an open file in blocks, read in a worker thread, then the file closed."""
    try:
        while block := await sync_to_async(handle.read)(block_bytes):
            yield block
    finally:
        await sync_to_async(handle.close)()


def _unauthorized(message: str) -> JsonResponse:
    response = JsonResponse({"detail": message}, status=401)
    response["WWW-Authenticate"] = "Token"
    return response
