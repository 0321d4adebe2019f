"""The model API with really trained encoders: a real Celery worker fits a tiny INR set, pretrains a small SimCLR
encoder, probes it and maps it, and trains a supervised encoder; the API's answers are checked against the
artifacts read directly."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from safetensors.torch import load as safetensors_load
from safetensors.torch import save as safetensors_save

import inr
from cinr_web.runs.models import Artifact, Run
from tests.api_support import TINY_SPEC, client_for

pytestmark = pytest.mark.django_db(transaction=True)

SMALL_ENCODER = {"d_node": 16, "d_edge": 8, "d_attn": 16, "heads": 2, "layers": 1, "d_ff": 32, "feature_dim": 12}


def upload(spec, params, name="inr.safetensors") -> SimpleUploadedFile:
    buffer = io.BytesIO()
    inr.save(buffer, spec, params)
    return SimpleUploadedFile(name, buffer.getvalue(), "application/octet-stream")


def rows(params: dict, index) -> dict:
    return {k: v[index] for k, v in params.items()}


@pytest.fixture
def trained(celery_worker, tiny_digits_dataset, staff_user, wait_for_run):
    """fit -> SimCLR -> linear probe and t-SNE embedding map, and a supervised run, all through the worker."""
    from cinr_web.inrsets.services import start_fit
    from cinr_web.runs.services import start_chain, start_run

    inrset = start_fit(tiny_digits_dataset, TINY_SPEC, {"steps": 100, "lr": 5e-3}, seeds_per_image=2, user=staff_user)
    training = {"encoder": SMALL_ENCODER, "steps": 6, "batch_size": 16}
    simclr, probe, embedding = start_chain(inrset, encoder_config=training, embedding_config={"seed": 0},
                                           user=staff_user)
    supervised = start_run("supervised", inrset, training, staff_user, parent=inrset.fit_run)
    for run in (simclr, probe, embedding, supervised):
        finished = wait_for_run(run, timeout=240)
        assert finished.status == "succeeded", (finished.kind, finished.error)
    inrset.refresh_from_db()
    return {"inrset": inrset, "simclr": simclr, "probe": probe, "embedding": embedding, "supervised": supervised}


def check_embeds_classifies_and_places_inrs(trained, normal_user):
    from cinr_web.runs import artifacts

    simclr, inrset = trained["simclr"], trained["inrset"]
    client = client_for(normal_user)
    listed = client.get("/api/encoders/").json()["results"]
    assert {e["id"] for e in listed} == {simclr.pk, trained["supervised"].pk}
    detail = client.get(f"/api/encoders/{simclr.pk}/").json()
    assert detail["spec"] == TINY_SPEC.to_dict() and len(detail["class_names"]) == 10

    dataset = inrset.load()
    before = (Run.objects.count(), Artifact.objects.count())
    picked = torch.tensor([0, 7, 42])
    response = client.post(f"/api/encoders/{simclr.pk}/embed",
                           {"files": [upload(TINY_SPEC, rows(dataset.params, picked[:1]), "one.safetensors"),
                                      upload(TINY_SPEC, rows(dataset.params, picked[1:]), "two.safetensors")]},
                           format="multipart")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert "read;dur=" in response["Server-Timing"] and "model;dur=" in response["Server-Timing"]
    assert (Run.objects.count(), Artifact.objects.count()) == before  # nothing stored
    assert body["encoder"] == simclr.pk and body["classifier"] == f"probe run {trained['probe'].pk}"
    results = body["results"]
    assert [r["source"] for r in results] == ["one.safetensors", "two.safetensors[0]", "two.safetensors[1]"]

    # the embedding is the encoder's features, the probabilities the probe's, read from the artifacts directly
    encoder, _ = artifacts.load_encoder(simclr.artifact("checkpoint"))
    with torch.no_grad():
        expected = encoder.encode_params(rows(dataset.params, picked)).numpy()
    got = np.array([r["embedding"] for r in results])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)
    head = artifacts.load_probe(trained["probe"].artifact("probe"))
    expected_p = head.predict_proba(expected)
    for r, p in zip(results, expected_p, strict=True):
        assert list(r["probabilities"]) == head.class_names
        np.testing.assert_allclose(list(r["probabilities"].values()), p, rtol=1e-4, atol=1e-6)
        assert r["predicted_class"] == head.class_names[int(p.argmax())]

    # a mapped INR lands on its own position on the encoder's t-SNE map
    maps = artifacts.load_maps(trained["embedding"])
    where = {index: (x, y) for index, x, y in zip(maps["inr_index"], maps["encoder"]["x"], maps["encoder"]["y"],
                                                  strict=True)}
    for index, r in zip(picked.tolist(), results, strict=True):
        if index in where:
            np.testing.assert_allclose(r["map_position"], where[index], atol=1e-2 * (1 + np.ptp(maps["encoder"]["x"])))

    # the placement compares new INRs with the features stored in the map artifact, all of them, none re-encoded
    from cinr_web.api import inference

    stored = artifacts.load_encoder_map(trained["embedding"])
    assert stored.features is not None and len(stored.features) == len(maps["inr_index"])
    placer = inference.load_encoder(Run.objects.get(pk=simclr.pk)).place.__self__  # the API's cached placer
    np.testing.assert_allclose(placer.ref.numpy(), (stored.features - placer.mean) / placer.std, rtol=1e-12)
    np.testing.assert_array_equal(placer.xy.numpy(), stored.xy)


def check_places_inrs_on_a_map_made_before_features_were_stored(trained):
    """Fallback for old embedding artifacts (no encoder_features): the mapped INRs are encoded at load."""
    from cinr_web.api import inference
    from cinr_web.runs import artifacts

    simclr, embedding, dataset = trained["simclr"], trained["embedding"], trained["inrset"].load()
    emap = embedding.artifact("embedding")
    with emap.file.open("rb") as f:
        tensors = safetensors_load(f.read())
    assert "encoder_features" in tensors
    old = {k: v for k, v in tensors.items() if k != "encoder_features"}
    with emap.file.open("rb") as f:
        meta = artifacts._metadata(f.read())
    with emap.file.open("wb") as f:
        f.write(safetensors_save(old, metadata=meta))
    stored = artifacts.load_encoder_map(embedding)
    assert stored.features is None
    encoder, _ = artifacts.load_encoder(simclr.artifact("checkpoint"))
    placer = inference._map_placer(Run.objects.get(pk=simclr.pk), encoder, emap)
    with torch.no_grad():
        expected = encoder.encode_params(rows(dataset.params, torch.as_tensor(stored.inr_index))).numpy()
    np.testing.assert_allclose(placer.ref.numpy() * placer.std + placer.mean, expected, rtol=1e-4, atol=1e-4)
    span = 1 + np.ptp(stored.xy)
    np.testing.assert_allclose(placer.place(expected[:3]), stored.xy[:3], atol=1e-2 * span)


def check_same_answer_for_json_permuted_and_file_inputs(trained, normal_user):
    simclr, dataset = trained["simclr"], trained["inrset"].load()
    client = client_for(normal_user)
    one = rows(dataset.params, slice(5, 6))
    from_file = client.post(f"/api/encoders/{simclr.pk}/embed", {"files": [upload(TINY_SPEC, one)]},
                            format="multipart").json()["results"][0]
    as_json = {"inrs": [{"spec": TINY_SPEC.to_dict(), "params": {k: v[0].tolist() for k, v in one.items()}}]}
    from_json = client.post(f"/api/encoders/{simclr.pk}/embed", as_json, format="json").json()["results"][0]
    np.testing.assert_allclose(from_json["embedding"], from_file["embedding"], rtol=1e-5, atol=1e-6)
    assert from_json["predicted_class"] == from_file["predicted_class"]
    # hidden-neuron permutations are symmetries of the INR: the encoder is invariant to them
    permuted = inr.permute(TINY_SPEC, one, torch.Generator().manual_seed(1))
    assert not torch.equal(permuted["layer0.weight"], one["layer0.weight"])
    from_permuted = client.post(f"/api/encoders/{simclr.pk}/embed", {"files": [upload(TINY_SPEC, permuted)]},
                                format="multipart").json()["results"][0]
    np.testing.assert_allclose(from_permuted["embedding"], from_file["embedding"], rtol=1e-4, atol=1e-5)


def check_classifies_with_the_supervised_head(trained, normal_user):
    supervised, dataset = trained["supervised"], trained["inrset"].load()
    response = client_for(normal_user).post(f"/api/encoders/{supervised.pk}/embed",
                                            {"files": [upload(TINY_SPEC, rows(dataset.params, slice(0, 4)))]},
                                            format="multipart")
    assert response.status_code == 200, response.content[:500]
    body = response.json()
    assert body["classifier"] == "supervised head"
    for r in body["results"]:
        assert abs(sum(r["probabilities"].values()) - 1.0) < 1e-5 and r["map_position"] is None
        assert r["predicted_class"] == max(r["probabilities"], key=r["probabilities"].get)


def test_it_serves_really_trained_encoders(trained, normal_user):
    """One training for all checks (the worker's runs take most of this test's time)."""
    check_embeds_classifies_and_places_inrs(trained, normal_user)
    check_same_answer_for_json_permuted_and_file_inputs(trained, normal_user)
    check_classifies_with_the_supervised_head(trained, normal_user)
    check_places_inrs_on_a_map_made_before_features_were_stored(trained)  # last: it rewrites the map artifact
