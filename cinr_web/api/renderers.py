"""A PNG renderer, so that clients may ask for `Accept: image/png`, while errors are still answered in JSON."""

from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response


class PNGRenderer(BaseRenderer):
    media_type = "image/png"
    format = "png"
    charset = None
    render_style = "binary"

    def render(self, data, accepted_media_type=None, renderer_context=None) -> bytes:
        if isinstance(data, bytes):
            return data
        raise TypeError("PNGRenderer renders bytes only")  # json_errors() keeps error bodies away from here


def json_errors(request, response):
    """An error body (a DRF Response with data) is always rendered as JSON, whatever the client accepted."""
    if isinstance(response, Response) and not isinstance(response.data, bytes | None):
        request.accepted_renderer = JSONRenderer()
        request.accepted_media_type = JSONRenderer.media_type
    return response
