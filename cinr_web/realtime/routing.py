"""WebSocket routes, wrapped by cinr_web/asgi.py in AuthMiddlewareStack(URLRouter(...))."""

from django.urls import path, re_path

from cinr_web import converters  # noqa: F401 - registers the `id` path converter
from cinr_web.realtime.consumers import INRSetConsumer, RunConsumer, UnknownPathConsumer

websocket_urlpatterns = [
    path("ws/runs/<id:pk>/", RunConsumer.as_asgi()),
    path("ws/inrsets/<id:pk>/", INRSetConsumer.as_asgi()),
    re_path(r"", UnknownPathConsumer.as_asgi()),  # last: every other path closes with 4404
]
