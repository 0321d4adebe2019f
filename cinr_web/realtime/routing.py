"""WebSocket routes, wrapped by cinr_web/asgi.py in AuthMiddlewareStack(URLRouter(...))."""

from django.urls import path

from cinr_web.realtime.consumers import INRSetConsumer, RunConsumer

websocket_urlpatterns = [
    path("ws/runs/<int:pk>/", RunConsumer.as_asgi()),
    path("ws/inrsets/<int:pk>/", INRSetConsumer.as_asgi()),
]
