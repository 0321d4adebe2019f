"""Root URLs: the admin, the REST API (web-api) and the dashboard (web-frontend)."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.urls import include, path, re_path
from django.views.static import serve

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", include("cinr_web.api.urls")),
]
if settings.DEBUG or settings.CINR_SERVE_STATIC:
    # Media (dataset images, weights, artifacts) from the filesystem, for logged-in users only (the API's read
    # permission); with S3 the files carry their own URLs.
    media = settings.MEDIA_URL.lstrip("/")
    urlpatterns.append(re_path(rf"^{media}(?P<path>.*)$", login_required(serve),
                               {"document_root": settings.MEDIA_ROOT}))
urlpatterns.append(path("", include("frontend.urls")))
