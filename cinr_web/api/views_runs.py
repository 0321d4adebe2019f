"""API views of runs, metric history, encoders, the model API (embed) and the user's API token.

Permissions are stated on every view: logged-in users read and embed, staff start and cancel training.
"""

from __future__ import annotations

import time

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from cinr_web.api import inference, weights
from cinr_web.api.embed_serializers import EmbedJSONSerializer, EmbedResponseSerializer, EmbedUploadSerializer
from cinr_web.api.parsers import BoundedJSONParser
from cinr_web.api.permissions import IsStaff, ReadAuthenticatedWriteStaff
from cinr_web.api.serializers import (
    ArtifactSerializer,
    EncoderSerializer,
    MetricPointSerializer,
    RunCreateSerializer,
    RunSerializer,
    TokenSerializer,
)
from cinr_web.api.throttles import EmbedThrottle
from cinr_web.runs.models import MetricPoint, Run

RUN_KINDS = [k for k, _ in Run.Kind.choices]
MAX_ID = 2**63 - 1  # the largest primary key (BigAutoField)
RUN_STATUSES = [s for s, _ in Run.Status.choices]

# -- runs ---------------------------------------------------------------------------------------------------------


class RunListCreate(generics.ListAPIView):
    """GET: runs, newest first, filtered by kind, status, inrset or parent. POST (staff): start a run (enqueues)."""

    permission_classes = [ReadAuthenticatedWriteStaff]
    serializer_class = RunSerializer

    @extend_schema(parameters=[OpenApiParameter("kind", str, enum=RUN_KINDS),
                               OpenApiParameter("status", str, enum=RUN_STATUSES),
                               OpenApiParameter("inrset", int), OpenApiParameter("parent", int)])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        runs = Run.objects.select_related("created_by").all()
        query = self.request.query_params
        if "kind" in query:
            if query["kind"] not in RUN_KINDS:
                raise ValidationError({"kind": f"expected one of {RUN_KINDS}"})
            runs = runs.filter(kind=query["kind"])
        if "status" in query:
            if query["status"] not in RUN_STATUSES:
                raise ValidationError({"status": f"expected one of {RUN_STATUSES}"})
            runs = runs.filter(status=query["status"])
        for field in ("inrset", "parent"):
            if field in query:  # bounded: a database compares 64-bit integers at most (SQLite raises beyond)
                runs = runs.filter(**{f"{field}_id": _int_param(query, field, 1, MAX_ID)})
        return runs

    @extend_schema(request=RunCreateSerializer, responses={201: RunSerializer})
    def post(self, request):
        form = RunCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        from cinr_web.runs import services as run_services  # imported late: it pulls in Celery tasks

        try:
            with transaction.atomic():
                run = run_services.start_run(data["kind"], data["inrset"], data["config"], request.user,
                                             parent=data.get("parent"))
        except (TypeError, ValueError) as err:  # a config the training code rejects
            raise ValidationError({"config": [str(err)]}) from None
        return Response(RunSerializer(run).data, status=status.HTTP_201_CREATED)


def _int_param(query, name: str, minimum: int, maximum: int) -> int:
    text = query[name].strip()
    if len(text) > 20:  # refused before int() reads thousands of digits
        raise ValidationError({name: f"expected an integer in [{minimum}, {maximum}]"})
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise ValidationError({name: "expected an integer"}) from None
    if not minimum <= value <= maximum:
        raise ValidationError({name: f"expected an integer in [{minimum}, {maximum}]"})
    return value


class RunDetail(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = RunSerializer
    queryset = Run.objects.select_related("created_by").all()


class RunCancel(APIView):
    """Staff: asks the run to stop (cooperative: the worker stops within a step); a queued run is cancelled at once."""

    permission_classes = [IsStaff]

    @extend_schema(request=None, responses={200: RunSerializer, 400: OpenApiResponse(description="finished")})
    def post(self, request, pk: int):
        run = get_object_or_404(Run, pk=pk)
        if run.is_finished:
            raise ValidationError({"status": f"run {run.pk} is already {run.status}"})
        from cinr_web.runs import services as run_services
        run_services.cancel_run(run)
        run.refresh_from_db()
        return Response(RunSerializer(run).data)


class RunMetrics(generics.ListAPIView):
    """The metric history of a run, paginated, ordered by name then step; `name` and `after` (step) filter it."""

    permission_classes = [IsAuthenticated]
    serializer_class = MetricPointSerializer

    @extend_schema(parameters=[OpenApiParameter("name", str), OpenApiParameter("after", int,
                                                                               description="steps > after only")])
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        run = get_object_or_404(Run, pk=self.kwargs["pk"])
        points = MetricPoint.objects.filter(run=run)
        query = self.request.query_params
        if "name" in query:
            points = points.filter(name=query["name"])
        if "after" in query:
            points = points.filter(step__gt=_int_param(query, "after", -2**31, 2**31 - 1))
        return points.order_by("name", "step", "id")


class RunArtifacts(generics.ListAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = ArtifactSerializer
    pagination_class = None

    def get_queryset(self):
        run = get_object_or_404(Run, pk=self.kwargs["pk"])
        return run.artifacts.order_by("id")


# -- encoders and the model API ---------------------------------------------------------------------------------------


def encoder_runs():
    return (Run.objects.filter(kind__in=[Run.Kind.SIMCLR, Run.Kind.SUPERVISED], status=Run.Status.SUCCEEDED)
            .select_related("inrset", "inrset__dataset"))


class EncoderList(generics.ListAPIView):
    """Succeeded SimCLR and supervised runs: encoders the model API can use."""

    permission_classes = [IsAuthenticated]
    serializer_class = EncoderSerializer

    def get_queryset(self):
        return encoder_runs()


class EncoderDetail(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = EncoderSerializer

    def get_queryset(self):
        return encoder_runs()


class EncoderEmbed(APIView):
    """The model API: INR weights in; per INR its embedding, predicted class, class probabilities and map position.

    Send safetensors files (multipart field `files`, each one INR or a batch, as `inr.save` writes them) or JSON
    `{"inrs": [{"spec": {...}, "params": {name: array}}]}`. Weights that do not fit the encoder's architecture, are
    malformed, hold NaN/inf or are too large are refused (400) with a message naming the problem; nothing is stored.
    """

    permission_classes = [IsAuthenticated]
    throttle_classes = [EmbedThrottle]
    parser_classes = [MultiPartParser, BoundedJSONParser]

    @extend_schema(request={"multipart/form-data": EmbedUploadSerializer, "application/json": EmbedJSONSerializer},
                   responses={200: EmbedResponseSerializer, 400: OpenApiResponse(description="bad weights"),
                              404: OpenApiResponse(description="no such encoder"),
                              409: OpenApiResponse(description="the encoder's artifacts are missing"),
                              429: OpenApiResponse(description="throttled")})
    def post(self, request, pk: int):
        started = time.perf_counter()
        run = get_object_or_404(encoder_runs(), pk=pk)
        spec = run.inrset.field_spec  # the encoder reads INRs of its INR set's architecture
        try:
            size = weights.declared_length(request.META)
            if size > weights.MAX_REQUEST_BYTES:  # refused before the body is read
                raise weights.BadWeights(f"the request body is {size} bytes; the limit is "
                                         f"{weights.MAX_REQUEST_BYTES} bytes")
            batch = self._read(request, spec)
            weights.require_spec(batch, spec)
        except weights.BadWeights as err:
            raise ValidationError({"weights": [str(err)]}) from None
        read = time.perf_counter()
        try:
            model = inference.load_encoder(run)
        except inference.EncoderUnavailable as err:
            return Response({"detail": str(err)}, status=status.HTTP_409_CONFLICT)
        loaded = time.perf_counter()
        results = model.embed(batch.params)
        for item, source in zip(results, batch.sources, strict=True):
            item["source"] = source
        response = Response({"encoder": run.pk, "spec": spec.to_dict(), "classifier": model.classifier,
                             "results": results})
        # Where the server's time went (ms), for clients and bench/api.py: reading and checking the weights,
        # loading the model (0 when cached), and the model itself (encoder, classifier, map).
        response["Server-Timing"] = (f"read;dur={1000 * (read - started):.2f}, load;dur={1000 * (loaded - read):.2f}, "
                                     f"model;dur={1000 * (time.perf_counter() - loaded):.2f}")
        return response

    def _read(self, request, default_spec) -> weights.WeightBatch:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        if content_type == "application/json":
            body = request.data
            if not isinstance(body, dict) or not isinstance(body.get("inrs"), list):
                raise weights.BadWeights("expected a JSON object {\"inrs\": [{\"params\": {...}}, ...]}")
            if len(body["inrs"]) > weights.MAX_INRS_PER_REQUEST:
                raise weights.BadWeights(f"too many INRs: the limit is {weights.MAX_INRS_PER_REQUEST}")
            return weights.read_weight_json(body["inrs"], default_spec)
        if content_type == "multipart/form-data":
            files = request.FILES.getlist("files")
            if not files:
                raise weights.BadWeights("no weight files: send them in the multipart field \"files\"")
            if len(files) > weights.MAX_FILES_PER_REQUEST:
                raise weights.BadWeights(f"{len(files)} files: the limit is {weights.MAX_FILES_PER_REQUEST} per "
                                         "request")
            batches = [weights.read_weight_file(f.name, _read_bounded(f)) for f in files]
            return weights.concatenate([b.spec for b in batches], [b.params for b in batches],
                                       [s for b in batches for s in b.sources])
        raise weights.BadWeights(f"unsupported content type {content_type or 'none'!r}: send multipart/form-data "
                                 "with safetensors files or application/json")


@extend_schema(exclude=True)  # the schema lists the canonical `embed/` once
class EncoderEmbedNoSlash(EncoderEmbed):
    """`POST /api/encoders/<id>/embed` without the trailing slash, as documented before: the same model API."""


def _read_bounded(upload) -> bytes:
    if upload.size is not None and upload.size > weights.MAX_FILE_BYTES:
        raise weights.BadWeights(f"{upload.name}: {upload.size} bytes is over the limit of {weights.MAX_FILE_BYTES} "
                                 "bytes per weight file")
    upload.seek(0)
    return upload.read(weights.MAX_FILE_BYTES + 1)


# -- token --------------------------------------------------------------------------------------------------------


class MyToken(APIView):
    """GET: the logged-in user's API token (created on first use). Scripts send it as `Authorization: Token <key>`."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=TokenSerializer)
    def get(self, request):
        token, _ = Token.objects.get_or_create(user=request.user)
        return Response({"token": token.key, "username": request.user.get_username()})

    @extend_schema(request=None, responses=TokenSerializer)
    def post(self, request):
        """Replaces the token (the old one stops working)."""
        Token.objects.filter(user=request.user).delete()
        token = Token.objects.create(user=request.user)
        return Response({"token": token.key, "username": request.user.get_username()})
