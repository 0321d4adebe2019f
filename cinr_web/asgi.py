"""ASGI entry point (daphne): HTTP through Django, websockets through Channels (web-api's routes)."""

import os

# CINR_TORCH_THREADS caps the BLAS and OpenMP pools of the web process too (numpy, scikit-learn's probe). They read
# these variables once, when first loaded, hence here, before anything imports numpy. On a busy 2-core machine this
# halved the model API's p50 for one INR (docs/api.md).
if os.environ.get("CINR_TORCH_THREADS", "").strip():
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, os.environ["CINR_TORCH_THREADS"].strip())

from django.core.asgi import get_asgi_application  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cinr_web.settings")
django_asgi_app = get_asgi_application()  # before anything imports models

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from cinr_web.realtime.routing import websocket_urlpatterns  # noqa: E402

http_app = ASGIStaticFilesHandler(django_asgi_app) if settings.CINR_SERVE_STATIC else django_asgi_app

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
