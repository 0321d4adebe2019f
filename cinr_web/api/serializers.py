"""Serializers of the REST API's resources: datasets and images, INR sets, runs, metric points, encoders."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

import inr
from cinr_web.bounds import check_json_depth, spec_limits
from cinr_web.datasets.models import Image, ImageDataset
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.defaults import FIT as FIT_DEFAULTS
from cinr_web.runs.defaults import SHARED_INIT_HELP, fit_spec
from cinr_web.runs.exports import ARTIFACT_FILES, run_files
from cinr_web.runs.models import Artifact, MetricPoint, Run
from inr.io import spec_from_dict

BUILTIN_DATASETS = ("digits", "mnist5k")
TRAINING_KINDS = ("simclr", "supervised", "probe", "embedding")


class ImageDatasetSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = ImageDataset
        fields = ["id", "name", "description", "source", "channels", "height", "width", "class_names",
                  "num_images", "created_by", "created_at"]
        read_only_fields = fields


class ImageSerializer(serializers.ModelSerializer):
    class_name = serializers.CharField(read_only=True)
    url = serializers.SerializerMethodField()

    class Meta:
        model = Image
        fields = ["index", "label", "class_name", "split", "url"]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_url(self, image: Image) -> str:
        """The PNG through the API (authenticated), whatever the storage."""
        return f"/api/datasets/{image.dataset_id}/images/{image.index}/image.png"


class DatasetUploadSerializer(serializers.Serializer):
    """multipart/form-data: a zip of `<class>/<image>` files, or images with one label each."""

    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    files = serializers.ListField(child=serializers.FileField(), allow_empty=False,
                                  help_text="One zip archive (root/<class>/<image>) or one or more images.")
    labels = serializers.ListField(child=serializers.CharField(max_length=100), required=False,
                                   help_text="Class name of each image in the order of `files`, or one for all "
                                             "(default \"unlabelled\"); not with a zip.")

    def validate_name(self, value: str) -> str:
        if ImageDataset.objects.filter(name=value).exists():
            raise serializers.ValidationError(f"a dataset named {value!r} already exists")
        return value

    def validate_files(self, files: list) -> list:
        limit = settings.CINR_MAX_UPLOAD_BYTES
        total = sum(f.size for f in files)
        if total > limit:
            raise serializers.ValidationError(f"the upload is {total} bytes; the limit is {limit} bytes")
        return files

    def validate(self, attrs: dict) -> dict:
        files, labels = attrs["files"], attrs.get("labels")
        is_zip = len(files) == 1 and files[0].name.lower().endswith(".zip")
        if is_zip and labels:
            raise serializers.ValidationError({"labels": "a zip carries its labels in its folder names"})
        if labels and len(labels) not in (1, len(files)):
            raise serializers.ValidationError(
                {"labels": f"got {len(labels)} labels for {len(files)} files: give one per file, or one for all"})
        return attrs


class BuiltinImportSerializer(serializers.Serializer):
    name = serializers.ChoiceField(choices=BUILTIN_DATASETS)


class BoundedJSONField(serializers.JSONField):
    """A JSONField whose text (a form field's value) is checked for nesting depth before it is decoded."""

    def to_internal_value(self, data):
        if isinstance(data, str | bytes):
            try:
                check_json_depth(data, self.field_name or "JSON")
            except ValueError as err:
                raise serializers.ValidationError(str(err)) from None
        return super().to_internal_value(data)


class SpecField(BoundedJSONField):
    """An inr.FieldSpec as its dict, e.g. {"arch": "siren", "hidden": 32, "layers": 3}, within the settings' limits."""

    def to_internal_value(self, data) -> dict:
        data = super().to_internal_value(data)
        if not isinstance(data, dict):
            raise serializers.ValidationError("expected an object such as {\"arch\": \"siren\"}")
        try:
            spec = spec_from_dict(data, spec_limits()).to_dict()
        except inr.InvalidWeights as err:
            raise serializers.ValidationError(f"not a valid architecture: {err}") from None
        if spec["arch"] == "mfn" and "input_scale" not in data:
            spec["input_scale"] = None  # left out: the service's for the dataset's images (INRSetCreateSerializer)
        return spec


class FitConfigSerializer(serializers.Serializer):
    steps = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=100000)
    lr = serializers.FloatField(required=False, allow_null=True, min_value=1e-7, max_value=1.0)
    anti_alias = serializers.BooleanField(required=False, allow_null=True, default=None,
                                          help_text="MFN only: band limit clamped to Nyquist; left out: on for an "
                                                    "MFN (the preset's), off for a SIREN")
    shared_init = serializers.BooleanField(required=False, default=FIT_DEFAULTS["shared_init"],
                                           help_text=SHARED_INIT_HELP)


class INRSetSerializer(serializers.ModelSerializer):
    dataset_name = serializers.CharField(source="dataset.name", read_only=True)
    progress = serializers.SerializerMethodField()
    fit_run = serializers.SerializerMethodField()
    weights_url = serializers.SerializerMethodField()

    class Meta:
        model = INRSet
        fields = ["id", "name", "dataset", "dataset_name", "spec", "fit_config", "seeds_per_image", "status",
                  "progress", "fit_run", "num_inrs", "psnr_mean", "psnr_min", "psnr_max", "psnr_histogram",
                  "weights_url", "created_at"]
        read_only_fields = fields

    @extend_schema_field({"type": "string", "nullable": True})
    def get_weights_url(self, inrset: INRSet) -> str | None:
        """Where its weights download (safetensors); null until the fit has written them."""
        return f"/api/inrsets/{inrset.pk}/weights.safetensors" if inrset.weights else None

    @extend_schema_field(OpenApiTypes.FLOAT)
    def get_progress(self, inrset: INRSet) -> float:
        run = inrset.fit_run
        if run is not None:
            return float(run.progress)
        return 1.0 if inrset.status == "succeeded" else 0.0

    @extend_schema_field(OpenApiTypes.INT)
    def get_fit_run(self, inrset: INRSet) -> int | None:
        run = inrset.fit_run
        return run.pk if run is not None else None


class INRSetCreateSerializer(serializers.Serializer):
    dataset = serializers.PrimaryKeyRelatedField(queryset=ImageDataset.objects.all())
    spec = SpecField(help_text="inr.FieldSpec as a dict, e.g. {\"arch\": \"siren\", \"hidden\": 32, \"layers\": 3}; "
                               "an MFN without input_scale gets the service's (1.5 for grey images, 3.46 for colour).")
    fit_config = FitConfigSerializer(required=False)
    seeds_per_image = serializers.IntegerField(min_value=1, max_value=64, default=FIT_DEFAULTS["seeds_per_image"])
    name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")

    def validate(self, attrs: dict) -> dict:
        dataset = attrs["dataset"]
        if attrs["spec"].get("input_scale", 0) is None:
            # an MFN that names no input_scale: the service's for the dataset's images, as the admin's form and the
            # fit command give it
            attrs["spec"] = {**attrs["spec"], "input_scale": fit_spec("mfn", dataset.channels).input_scale}
        spec = inr.FieldSpec.from_dict(attrs["spec"])
        if spec.out_dim != dataset.channels:
            raise serializers.ValidationError(
                {"spec": f"out_dim {spec.out_dim} does not match the dataset's {dataset.channels} channel(s)"})
        return attrs


class INRSummarySerializer(serializers.Serializer):
    index = serializers.IntegerField()
    image_index = serializers.IntegerField()
    seed = serializers.IntegerField()
    label = serializers.IntegerField()
    class_name = serializers.CharField()
    is_train = serializers.BooleanField()
    psnr = serializers.FloatField()


class INRPageSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    page = serializers.IntegerField()
    results = INRSummarySerializer(many=True)


class RunSerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    downloads = serializers.SerializerMethodField()

    class Meta:
        model = Run
        fields = ["id", "kind", "status", "config", "inrset", "parent", "error", "created_by", "created_at",
                  "started_at", "finished_at", "heartbeat_at", "progress", "cancel_requested", "result", "downloads"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_downloads(self, run: Run) -> dict[str, str]:
        """{file name: URL path} of what the run offers for download (docs/api.md, Downloads)."""
        return {name: f"/api/runs/{run.pk}/{name}" for name in run_files(run)}


class RunCreateSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=TRAINING_KINDS)
    inrset = serializers.PrimaryKeyRelatedField(queryset=INRSet.objects.all())
    config = BoundedJSONField(required=False, default=dict,
                              help_text="simclr / supervised: training.simclr.SimCLRConfig / "
                                        "training.supervised.SupervisedConfig fields; probe: max_seconds; "
                                        "embedding: seed, max_points, max_seconds.")
    parent = serializers.PrimaryKeyRelatedField(
        queryset=Run.objects.all(), required=False, allow_null=True,
        help_text="probe / embedding: the encoder run whose features they use (none: the raw weights). Any run: "
                  "waits for this run to succeed first. Default for simclr / supervised: the set's unfinished fit.")

    def validate_config(self, value) -> dict:
        if not isinstance(value, dict):
            raise serializers.ValidationError("expected an object")
        return value

    def validate(self, attrs: dict) -> dict:
        inrset, parent = attrs["inrset"], attrs.get("parent")
        if inrset.status in ("failed", "cancelled"):
            raise serializers.ValidationError({"inrset": f"INR set {inrset.pk} is {inrset.status}; fit it again"})
        if parent is not None and parent.status in ("failed", "cancelled"):
            raise serializers.ValidationError({"parent": f"run {parent.pk} is {parent.status}"})
        if parent is not None and parent.inrset_id != inrset.pk:
            raise serializers.ValidationError({"parent": f"run {parent.pk} belongs to another INR set"})
        if parent is None and inrset.status != "succeeded":
            fit = inrset.fit_run
            if attrs["kind"] in ("probe", "embedding") or fit is None:
                raise serializers.ValidationError({"inrset": f"INR set {inrset.pk} is {inrset.status}; give a "
                                                             "parent run to wait for, or wait for the fit"})
            attrs["parent"] = fit  # train as soon as the fit succeeds
        return attrs


class MetricPointSerializer(serializers.ModelSerializer):
    class Meta:
        model = MetricPoint
        fields = ["step", "name", "value", "time"]
        read_only_fields = fields


class ArtifactSerializer(serializers.ModelSerializer):
    downloads = serializers.SerializerMethodField()

    class Meta:
        model = Artifact
        fields = ["id", "kind", "meta", "downloads", "created_at"]
        read_only_fields = fields

    @extend_schema_field({"type": "object", "additionalProperties": {"type": "string"}})
    def get_downloads(self, artifact: Artifact) -> dict[str, str]:
        """{file name: URL path} of the downloads made from this artifact (docs/api.md, Downloads)."""
        return {name: f"/api/runs/{artifact.run_id}/{name}" for name in ARTIFACT_FILES.get(artifact.kind, {})}


class EncoderSerializer(serializers.ModelSerializer):
    """A succeeded SimCLR or supervised run: its encoder can embed INRs of its INR set's architecture."""

    spec = serializers.JSONField(source="inrset.spec", read_only=True)
    class_names = serializers.JSONField(source="inrset.dataset.class_names", read_only=True)
    dataset_name = serializers.CharField(source="inrset.dataset.name", read_only=True)

    class Meta:
        model = Run
        fields = ["id", "kind", "inrset", "dataset_name", "spec", "class_names", "config", "result", "created_at",
                  "finished_at"]
        read_only_fields = fields


class TokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    username = serializers.CharField()
