"""URL routes of the REST API, mounted under /api/ by cinr_web/urls.py."""

urlpatterns: list = []
