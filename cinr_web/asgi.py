"""ASGI entry point (daphne): HTTP through Django, websockets through Channels (web-api's routes).

Importing this module imports the cinr_web package first, which sets the process's thread policy (training.threads)
before anything loads torch or numpy."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cinr_web.settings")
django_asgi_app = get_asgi_application()  # before anything imports models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from cinr_web.realtime.routing import websocket_urlpatterns  # noqa: E402
from cinr_web.static_files import StaticFilesHandler  # noqa: E402

http_app = StaticFilesHandler(django_asgi_app) if settings.CINR_SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
