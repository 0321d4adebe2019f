"""Downloads (docs/api.md, Downloads): INR set weights, checkpoints and their configs, probe results, embedding maps,
for a token and for a browser session; the documented example that fetches an encoder and uses it offline runs
against a live server. The chain is trained for real by a Celery worker."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest
import torch
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

import inr
from tests.api_support import fitted_inrset

pytestmark = pytest.mark.django_db(transaction=True)

SMALL_ENCODER = {"d_node": 16, "d_edge": 8, "d_attn": 16, "heads": 2, "layers": 1, "d_ff": 32, "feature_dim": 12}
DOCS = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def filename(response) -> str:
    match = re.fullmatch(r'attachment; filename="([^"]+)"', response["Content-Disposition"])
    assert match, response["Content-Disposition"]
    return match.group(1)


@pytest.fixture
def chain(celery_worker, tiny_digits_dataset, staff_user, wait_for_run):
    """A fitted INR set, and SimCLR -> linear probe -> embedding map on it, run by the worker."""
    from cinr_web.runs.services import start_chain

    inrset = fitted_inrset(tiny_digits_dataset)
    simclr, probe, embedding = start_chain(inrset, encoder_config={"encoder": SMALL_ENCODER, "steps": 6,
                                                                   "batch_size": 16},
                                           embedding_config={"seed": 0}, user=staff_user)
    for run in (simclr, probe, embedding):
        finished = wait_for_run(run, timeout=240)
        assert finished.status == "succeeded", (finished.kind, finished.error)
    return {"inrset": inrset, "simclr": simclr, "probe": probe, "embedding": embedding}


def documented_example() -> str:
    """The Python block of docs/api.md's Downloads section."""
    section = DOCS.read_text().split("### Downloads", 1)[1].split("### ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def check_weights_and_checkpoint(chain, client, tmp_path) -> None:
    from cinr_web.runs import artifacts
    from training.checkpoint import load_encoder, read_config

    inrset, simclr = chain["inrset"], chain["simclr"]
    response = client.get(f"/api/inrsets/{inrset.pk}/weights.safetensors")
    assert response.status_code == 200 and filename(response) == f"cinr-inrset-{inrset.pk}-weights.safetensors"
    spec, params, meta = inr.load(body(response))
    stored = inrset.load()
    assert spec == stored.spec and all(torch.equal(params[k], stored.params[k]) for k in params)
    assert client.get(f"/api/inrsets/{inrset.pk}/").json()["weights_url"] == response.request["PATH_INFO"]

    response = client.get(f"/api/runs/{simclr.pk}/checkpoint.safetensors")
    assert response.status_code == 200 and filename(response) == f"cinr-run-{simclr.pk}-checkpoint.safetensors"
    path = tmp_path / filename(response)
    path.write_bytes(body(response))
    downloaded = load_encoder(path)  # training's own loader, offline
    served, _ = artifacts.load_encoder(simclr.artifact("checkpoint"))
    with torch.no_grad():
        assert torch.equal(downloaded.encode_params(stored.params), served.encode_params(stored.params))

    response = client.get(f"/api/runs/{simclr.pk}/config.json")
    assert response.status_code == 200 and filename(response) == f"cinr-run-{simclr.pk}-config.json"
    config = json.loads(body(response))
    assert config == read_config(path) and config["spec"] == inrset.spec and config["kind"] == "simclr"


def check_probe_and_maps(chain, client) -> None:
    from cinr_web.runs.artifacts import load_encoder_map, load_maps

    probe, embedding = chain["probe"], chain["embedding"]
    probe.refresh_from_db()
    response = client.get(f"/api/runs/{probe.pk}/probe.json")
    assert response.status_code == 200 and filename(response) == f"cinr-run-{probe.pk}-probe.json"
    result = json.loads(body(response))
    assert result["encoder_run"] == chain["simclr"].pk and result["result"] == probe.result
    assert 0 <= result["result"]["accuracy"] <= 100

    maps, features = load_maps(embedding), load_encoder_map(embedding).features
    response = client.get(f"/api/runs/{embedding.pk}/embedding.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert filename(response) == f"cinr-run-{embedding.pk}-embedding.csv"
    rows = list(csv.DictReader(io.StringIO(body(response).decode())))
    assert len(rows) == len(maps["labels"]) == 80  # 40 images x 2 seeds
    for i in (0, 41, 79):
        row = rows[i]
        assert int(row["inr_index"]) == maps["inr_index"][i] and row["split"] == maps["split"][i]
        assert row["class_name"] == maps["classes"][maps["labels"][i]]
        assert float(row["encoder_x"]) == pytest.approx(maps["encoder"]["x"][i], rel=1e-6)
        assert float(row["raw_y"]) == pytest.approx(maps["raw"]["y"][i], rel=1e-6)
        assert [float(row[f"feature_{k}"]) for k in range(12)] == pytest.approx(features[i].tolist(), rel=1e-6)

    response = client.get(f"/api/runs/{embedding.pk}/embedding.json", HTTP_ACCEPT="application/json")
    table = json.loads(body(response))
    assert filename(response) == f"cinr-run-{embedding.pk}-embedding.json"
    assert table["columns"]["seed"] == [i % 2 for i in range(80)] and len(table["features"]) == 80
    assert table["columns"]["encoder_y"] == maps["encoder"]["y"]


def session_client(client, user):
    client.force_login(user)  # a real session cookie: SessionAuthentication, as the dashboard's links use
    return client


def test_it_downloads_every_file_of_a_trained_chain_with_a_token_and_a_session(chain, normal_user, client,
                                                                               live_server, tmp_path, monkeypatch):
    for api in (token_client(normal_user), session_client(client, normal_user)):
        check_weights_and_checkpoint(chain, api, tmp_path)
        check_probe_and_maps(chain, api)
    embedding = chain["embedding"]
    listed = token_client(normal_user).get(f"/api/runs/{embedding.pk}/").json()["downloads"]
    assert listed == {name: f"/api/runs/{embedding.pk}/{name}" for name in ("embedding.csv", "embedding.json")}
    artifacts = token_client(normal_user).get(f"/api/runs/{chain['simclr'].pk}/artifacts/").json()
    assert [a["downloads"] for a in artifacts if a["kind"] == "checkpoint"] == [
        {name: f"/api/runs/{chain['simclr'].pk}/{name}" for name in ("checkpoint.safetensors", "config.json")}]

    # docs/api.md's example, as written, against a live server: it downloads the checkpoint with a token and uses
    # the encoder offline; its features are the served encoder's
    from cinr_web.runs import artifacts

    code = documented_example()
    setting = 'BASE_URL, TOKEN, RUN = "http://localhost:8000", "your-token", 12'
    assert setting in code
    token = Token.objects.get(user=normal_user).key
    code = code.replace(setting, f"BASE_URL, TOKEN, RUN = {live_server.url!r}, {token!r}, {chain['simclr'].pk}")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, str(DOCS), "exec"), namespace)
    served, _ = artifacts.load_encoder(chain["simclr"].artifact("checkpoint"))
    with torch.no_grad():
        assert torch.equal(namespace["features"], served.encode_params(namespace["fitted"].params))
    assert namespace["features"].shape == (8, 12)


def test_it_refuses_anonymous_downloads_and_says_what_a_run_offers(tiny_digits_dataset, normal_user):
    from cinr_web.inrsets.models import INRSet
    from cinr_web.runs.models import Run

    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=inr.FieldSpec.siren().to_dict())
    running = Run.objects.create(kind="simclr", status="running", inrset=inrset)
    probe = Run.objects.create(kind="probe", status="succeeded", inrset=inrset, result={"accuracy": 50.0})
    anonymous = APIClient()
    for path in (f"/api/inrsets/{inrset.pk}/weights.safetensors", f"/api/runs/{probe.pk}/probe.json"):
        assert anonymous.get(path).status_code == 401
    api = token_client(normal_user)
    response = api.get(f"/api/inrsets/{inrset.pk}/weights.safetensors")
    assert response.status_code == 404 and "no weights yet" in response.json()["detail"]
    response = api.get(f"/api/runs/{running.pk}/checkpoint.safetensors", HTTP_ACCEPT="application/octet-stream")
    assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert "running" in response.json()["detail"]
    response = api.get(f"/api/runs/{probe.pk}/embedding.csv", HTTP_ACCEPT="text/csv")
    assert response.status_code == 404 and "it offers probe.json" in response.json()["detail"]
    response = api.get(f"/api/runs/{probe.pk}/probe.json", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and json.loads(body(response))["result"] == {"accuracy": 50.0}
    assert api.get(f"/api/runs/{running.pk}/").json()["downloads"] == {}


def test_it_serves_media_to_a_token_and_answers_a_script_without_one_with_401(client, normal_user):
    from cinr_web.storage import save_bytes

    url = "/media/" + save_bytes("runs/1/note.txt", b"stored bytes")
    assert client.get(url).status_code == 302  # an anonymous browser: to the login page
    assert client.get(url, HTTP_AUTHORIZATION="Token not-a-token").status_code == 401
    assert client.get(url, HTTP_AUTHORIZATION="Bearer something").status_code == 401
    response = token_client(normal_user).get(url)
    assert response.status_code == 200 and body(response) == b"stored bytes"
    assert token_client(normal_user).get("/media/../settings.py").status_code in (400, 404)  # never served

    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    async def fetch():  # under ASGI, blocks from an async iterator (Django reads a sync one whole first)
        key = (await Token.objects.aget(user=normal_user)).key
        answer = await AsyncClient().get(url, headers={"Authorization": f"Token {key}"})
        return answer, b"".join([block async for block in answer.streaming_content])

    response, data = async_to_sync(fetch)()
    assert response.status_code == 200 and response.is_async and data == b"stored bytes"


def test_it_streams_a_stored_file_with_an_async_iterator_under_asgi(tiny_digits_dataset, normal_user):
    """Under ASGI (daphne) Django would read a sync iterator whole into memory before sending it."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from cinr_web.inrsets.models import INRSet
    from cinr_web.storage import save_bytes

    spec = inr.FieldSpec.siren(hidden=8)
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, 3))
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=spec.to_dict(), status="succeeded",
                                   weights=save_bytes("inrsets/x/weights.safetensors", buffer.getvalue()))
    token = Token.objects.get_or_create(user=normal_user)[0].key
    async def fetch():
        response = await AsyncClient().get(f"/api/inrsets/{inrset.pk}/weights.safetensors",
                                           headers={"Authorization": f"Token {token}"})
        if not response.streaming:
            return response, response.content
        return response, b"".join([block async for block in response.streaming_content])

    response, data = async_to_sync(fetch)()
    assert response.status_code == 200 and response.is_async, data[:300]
    assert int(response["Content-Length"]) == len(data) and data == buffer.getvalue()
    assert filename(response) == f"cinr-inrset-{inrset.pk}-weights.safetensors"
