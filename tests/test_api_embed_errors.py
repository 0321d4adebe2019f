"""The model API refuses what it cannot use (HTTP 400 naming the problem, nothing stored), checks permissions and
throttles. The happy path, with a really trained encoder, is tests/test_api_embed.py."""

from __future__ import annotations

import io
import json
import struct

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

import inr
from cinr_web.runs.models import Artifact, MetricPoint, Run
from tests.api_support import TINY_SPEC, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def encoder(tiny_digits_dataset):
    """A succeeded SimCLR run row of a TINY_SPEC INR set (no artifacts needed: input checks come first)."""
    from cinr_web.inrsets.models import INRSet

    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=TINY_SPEC.to_dict(), status="succeeded")
    return Run.objects.create(kind="simclr", status="succeeded", inrset=inrset)


def weight_file(spec=TINY_SPEC, batch=1, name="inr.safetensors", nan_in=None) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, batch))
    data = bytearray(buffer.getvalue())
    if nan_in is not None:  # inr.save refuses NaN, so poison the stored bytes
        header_len = struct.unpack("<Q", data[:8])[0]
        start = json.loads(data[8:8 + header_len])[nan_in]["data_offsets"][0] + 8 + header_len
        data[start:start + 4] = struct.pack("<f", float("nan"))
    return SimpleUploadedFile(name, bytes(data), "application/octet-stream")


def embed(client, run, files=None, data=None, **kwargs):
    url = f"/api/encoders/{run.pk}/embed"
    if files is not None:
        return client.post(url, {"files": files}, format="multipart")
    if data is not None:
        return client.post(url, data, format="json")
    return client.post(url, **kwargs)


def stored_rows() -> tuple[int, int, int]:
    return Run.objects.count(), Artifact.objects.count(), MetricPoint.objects.count()


def assert_refused(response, *words):
    assert response.status_code == 400, (response.status_code, response.content[:300])
    message = json.dumps(response.json())
    for word in words:
        assert word.lower() in message.lower(), (word, message)


def test_it_refuses_anonymous_users_and_unknown_encoders(encoder, normal_user):
    assert embed(client_for(), encoder, files=[weight_file()]).status_code in (401, 403)
    client = client_for(normal_user)
    assert client.post("/api/encoders/999999/embed", {}, format="json").status_code == 404
    running = Run.objects.create(kind="simclr", status="running", inrset=encoder.inrset)
    probe = Run.objects.create(kind="probe", status="succeeded", inrset=encoder.inrset)
    assert embed(client, running, files=[weight_file()]).status_code == 404  # not (yet) an encoder
    assert embed(client, probe, files=[weight_file()]).status_code == 404
    assert client.get(f"/api/encoders/{encoder.pk}/embed").status_code == 405


def test_it_names_the_architecture_mismatch(encoder, normal_user):
    client = client_for(normal_user)
    before = stored_rows()
    wider = inr.FieldSpec.siren(hidden=16, layers=3)
    assert_refused(embed(client, encoder, files=[weight_file(wider)]), "architecture mismatch", "hidden=16",
                   "expected 8")
    assert_refused(embed(client, encoder, files=[weight_file(inr.FieldSpec.mfn(hidden=8))]), "architecture mismatch",
                   "mfn")
    assert_refused(embed(client, encoder, files=[weight_file(), weight_file(wider, name="b.safetensors")]),
                   "b.safetensors", "differs")
    assert stored_rows() == before


def test_it_refuses_malformed_nan_and_oversize_files(encoder, normal_user, monkeypatch):
    client = client_for(normal_user)
    before = stored_rows()
    assert_refused(embed(client, encoder, files=[SimpleUploadedFile("junk.safetensors", b"\x00" * 64)]),
                   "junk.safetensors")
    assert_refused(embed(client, encoder, files=[SimpleUploadedFile("pickle.pt", b"\x80\x04\x95" + b"x" * 50)]),
                   "pickle.pt")
    assert_refused(embed(client, encoder, files=[weight_file(nan_in="layer1.weight", name="nan.safetensors")]),
                   "nan.safetensors", "NaN")
    from cinr_web.api import weights

    monkeypatch.setattr(weights, "MAX_FILE_BYTES", 100)
    assert_refused(embed(client, encoder, files=[weight_file(name="big.safetensors")]), "big.safetensors", "limit")
    monkeypatch.setattr(weights, "MAX_FILE_BYTES", 8 << 20)
    monkeypatch.setattr(weights, "MAX_INRS_PER_REQUEST", 3)
    assert_refused(embed(client, encoder, files=[weight_file(batch=4)]), "too many INRs")
    assert_refused(embed(client, encoder, files=[]), "no weight files")
    monkeypatch.setattr(weights, "MAX_REQUEST_BYTES", 1000)
    assert_refused(embed(client, encoder, files=[weight_file(batch=8)]), "request body", "limit")
    assert stored_rows() == before


def test_it_refuses_bad_json_and_wrong_content_types(encoder, normal_user):
    client = client_for(normal_user)
    before = stored_rows()
    good = {name: t[0].tolist() for name, t in inr.init(TINY_SPEC, 1).items()}
    nan = dict(good, **{"layer2.bias": [float("nan")]})
    with_nan = client.generic("POST", f"/api/encoders/{encoder.pk}/embed", json.dumps({"inrs": [{"params": nan}]}),
                              content_type="application/json")  # Python writes NaN; strict JSON has no NaN
    assert with_nan.status_code == 400 and "NaN" in with_nan.json()["detail"]
    assert_refused(embed(client, encoder, data={"inrs": [{"params": dict(good, **{"layer0.bias": [1.0] * 3})}]}),
                   "layer0.bias", "shape")
    assert_refused(embed(client, encoder, data={"inrs": [{"params": {"w": [1]}}]}), "missing")
    assert_refused(embed(client, encoder, data={"inrs": [{"spec": {"arch": "siren", "hidden": 16},
                                                           "params": good}]}), "inrs[0]")
    assert_refused(embed(client, encoder, data={"weights": []}), "inrs")
    assert_refused(embed(client, encoder, data={"inrs": []}), "no INR")
    assert_refused(embed(client, encoder, data=[1, 2, 3]), "inrs")
    broken = client.generic("POST", f"/api/encoders/{encoder.pk}/embed", "{not json",
                            content_type="application/json")
    assert broken.status_code == 400 and "JSON" in broken.json()["detail"]
    text = client.generic("POST", f"/api/encoders/{encoder.pk}/embed", "hello", content_type="text/plain")
    assert_refused(text, "unsupported content type", "text/plain")
    assert stored_rows() == before


def test_it_answers_409_when_the_encoders_checkpoint_is_missing(encoder, normal_user):
    response = embed(client_for(normal_user), encoder, files=[weight_file()])
    assert response.status_code == 409 and "checkpoint" in response.json()["detail"]


def test_it_throttles_the_model_api(encoder, normal_user, staff_user, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"embed": "3/minute"}}
    import redis

    # Earlier tests' users may have had this user's id (SQLite reuses ids after a rollback): start from no counts.
    server, prefix = redis.Redis.from_url(settings.REDIS_URL), settings.CACHES["default"]["KEY_PREFIX"]
    for key in server.scan_iter(match=f"{prefix}:*"):
        server.delete(key)
    client = client_for(normal_user)
    codes = [embed(client, encoder, data={"inrs": []}).status_code for _ in range(4)]
    assert codes == [400, 400, 400, 429]
    throttled = embed(client, encoder, data={"inrs": []})
    assert throttled.status_code == 429 and int(throttled["Retry-After"]) > 0
    # per user: another user is not throttled by the first one's calls
    assert embed(client_for(staff_user), encoder, data={"inrs": []}).status_code == 400
    assert client.get("/api/encoders/").status_code == 200  # only the model API is throttled
    # The counts are in Redis, under this session's prefix, so every web process of a deployment shares them.
    assert len(server.keys(f"{prefix}:*:throttle_embed_{normal_user.pk}")) == 1
