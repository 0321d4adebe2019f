"""WebSocket routes, wrapped by cinr_web/asgi.py in AuthMiddlewareStack(URLRouter(...))."""

websocket_urlpatterns: list = []
