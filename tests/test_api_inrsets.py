"""REST API: INR sets (list, detail, create = enqueue a fit, INR listing) and the INR render endpoint."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image as PILImage

from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import Run
from tests.api_support import TINY_SPEC, client_for, fitted_inrset

pytestmark = pytest.mark.django_db


@pytest.fixture
def inrset(tiny_digits_dataset):
    return fitted_inrset(tiny_digits_dataset)


def picture(response) -> np.ndarray:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "image/png"
    return np.asarray(PILImage.open(io.BytesIO(response.content)))


def test_it_refuses_anonymous_users(inrset):
    anonymous = client_for()
    for url in ("/api/inrsets/", f"/api/inrsets/{inrset.pk}/", f"/api/inrsets/{inrset.pk}/inrs/",
                f"/api/inrsets/{inrset.pk}/inrs/0/render.png"):
        assert anonymous.get(url).status_code in (401, 403), url
    assert anonymous.post("/api/inrsets/", {}).status_code in (401, 403)


def test_it_shows_progress_and_psnr_statistics(inrset, normal_user):
    client = client_for(normal_user)
    listing = client.get("/api/inrsets/").json()
    assert listing["count"] == 1
    detail = client.get(f"/api/inrsets/{inrset.pk}/").json()
    assert detail["status"] == "succeeded" and detail["progress"] == 1.0 and detail["num_inrs"] == 80
    assert detail["spec"] == TINY_SPEC.to_dict() and detail["seeds_per_image"] == 2
    assert detail["psnr_min"] <= detail["psnr_mean"] <= detail["psnr_max"]
    assert sum(detail["psnr_histogram"]["counts"]) == 80
    assert client.get("/api/inrsets/999999/").status_code == 404


def test_it_lists_the_inrs_image_major(inrset, normal_user):
    client = client_for(normal_user)
    page = client.get(f"/api/inrsets/{inrset.pk}/inrs/", {"page": 2, "page_size": 10}).json()
    assert page["count"] == 80
    rows = page["results"]
    assert [r["index"] for r in rows] == list(range(10, 20))
    assert [(r["image_index"], r["seed"]) for r in rows[:2]] == [(5, 0), (5, 1)]
    assert all(r["class_name"] == str(r["label"]) for r in rows) and all(r["psnr"] > 30 for r in rows)
    assert client.get(f"/api/inrsets/{inrset.pk}/inrs/", {"page_size": 0}).status_code == 400
    assert client.get(f"/api/inrsets/{inrset.pk}/inrs/", {"page": "x"}).status_code == 400


def test_it_starts_fits_for_staff_only(tiny_digits_dataset, normal_user, staff_user):
    body = {"dataset": tiny_digits_dataset.pk, "spec": TINY_SPEC.to_dict(), "seeds_per_image": 2,
            "fit_config": {"steps": 10}}
    assert client_for(normal_user).post("/api/inrsets/", body, format="json").status_code == 403
    assert not INRSet.objects.exists()
    response = client_for(staff_user).post("/api/inrsets/", body, format="json")
    assert response.status_code == 201, response.content
    created = INRSet.objects.get(pk=response.json()["id"])
    assert created.status == "queued" and created.fit_config["steps"] == 10 and created.seeds_per_image == 2
    run = Run.objects.get(pk=response.json()["fit_run"])
    assert run.kind == "fit" and run.inrset_id == created.pk and run.created_by == staff_user


@pytest.mark.parametrize("spec, input_scale", [({"arch": "mfn", "hidden": 8}, 1.5),
                                                ({"arch": "mfn", "hidden": 8, "input_scale": 3.03}, 3.03)])
def test_it_gives_an_mfn_without_an_input_scale_the_services_default(tiny_digits_dataset, staff_user, spec,
                                                                     input_scale):
    # the preset's MFN for grey images (training.presets, "cpu"), as the admin's form and the fit command give it;
    # a scale the request names is kept
    body = {"dataset": tiny_digits_dataset.pk, "spec": spec, "seeds_per_image": 2, "fit_config": {"steps": 10}}
    response = client_for(staff_user).post("/api/inrsets/", body, format="json")
    assert response.status_code == 201, response.content
    created = INRSet.objects.get(pk=response.json()["id"])
    assert created.spec["input_scale"] == input_scale
    assert created.fit_config["anti_alias"] is True  # left out: on for an MFN, as the preset fits them


@pytest.mark.parametrize("change, field", [
    ({"dataset": 999999}, "dataset"),
    ({"spec": {"arch": "resnet"}}, "spec"),
    ({"spec": {"arch": "siren", "hidden": 0}}, "spec"),
    ({"spec": "siren"}, "spec"),
    ({"spec": {"arch": "siren", "out_dim": 3}}, "spec"),  # the dataset is grey
    ({"seeds_per_image": 0}, "seeds_per_image"),
    ({"fit_config": {"steps": -5}}, "fit_config"),
    ({"fit_config": {"lr": "fast"}}, "fit_config"),
])
def test_it_refuses_bad_fit_requests(tiny_digits_dataset, staff_user, change, field):
    body = {"dataset": tiny_digits_dataset.pk, "spec": TINY_SPEC.to_dict(), **change}
    response = client_for(staff_user).post("/api/inrsets/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert not INRSet.objects.exists()


def test_it_renders_an_inr_at_any_size(inrset, normal_user):
    client = client_for(normal_user)
    url = f"/api/inrsets/{inrset.pk}/inrs/3/render.png"
    native = picture(client.get(url))
    assert native.shape == (8, 8) and native.dtype == np.uint8
    big = picture(client.get(url, {"size": 32}))
    assert big.shape == (32, 32)
    # the render reproduces the image the INR was fitted to
    image = inrset.dataset.load().images[1, 0].numpy() * 255  # INR 3 = image 1, seed 1
    assert np.abs(native.astype(float) - image).max() <= 2
    spectrum = picture(client.get(url, {"size": 32, "spectrum": "true"}))
    assert spectrum.shape == (32, 32) and not np.array_equal(spectrum, big)


def test_it_renders_augmentations_of_the_weights(inrset, normal_user):
    client = client_for(normal_user)
    url = f"/api/inrsets/{inrset.pk}/inrs/0/render.png"
    plain = picture(client.get(url, {"size": 24})).astype(int)
    permuted = picture(client.get(url, {"size": 24, "permute": "true", "seed": 3})).astype(int)
    assert np.abs(permuted - plain).max() <= 1  # a symmetry: the same function up to rounding
    for params in ({"rotate": 90}, {"translate": "0.5,-0.25"}, {"scale": 2}, {"noise": 0.5}, {"dropout": 0.5},
                   {"augment": "true"}):
        changed = picture(client.get(url, {"size": 24, "seed": 1, **params})).astype(int)
        assert np.abs(changed - plain).mean() > 1, params
    rotated = picture(client.get(url, {"size": 24, "rotate": 90})).astype(int)
    rotated_back = picture(client.get(url, {"size": 24, "rotate": -90})).astype(int)
    assert np.abs(np.rot90(rotated, 1) - np.rot90(rotated_back, -1)).mean() < 3  # exact rotations of one field
    again = picture(client.get(url, {"size": 24, "noise": 0.5, "seed": 7}))
    assert np.array_equal(again, picture(client.get(url, {"size": 24, "noise": 0.5, "seed": 7})))


@pytest.mark.parametrize("params", [
    {"size": 0}, {"size": 10_000}, {"size": "big"}, {"rotate": "left"}, {"translate": "1"}, {"translate": "a,b"},
    {"translate": "5,0"}, {"scale": 0}, {"noise": -1}, {"dropout": 1.5}, {"seed": -1}, {"permute": "maybe"},
])
def test_it_refuses_bad_render_parameters_in_json(inrset, normal_user, params):
    response = client_for(normal_user).get(f"/api/inrsets/{inrset.pk}/inrs/0/render.png", params,
                                           HTTP_ACCEPT="image/png")
    assert response.status_code == 400 and response["Content-Type"] == "application/json"
    assert set(response.json()) & set(params), response.json()


def test_it_answers_404_for_missing_sets_indices_and_weights(inrset, tiny_digits_dataset, normal_user):
    client = client_for(normal_user)
    missing = client.get(f"/api/inrsets/{inrset.pk}/inrs/80/render.png")
    assert missing.status_code == 404 and "0..79" in missing.json()["detail"]
    assert client.get("/api/inrsets/999999/inrs/0/render.png").status_code == 404
    unfitted = INRSet.objects.create(dataset=tiny_digits_dataset, spec=TINY_SPEC.to_dict())
    response = client.get(f"/api/inrsets/{unfitted.pk}/inrs/0/render.png")
    assert response.status_code == 404 and "no weights" in response.json()["detail"]
    assert client.get(f"/api/inrsets/{unfitted.pk}/inrs/").status_code == 404
