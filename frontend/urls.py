"""Dashboard pages. Mounted at the site root by cinr_web/urls.py."""

app_name = "frontend"

urlpatterns: list = []
