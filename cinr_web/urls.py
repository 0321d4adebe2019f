"""Root URLs: the admin, the REST API (web-api) and the dashboard (web-frontend)."""

from django.conf import settings
from django.contrib import admin
from django.urls import include, path, re_path

from cinr_web.media import media as serve_media

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("cinr_web.api.urls")),
]
if settings.DEBUG or settings.CINR_SERVE_STATIC:
    # Media (dataset images, weights, artifacts) from the filesystem, for a session or a token (the API's read
    # permission); with S3 the files carry their own URLs.
    media = settings.MEDIA_URL.lstrip("/")
    urlpatterns.append(re_path(rf"^{media}(?P<path>.*)$", serve_media))
urlpatterns.append(path("", include("frontend.urls")))
