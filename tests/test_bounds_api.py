"""The API bounds what it is sent before doing the work: spec sizes of weight files and JSON specs, JSON bodies (size
and nesting, also in form fields), and the size of every error body. Each input just over its bound gets a fast 400
with a short message, and nothing is stored."""

from __future__ import annotations

import json
import time

import pytest

import inr
from cinr_web.api.errors import MAX_ITEMS, bound_errors
from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import Artifact, MetricPoint, Run
from tests.api_support import TINY_SPEC, client_for
from tests.test_api_embed_errors import embed, weight_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def encoder(tiny_digits_dataset):
    """A succeeded SimCLR run row of a TINY_SPEC INR set (no artifacts: input checks come first)."""
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=TINY_SPEC.to_dict(), status="succeeded")
    return Run.objects.create(kind="simclr", status="succeeded", inrset=inrset)


def stored() -> tuple[int, int, int, int]:
    return INRSet.objects.count(), Run.objects.count(), Artifact.objects.count(), MetricPoint.objects.count()


def refused_quickly(call, *words: str, seconds: float = 5.0) -> dict:
    """call() -> a 400 within `seconds`, whose short JSON body holds every word; returns the body."""
    before = stored()
    started = time.perf_counter()
    response = call()
    elapsed = time.perf_counter() - started
    assert response.status_code == 400, (response.status_code, response.content[:300])
    assert elapsed < seconds, elapsed
    assert len(response.content) < 2000, len(response.content)
    text = response.content.decode()
    for word in words:
        assert word in text, (word, text)
    assert stored() == before
    return response.json()


def raw_weight_file(spec: dict, name: str = "claims.safetensors"):
    from django.core.files.uploadedfile import SimpleUploadedFile

    header = json.dumps({"__metadata__": {"format": "cinr.inr/1", "spec": json.dumps(spec)}}).encode()
    return SimpleUploadedFile(name, len(header).to_bytes(8, "little") + header, "application/octet-stream")


def test_it_refuses_a_weight_file_just_over_the_spec_limits(encoder, normal_user, settings):
    settings.CINR_MAX_SPEC_HIDDEN = 8  # TINY_SPEC's width: the encoder's own INRs still pass
    client = client_for(normal_user)
    assert embed(client, encoder, files=[weight_file()]).status_code == 409  # read and checked, then no checkpoint
    wider = inr.FieldSpec.siren(hidden=9, layers=3)
    refused_quickly(lambda: embed(client, encoder, files=[weight_file(wider)]), "hidden=9 is over the limit of 8")


def test_it_refuses_a_tiny_weight_file_claiming_millions_of_layers(encoder, normal_user):
    client = client_for(normal_user)
    for spec, words in [({"arch": "siren", "layers": 5_000_000}, "layers=5000000 is over the limit"),
                        ({"arch": "siren", "layers": 33}, "layers=33 is over the limit of 32"),
                        ({"arch": "mfn", "filters": 33}, "filters=33 is over the limit of 32"),
                        ({"arch": "siren", "out_dim": 5}, "out_dim=5 is over the limit of 4"),
                        ({"arch": "siren", "hidden": 1024, "layers": 3}, "parameters per INR is over the limit")]:
        refused_quickly(lambda spec=spec: embed(client, encoder, files=[raw_weight_file(spec)]), words)


def test_it_refuses_a_json_spec_just_over_the_limits(encoder, normal_user, settings):
    settings.CINR_MAX_SPEC_LAYERS = 3
    client = client_for(normal_user)
    body = {"inrs": [{"spec": {"arch": "siren", "hidden": 8, "layers": 4}, "params": {}}]}
    refused_quickly(lambda: embed(client, encoder, data=body), "layers=4 is over the limit of 3")
    body["inrs"][0]["spec"]["layers"] = 3  # at the limit: read on, refused for its (missing) weights instead
    message = json.dumps(embed(client, encoder, data=body).json())
    assert "missing" in message and "over the limit" not in message


def nested(depth: int) -> str:
    """{"inrs": ...} nested `depth` levels in all."""
    return '{"inrs": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


def test_it_refuses_json_bodies_nested_just_deeper_than_the_limit(encoder, normal_user, staff_user, settings):
    limit = settings.CINR_MAX_JSON_DEPTH
    client = client_for(normal_user)

    def post(body: str, url: str = f"/api/encoders/{encoder.pk}/embed", who=client):
        return who.post(url, body, content_type="application/json")

    at_limit = post(nested(limit))
    assert at_limit.status_code == 400 and "nested" not in at_limit.content.decode()  # parsed, then refused
    refused_quickly(lambda: post(nested(limit + 1)), f"nested {limit + 1} levels deep; the limit is {limit}")
    # deep enough to exhaust the decoder's recursion (a 500 before the bound), on the model API and elsewhere
    refused_quickly(lambda: post("[" * 200_000 + "]" * 200_000), "nested 200000 levels deep")
    staff = client_for(staff_user)
    refused_quickly(lambda: post("[" * 200_000, "/api/runs/", staff), "nested 200000 levels deep")
    refused_quickly(lambda: post('{"name": ' + "[" * 5000 + "}", "/api/datasets/import-builtin/", staff), "nested")


def test_it_refuses_json_nested_in_a_form_field(tiny_digits_dataset, staff_user, settings):
    client = client_for(staff_user)
    deep = "[" * 100_000 + "]" * 100_000
    refused_quickly(lambda: client.post("/api/inrsets/", {"dataset": tiny_digits_dataset.pk, "spec": deep},
                                        format="multipart"), "nested 100000 levels deep")


def test_it_refuses_a_json_body_just_over_its_size_limit(encoder, normal_user, settings):
    body = json.dumps({"inrs": [{"params": {"x": [0.5] * 50}}]})
    settings.CINR_MAX_JSON_BYTES = len(body)
    client = client_for(normal_user)
    within = client.post(f"/api/encoders/{encoder.pk}/embed", body, content_type="application/json")
    assert within.status_code == 400 and "over the limit" not in within.content.decode()
    refused_quickly(lambda: client.post(f"/api/encoders/{encoder.pk}/embed", body + " ",
                                        content_type="application/json"),
                    f"JSON body over the limit of {len(body)} bytes")


def test_it_refuses_a_new_inr_set_just_over_the_spec_limits_and_starts_nothing(tiny_digits_dataset, staff_user,
                                                                                 settings):
    settings.CINR_MAX_SPEC_HIDDEN = 16
    client = client_for(staff_user)
    refused_quickly(lambda: client.post("/api/inrsets/", {"dataset": tiny_digits_dataset.pk,
                                                          "spec": {"arch": "siren", "hidden": 17}}, format="json"),
                    "hidden=17 is over the limit of 16")


def test_it_bounds_every_error_body(encoder, normal_user, settings):
    settings.CINR_MAX_ERROR_CHARS = 120
    client = client_for(normal_user)
    body = {"inrs": [{"spec": {"arch": "x" * 50_000}, "params": {}}]}
    answer = refused_quickly(lambda: embed(client, encoder, data=body), "unknown architecture")
    assert all(len(message) <= 120 for message in answer["weights"]) and answer["weights"][0].endswith("...")
    many = bound_errors({f"field{i}": ["e" * 500] * 100 for i in range(50)})
    assert len(many) == MAX_ITEMS + 1 and len(many["field0"]) == MAX_ITEMS + 1
    assert len(many["field0"][0]) == 120 and many["field0"][-1] == f"... and {100 - MAX_ITEMS} more"
