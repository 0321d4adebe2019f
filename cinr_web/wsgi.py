"""WSGI entry point (plain HTTP only; websockets need the ASGI app)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cinr_web.settings")
application = get_wsgi_application()
