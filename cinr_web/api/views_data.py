"""API views of datasets, images, INR sets and INR renders.

Permissions are stated on every view: logged-in users read (and upload images), staff start fits.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from cinr_web.api import rendering
from cinr_web.api.embed_serializers import RenderQuerySerializer
from cinr_web.api.permissions import IsStaff, ReadAuthenticatedWriteStaff
from cinr_web.api.renderers import PNGRenderer, json_errors
from cinr_web.api.serializers import (
    BuiltinImportSerializer,
    DatasetUploadSerializer,
    ImageDatasetSerializer,
    ImageSerializer,
    INRPageSerializer,
    INRSetCreateSerializer,
    INRSetSerializer,
)
from cinr_web.api.throttles import UploadThrottle
from cinr_web.api.weights import declared_length
from cinr_web.datasets import services as dataset_services
from cinr_web.datasets.models import Image, ImageDataset
from cinr_web.inrsets.models import INRSet
from training.sources import InvalidImages

# -- datasets -----------------------------------------------------------------------------------------------------


class DatasetList(generics.ListAPIView):
    """All image datasets, newest first."""

    permission_classes = [IsAuthenticated]
    serializer_class = ImageDatasetSerializer
    queryset = ImageDataset.objects.select_related("created_by").all()


class DatasetDetail(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = ImageDatasetSerializer
    queryset = ImageDataset.objects.select_related("created_by").all()


class DatasetUpload(APIView):
    """Creates a dataset from uploaded images (one label each) or from a zip of `<class>/<image>` folders.

    Atomic: on any bad file nothing is stored and the answer (400) names the file and the problem.
    """

    permission_classes = [IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser]
    throttle_classes = [UploadThrottle]

    @extend_schema(request={"multipart/form-data": DatasetUploadSerializer},
                   responses={201: ImageDatasetSerializer, 400: OpenApiResponse(description="bad upload"),
                              429: OpenApiResponse(description="throttled")})
    def post(self, request):
        limit = settings.CINR_MAX_UPLOAD_BYTES
        size = declared_length(request.META)
        if size > limit + 1024 * 1024:  # the files plus the form's own bytes; refused before the body is read
            raise ValidationError({"files": [f"the upload is {size} bytes; the limit is {limit} bytes"]})
        form = DatasetUploadSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        files = data["files"]
        labels = data.get("labels") or None
        if labels is not None and len(labels) == 1 and len(files) > 1:
            labels = labels[0]  # one class for every file
        try:
            dataset = dataset_services.import_upload(data["name"], files, labels=labels, user=request.user,
                                                     description=data["description"])
        except InvalidImages as err:
            raise ValidationError({"files": [str(err)]}) from None
        return Response(ImageDatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetImportBuiltin(APIView):
    """Imports a built-in dataset (digits, mnist5k); importing it again returns the existing one."""

    permission_classes = [IsStaff]

    @extend_schema(request=BuiltinImportSerializer, responses={201: ImageDatasetSerializer})
    def post(self, request):
        form = BuiltinImportSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            dataset = dataset_services.import_builtin(form.validated_data["name"], user=request.user)
        except InvalidImages as err:
            raise ValidationError({"name": [str(err)]}) from None
        return Response(ImageDatasetSerializer(dataset).data, status=status.HTTP_201_CREATED)


class DatasetImages(generics.ListAPIView):
    """The images of a dataset, paginated, with their labels, split and PNG URL."""

    permission_classes = [IsAuthenticated]
    serializer_class = ImageSerializer

    def get_queryset(self):
        dataset = get_object_or_404(ImageDataset, pk=self.kwargs["pk"])
        return Image.objects.filter(dataset=dataset).select_related("dataset").order_by("index")


class DatasetImagePNG(APIView):
    """One image of a dataset as stored (PNG)."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer, PNGRenderer]

    @extend_schema(responses={(200, "image/png"): OpenApiTypes.BINARY, 404: OpenApiResponse(description="none")})
    def get(self, request, pk: int, index: int):
        image = get_object_or_404(Image, dataset_id=pk, index=index)
        return FileResponse(image.file.open("rb"), content_type="image/png")

    def finalize_response(self, request, response, *args, **kwargs):
        return super().finalize_response(request, json_errors(request, response), *args, **kwargs)


# -- INR sets -----------------------------------------------------------------------------------------------------


class INRSetListCreate(generics.ListAPIView):
    """GET: all INR sets with their fit progress and PSNR statistics. POST (staff): fit a dataset (enqueues)."""

    permission_classes = [ReadAuthenticatedWriteStaff]
    serializer_class = INRSetSerializer
    queryset = INRSet.objects.select_related("dataset").all()

    @extend_schema(request=INRSetCreateSerializer, responses={201: INRSetSerializer})
    def post(self, request):
        form = INRSetCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        fit_config = dict(data.get("fit_config") or {})
        from cinr_web.inrsets import services as inrset_services  # imported late: it pulls in Celery tasks
        with transaction.atomic():
            try:
                inrset = inrset_services.start_fit(data["dataset"], data["spec"], fit_config,
                                                   data["seeds_per_image"], request.user, name=data["name"])
            except ValueError as err:  # settings the fit code refuses
                raise ValidationError({"fit_config": [str(err)]}) from None
        return Response(INRSetSerializer(inrset).data, status=status.HTTP_201_CREATED)


class INRSetDetail(generics.RetrieveAPIView):
    permission_classes = [IsAuthenticated]
    serializer_class = INRSetSerializer
    queryset = INRSet.objects.select_related("dataset").all()


def inr_rows(inrset: INRSet, start: int, stop: int):
    """(the INRs [start, stop) of a succeeded set as an INRDataset, how many INRs it holds). Only those rows of the
    weight file are read: a 100,000-INR set is hundreds of megabytes, a page of it a few kilobytes."""
    from cinr_web.inrsets.services import load_inr_rows  # imported late: it pulls in the fit services

    if inrset.status != "succeeded" or not inrset.weights:
        raise NotFound(f"INR set {inrset.pk} has no weights yet (status {inrset.status})")
    return load_inr_rows(inrset, start, stop)


def one_inr(inrset: INRSet, index: int):
    """INR `index` of a succeeded set as an INRDataset of one row; NotFound when the set has no such INR."""
    row, total = inr_rows(inrset, index, index + 1)
    if len(row) == 0:
        raise NotFound(f"INR index {index} is out of range: this set has {total} INRs (0..{total - 1})")
    return row


class INRSetINRs(APIView):
    """The INRs of a succeeded set, paginated: image index, seed, label, split, PSNR.

    INR i is image i // S with seed i % S (S = seeds per image).
    """

    permission_classes = [IsAuthenticated]

    @extend_schema(parameters=[OpenApiParameter("page", int), OpenApiParameter("page_size", int)],
                   responses={200: INRPageSerializer, 400: OpenApiResponse(description="bad page"),
                              404: OpenApiResponse(description="no such set, or no weights yet")})
    def get(self, request, pk: int):
        inrset = get_object_or_404(INRSet, pk=pk)
        try:
            page = int(request.query_params.get("page", 1))
            size = int(request.query_params.get("page_size", 100))
        except ValueError:
            raise ValidationError({"page": "page and page_size must be integers"}) from None
        if page < 1 or not 1 <= size <= 1000:
            raise ValidationError({"page": "page >= 1 and 1 <= page_size <= 1000"})
        start = (page - 1) * size
        data, total = inr_rows(inrset, start, start + size)
        names = list(data.class_names)
        rows = []
        for row in range(len(data)):
            label = int(data.labels[row])
            rows.append({"index": start + row, "image_index": int(data.image_index[row]), "seed": int(data.seed[row]),
                         "label": label, "class_name": names[label] if 0 <= label < len(names) else str(label),
                         "is_train": bool(data.is_train[row]), "psnr": float(data.psnr[row])})
        return Response({"count": total, "page": page, "results": rows})


class INRRender(APIView):
    """An INR of a succeeded set rendered to PNG at any size, optionally through weight-space augmentations."""

    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer, PNGRenderer]

    @extend_schema(parameters=[RenderQuerySerializer],
                   responses={(200, "image/png"): OpenApiTypes.BINARY,
                              400: OpenApiResponse(description="bad parameter"),
                              404: OpenApiResponse(description="no such INR set or INR")})
    def get(self, request, pk: int, index: int):
        query = RenderQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        options = query.to_options()
        inrset = get_object_or_404(INRSet.objects.select_related("dataset"), pk=pk)
        data = one_inr(inrset, index)
        png = rendering.render_png(data.spec, data.params, inrset.dataset.height, inrset.dataset.width, options)
        response = HttpResponse(png, content_type="image/png")
        response["Cache-Control"] = "private, max-age=3600"
        return response

    def finalize_response(self, request, response, *args, **kwargs):
        return super().finalize_response(request, json_errors(request, response), *args, **kwargs)
