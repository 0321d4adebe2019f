"""Serializers of the model API (POST /api/encoders/<id>/embed) and of the render endpoint's query.

They describe the request and response bodies for the OpenAPI schema and validate what they can declaratively;
the weights themselves are read by cinr_web.api.weights (safetensors or JSON arrays).
"""

from __future__ import annotations

from rest_framework import serializers

from cinr_web.api.rendering import MAX_RENDER_SIZE, RenderOptions


class EmbedUploadSerializer(serializers.Serializer):
    """multipart/form-data: one or many safetensors files, each one INR or a batch (as inr.save writes them)."""

    files = serializers.ListField(child=serializers.FileField(), help_text="INR weight files (safetensors).")


class JSONINRSerializer(serializers.Serializer):
    spec = serializers.JSONField(required=False, help_text="FieldSpec.to_dict(); default: the encoder's.")
    params = serializers.DictField(
        child=serializers.JSONField(),
        help_text="Parameter name -> nested array: the parameter's shape (one INR) or [B, *shape] (a batch).")


class EmbedJSONSerializer(serializers.Serializer):
    """application/json: INRs as nested arrays."""

    inrs = JSONINRSerializer(many=True)


class EmbeddingResultSerializer(serializers.Serializer):
    source = serializers.CharField(help_text="File name (and index within it) or inrs[i] the INR came from.")
    embedding = serializers.ListField(child=serializers.FloatField())
    predicted_class = serializers.CharField(allow_null=True)
    probabilities = serializers.DictField(child=serializers.FloatField(), help_text="Class name -> probability.")
    map_position = serializers.ListField(child=serializers.FloatField(), allow_null=True,
                                         help_text="[x, y] on the run's embedding map, null without a map.")


class EmbedResponseSerializer(serializers.Serializer):
    encoder = serializers.IntegerField()
    spec = serializers.JSONField()
    classifier = serializers.CharField(allow_null=True, help_text="'probe' (run id) or 'supervised head'.")
    results = EmbeddingResultSerializer(many=True)


class TranslateField(serializers.CharField):
    """"dr,dc": shift in coordinate units along (rows, columns)."""

    def to_internal_value(self, data) -> tuple[float, float]:
        text = super().to_internal_value(data)
        parts = text.split(",")
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            raise serializers.ValidationError("expected two numbers 'dr,dc', e.g. 0.1,-0.25") from None
        if len(values) != 2 or not all(-2.0 <= v <= 2.0 for v in values):
            raise serializers.ValidationError("expected two numbers 'dr,dc', each in [-2, 2]")
        return values  # type: ignore[return-value]


class RenderQuerySerializer(serializers.Serializer):
    size = serializers.IntegerField(required=False, min_value=1, max_value=MAX_RENDER_SIZE,
                                    help_text="Output height in pixels (the width keeps the aspect ratio).")
    rotate = serializers.FloatField(required=False, default=0.0, min_value=-360.0, max_value=360.0,
                                    help_text="Rotation in degrees (inr.rotate).")
    translate = TranslateField(required=False, help_text="'dr,dc' shift in coordinate units, default 0,0.")
    scale = serializers.FloatField(required=False, default=1.0, min_value=0.1, max_value=10.0,
                                   help_text="Zoom factor (inr.scale): g(x) = f(x / scale).")
    noise = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=2.0,
                                   help_text="Gaussian weight noise, std relative to each tensor's std.")
    dropout = serializers.FloatField(required=False, default=0.0, min_value=0.0, max_value=0.95,
                                     help_text="Probability of zeroing each weight.")
    permute = serializers.BooleanField(required=False, default=False,
                                       help_text="Random hidden-neuron permutation (the picture must not change).")
    augment = serializers.BooleanField(required=False, default=False,
                                       help_text="One random draw of the SimCLR augmentations (inr.random_augment).")
    seed = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2**31 - 1)
    spectrum = serializers.BooleanField(required=False, default=False,
                                        help_text="The centred log-magnitude spectrum of the render (Figure 2).")

    def to_options(self) -> RenderOptions:
        v = self.validated_data
        return RenderOptions(size=v.get("size"), rotate=v["rotate"], translate=tuple(v.get("translate", (0.0, 0.0))),
                             scale=v["scale"], noise=v["noise"], dropout=v["dropout"], permute=v["permute"],
                             augment=v["augment"], seed=v["seed"], spectrum=v["spectrum"])
