"""Dashboard pages. Mounted at the site root by cinr_web/urls.py; names live in the "frontend" namespace."""

from django.contrib.auth import views as auth_views
from django.urls import path

from cinr_web import converters  # noqa: F401 - registers the `id` path converter
from frontend.views import assets, explorer, inrs, pages, runs

app_name = "frontend"

urlpatterns = [
    path("", pages.overview, name="overview"),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="registration/login.html",
                                                         next_page="frontend:overview"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="frontend:login"), name="logout"),
    path("assets/<str:name>", assets.asset, name="asset"),
    path("favicon.ico", assets.favicon, name="favicon"),
    path("datasets/new/", pages.dataset_new, name="dataset_new"),
    path("datasets/import-builtin/", pages.dataset_import_builtin, name="dataset_import_builtin"),
    path("datasets/<id:pk>/", pages.dataset_detail, name="dataset"),
    path("datasets/<id:pk>/fit/", pages.dataset_fit, name="dataset_fit"),
    path("inrsets/<id:pk>/", pages.inrset_detail, name="inrset"),
    path("inrsets/<id:pk>/train/", pages.inrset_train, name="inrset_train"),
    path("inrsets/<id:pk>/inrs/<id:index>/band.json", inrs.band, name="inr_band"),
    path("runs/compare/", runs.compare, name="compare"),
    path("runs/<id:pk>/", runs.run_detail, name="run"),
    path("runs/<id:pk>/cancel/", runs.run_cancel, name="run_cancel"),
    path("runs/<id:pk>/follow-up/", runs.run_follow_up, name="run_follow_up"),
    path("runs/<id:pk>/explorer/", explorer.explorer, name="explorer"),
    path("runs/<id:pk>/explorer/points.json", explorer.points, name="explorer_points"),
    path("runs/<id:pk>/try/", explorer.try_it, name="try_it"),
    path("api-help/", pages.api_help, name="api_help"),
    path("api-help/token/", pages.api_token_reset, name="api_token_reset"),
]
