"""Downloads: INR set weights, encoder checkpoints and their configs, probe results, embedding maps.

Every download is a GET that any logged-in user may make (session or token), answered with a Content-Disposition
filename. Stored files (safetensors) are streamed as they are, in blocks; JSON and CSV are built from the stored
artifacts, which are read as safetensors (nothing is unpickled). A run that has not succeeded, or has no such file,
gives 404 in JSON.
"""

from __future__ import annotations

import json

from django.core.handlers.asgi import ASGIRequest
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.permissions import IsAuthenticated
from rest_framework.views import APIView

from cinr_web.api.renderers import json_errors
from cinr_web.inrsets.models import INRSet
from cinr_web.media import async_file_blocks
from cinr_web.runs import exports
from cinr_web.runs.models import Run


class DownloadView(APIView):
    permission_classes = [IsAuthenticated]

    def perform_content_negotiation(self, request, force=False):
        # A client that asks for the file's own type (Accept: text/csv, application/octet-stream) gets the file, not
        # 406: the views return Django responses, and errors fall back to JSON.
        return super().perform_content_negotiation(request, force=True)

    def finalize_response(self, request, response, *args, **kwargs):
        return super().finalize_response(request, json_errors(request, response), *args, **kwargs)


def _attachment(response: HttpResponse, filename: str) -> HttpResponse:
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-cache"
    return response


BLOCK_BYTES = 1 << 20


def _stored_file(request, stored, filename: str) -> StreamingHttpResponse:
    """A stored file (a FieldFile) streamed in blocks of BLOCK_BYTES. Under ASGI (daphne, the product's server) the
    blocks come from an async iterator: Django reads a sync iterator (FileResponse's) whole into memory before it
    sends anything there. Under WSGI (the test client, a WSGI server) a sync iterator streams."""
    handle = stored.open("rb")

    def blocks():
        try:
            yield from iter(lambda: handle.read(BLOCK_BYTES), b"")
        finally:
            handle.close()

    asgi = isinstance(getattr(request, "_request", request), ASGIRequest)
    response = StreamingHttpResponse(async_file_blocks(handle, BLOCK_BYTES) if asgi else blocks(),
                                     content_type="application/octet-stream")
    response["Content-Length"] = str(stored.size)
    return _attachment(response, filename)


def _json_file(data: dict, filename: str) -> HttpResponse:
    return _attachment(HttpResponse(json.dumps(data, indent=1), content_type="application/json"), filename)


def _succeeded_run(pk: int, file: str) -> Run:
    run = get_object_or_404(Run.objects.select_related("parent"), pk=pk)
    if file not in exports.run_files(run):
        offered = ", ".join(exports.run_files(run)) or "nothing"
        raise NotFound(f"run {run.pk} ({run.kind}, {run.status}) has no {file}; it offers {offered}")
    return run


_FILE_RESPONSES = {(200, "application/octet-stream"): OpenApiTypes.BINARY,
                   404: OpenApiResponse(description="no such run or INR set, or no such file yet")}


class INRSetWeights(DownloadView):
    """The INR set's weights: one safetensors file as inr.save writes it (inr.load or training.data.INRDataset
    read it), with per-INR image_index, seed, label, is_train and psnr."""

    @extend_schema(responses=_FILE_RESPONSES)
    def get(self, request, pk: int):
        inrset = get_object_or_404(INRSet, pk=pk)
        if not inrset.weights:
            raise NotFound(f"INR set {inrset.pk} has no weights yet (status {inrset.status})")
        return _stored_file(request, inrset.weights, exports.download_name("inrset", inrset.pk, "weights.safetensors"))


class RunCheckpoint(DownloadView):
    """A succeeded SimCLR or supervised run's checkpoint: training.checkpoint's safetensors file (encoder and head
    weights, JSON config in its metadata); `training.checkpoint.load_encoder(path)` reads the encoder."""

    @extend_schema(responses=_FILE_RESPONSES)
    def get(self, request, pk: int):
        run = _succeeded_run(pk, "checkpoint.safetensors")
        artifact = run.artifact("checkpoint")
        if artifact is None:
            raise NotFound(f"run {run.pk} has no checkpoint")
        return _stored_file(request, artifact.file, exports.download_name("run", run.pk, "checkpoint.safetensors"))


class RunCheckpointConfig(DownloadView):
    """The JSON config stored in the run's checkpoint (kind, spec of the INRs it reads, encoder, training)."""

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT, 404: _FILE_RESPONSES[404]})
    def get(self, request, pk: int):
        run = _succeeded_run(pk, "config.json")
        try:
            config = exports.checkpoint_config(run)
        except LookupError as error:
            raise NotFound(str(error)) from None
        return _json_file(config, exports.download_name("run", run.pk, "config.json"))


class RunProbeResult(DownloadView):
    """A succeeded probe run's result: accuracy, per-class accuracy, confusion matrix, class names, baselines."""

    @extend_schema(responses={(200, "application/json"): OpenApiTypes.OBJECT, 404: _FILE_RESPONSES[404]})
    def get(self, request, pk: int):
        run = _succeeded_run(pk, "probe.json")
        return _json_file(exports.probe_result(run), exports.download_name("run", run.pk, "probe.json"))


class RunEmbedding(DownloadView):
    """A succeeded embedding run's map, one row per mapped INR (row, image, seed, label, class, split, encoder and
    raw-weight map positions, encoder features), as CSV (`embedding.csv`) or JSON (`embedding.json`)."""

    @extend_schema(responses={(200, "text/csv"): OpenApiTypes.STR, (200, "application/json"): OpenApiTypes.OBJECT,
                              404: _FILE_RESPONSES[404]})
    def get(self, request, pk: int, suffix: str):
        run = _succeeded_run(pk, f"embedding.{suffix}")
        try:
            table = exports.EmbeddingTable(run)
        except (LookupError, ValueError) as error:  # no artifact, or one that is not a map
            raise NotFound(str(error)) from None
        filename = exports.download_name("run", run.pk, f"embedding.{suffix}")
        if suffix == "json":
            return _json_file(table.as_json(), filename)
        # The table is in memory already (read from the artifact): one response, not a stream
        return _attachment(HttpResponse("".join(table.csv_lines()), content_type="text/csv; charset=utf-8"),
                           filename)
