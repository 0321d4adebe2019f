"""URL routes of the REST API, mounted under /api/ by cinr_web/urls.py. Schema at /api/schema/, docs at /api/docs/."""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.permissions import AllowAny

from cinr_web import converters  # noqa: F401 - registers the `id` path converter
from cinr_web.api import views_data as data
from cinr_web.api import views_downloads as downloads
from cinr_web.api import views_runs as runs

urlpatterns = [
    # The schema and its docs pages are public (they describe the API, they hold no data); everything else needs a
    # login, as each view states.
    path("schema/", SpectacularAPIView.as_view(permission_classes=[AllowAny]), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[AllowAny]),
         name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema", permission_classes=[AllowAny]),
         name="api-redoc"),
    path("token/", runs.MyToken.as_view(), name="api-token"),
    # datasets
    path("datasets/", data.DatasetList.as_view(), name="api-datasets"),
    path("datasets/upload/", data.DatasetUpload.as_view(), name="api-dataset-upload"),
    path("datasets/import-builtin/", data.DatasetImportBuiltin.as_view(), name="api-dataset-import-builtin"),
    path("datasets/<id:pk>/", data.DatasetDetail.as_view(), name="api-dataset"),
    path("datasets/<id:pk>/images/", data.DatasetImages.as_view(), name="api-dataset-images"),
    path("datasets/<id:pk>/images/<id:index>/image.png", data.DatasetImagePNG.as_view(), name="api-image-png"),
    # INR sets
    path("inrsets/", data.INRSetListCreate.as_view(), name="api-inrsets"),
    path("inrsets/<id:pk>/", data.INRSetDetail.as_view(), name="api-inrset"),
    path("inrsets/<id:pk>/inrs/", data.INRSetINRs.as_view(), name="api-inrset-inrs"),
    path("inrsets/<id:pk>/inrs/<id:index>/render.png", data.INRRender.as_view(), name="api-inr-render"),
    path("inrsets/<id:pk>/weights.safetensors", downloads.INRSetWeights.as_view(), name="api-inrset-weights"),
    # runs
    path("runs/", runs.RunListCreate.as_view(), name="api-runs"),
    path("runs/<id:pk>/", runs.RunDetail.as_view(), name="api-run"),
    path("runs/<id:pk>/cancel/", runs.RunCancel.as_view(), name="api-run-cancel"),
    path("runs/<id:pk>/metrics/", runs.RunMetrics.as_view(), name="api-run-metrics"),
    path("runs/<id:pk>/artifacts/", runs.RunArtifacts.as_view(), name="api-run-artifacts"),
    # downloads (files: no trailing slash, like render.png)
    path("runs/<id:pk>/checkpoint.safetensors", downloads.RunCheckpoint.as_view(), name="api-run-checkpoint"),
    path("runs/<id:pk>/config.json", downloads.RunCheckpointConfig.as_view(), name="api-run-config"),
    path("runs/<id:pk>/probe.json", downloads.RunProbeResult.as_view(), name="api-run-probe"),
    path("runs/<id:pk>/embedding.csv", downloads.RunEmbedding.as_view(), {"suffix": "csv"},
         name="api-run-embedding-csv"),
    path("runs/<id:pk>/embedding.json", downloads.RunEmbedding.as_view(), {"suffix": "json"},
         name="api-run-embedding-json"),
    # encoders and the model API
    path("encoders/", runs.EncoderList.as_view(), name="api-encoders"),
    path("encoders/<id:pk>/", runs.EncoderDetail.as_view(), name="api-encoder"),
    path("encoders/<id:pk>/embed/", runs.EncoderEmbed.as_view(), name="api-encoder-embed"),
    # the form without the slash, as documented before: it works too (a redirect would turn the POST into a GET)
    path("encoders/<id:pk>/embed", runs.EncoderEmbedNoSlash.as_view(), name="api-encoder-embed-no-slash"),
]
