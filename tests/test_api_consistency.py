"""The API's paths and messages follow one rule (docs/api.md): paths end in "/" (the model API's old form without it
still works, a GET without it is redirected), and a file that is not a weight file is called that first."""

from __future__ import annotations

import os
import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from tests.api_support import TINY_SPEC, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def encoder(tiny_digits_dataset):
    """A succeeded SimCLR run row (no artifacts needed: the weights are checked before the encoder is loaded)."""
    from cinr_web.inrsets.models import INRSet
    from cinr_web.runs.models import Run

    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=TINY_SPEC.to_dict(), status="succeeded")
    return Run.objects.create(kind="simclr", status="succeeded", inrset=inrset)


def test_it_answers_the_model_api_with_and_without_the_trailing_slash(encoder, normal_user):
    client = client_for(normal_user)
    noise_bytes = bytes(random.Random(7).randrange(256) for _ in range(4096))
    assert noise_bytes[8:9] != b"{"  # random bytes, not a header that happens to start like one
    for path in (f"/api/encoders/{encoder.pk}/embed/", f"/api/encoders/{encoder.pk}/embed"):
        noise = SimpleUploadedFile("noise.bin", noise_bytes, "application/octet-stream")
        response = client.post(path, {"files": [noise]}, format="multipart")
        assert response.status_code == 400 and response["Content-Type"] == "application/json", path
        message = response.json()["weights"][0]
        assert message.startswith("noise.bin: not a safetensors file"), message


def test_it_redirects_a_path_without_the_trailing_slash_keeping_the_method(normal_user, staff_user):
    response = client_for(normal_user).get("/api/runs?kind=probe")
    assert response.status_code == 308 and response["Location"] == "/api/runs/?kind=probe"
    # 308, not 301: a client repeats the POST (a 301 turns it into a GET, which would list runs instead)
    response = client_for(staff_user).post("/api/runs", {"kind": "probe"}, format="json")
    assert response.status_code == 308 and response["Location"] == "/api/runs/"
    followed = client_for(staff_user).post("/api/runs", {"kind": "probe"}, format="json", follow=True)
    assert followed.status_code == 400 and "inrset" in followed.json()  # the POST reached the create view


def test_it_lists_the_model_api_once_in_the_schema():
    from drf_spectacular.generators import SchemaGenerator

    paths = [p for p in SchemaGenerator().get_schema(public=True)["paths"] if p.startswith("/api/encoders/{id}/embed")]
    assert paths == ["/api/encoders/{id}/embed/"]


def test_it_imports_the_project_from_outside_the_checkout(tmp_path):
    """The documented examples (`import inr`, `from training...`) run anywhere with the project's Python: the Makefile's
    venv target installs the project into it (pip install -e .)."""
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    found = subprocess.run([sys.executable, "-c", "import inr, training.checkpoint; print(inr.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert found.returncode == 0, found.stderr[-500:]
    assert Path(found.stdout.strip()).parent == Path(__file__).resolve().parent.parent / "inr"
