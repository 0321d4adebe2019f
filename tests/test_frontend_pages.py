"""Dashboard pages: each renders for a logged-in user, anonymous users go to the login page, staff-only actions
refuse other users, and the assets (our CSS/JS and Plotly from the installed package) are served offline."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from cinr_web.inrsets.models import INRSet
from cinr_web.runs.models import MetricPoint, Run


@pytest.fixture
def objects(tiny_digits_dataset, staff_user):
    """A dataset, a (not yet fitted) INR set with its fit run, and a SimCLR run with a probe child."""
    from django.utils import timezone

    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec={"arch": "siren", "out_dim": 1, "hidden": 8,
                                                                      "layers": 2, "omega0": 30.0},
                                   fit_config={"steps": 5}, seeds_per_image=2, created_by=staff_user)
    fit = Run.objects.create(kind="fit", inrset=inrset, status="running", progress=0.5, created_by=staff_user)
    simclr = Run.objects.create(kind="simclr", inrset=inrset, status="succeeded", progress=1.0,
                                config={"steps": 3}, created_by=staff_user)
    for step in range(3):
        MetricPoint.objects.create(run=simclr, step=step, name="loss", value=2.0 - step * 0.1, time=timezone.now())
    probe = Run.objects.create(kind="probe", inrset=inrset, parent=simclr, status="succeeded", progress=1.0,
                               result={"accuracy": 75.0, "confusion": [[1, 0], [1, 2]], "class_names": ["a", "b"]})
    return {"dataset": tiny_digits_dataset, "inrset": inrset, "fit": fit, "simclr": simclr, "probe": probe}


def page_urls(objects) -> dict[str, str]:
    return {
        "overview": reverse("frontend:overview"),
        "dataset_new": reverse("frontend:dataset_new"),
        "dataset": reverse("frontend:dataset", args=[objects["dataset"].pk]),
        "inrset": reverse("frontend:inrset", args=[objects["inrset"].pk]),
        "run": reverse("frontend:run", args=[objects["simclr"].pk]),
        "fit_run": reverse("frontend:run", args=[objects["fit"].pk]),
        "compare": reverse("frontend:compare") + f"?run={objects['simclr'].pk}&run={objects['fit'].pk}",
        "explorer": reverse("frontend:explorer", args=[objects["simclr"].pk]),
        "api_help": reverse("frontend:api_help"),
    }


@pytest.mark.django_db
def test_it_renders_every_page_for_a_logged_in_user(client, objects, normal_user):
    client.force_login(normal_user)
    expected = {
        "overview": ["tiny-digits", "INR set", f"Run {objects['simclr'].pk}"],
        "dataset_new": ["dropzone", "upload-progress"],
        "dataset": ["tiny-digits", "image.png", "#0"],
        "inrset": ["PSNR histogram", "not anti-aliased"],
        "run": ["chart-loss", "75.0 % test accuracy", "confusion"],
        "fit_run": ["chart-loss"],
        "compare": ["compare-chart", f"run {objects['simclr'].pk}"],
        "explorer": ["No embedding map yet"],
        "api_help": ["Authorization: Token", "/api/encoders/"],
    }
    for name, url in page_urls(objects).items():
        response = client.get(url)
        assert response.status_code == 200, (name, response.status_code)
        html = response.content.decode()
        for text in expected[name]:
            assert text in html, (name, text)
    # Normal users see no staff controls.
    assert "Start fitting" not in client.get(page_urls(objects)["dataset"]).content.decode()


@pytest.mark.django_db
def test_it_redirects_anonymous_users_to_the_login_page(client, objects):
    login = reverse("frontend:login")
    for name, url in page_urls(objects).items():
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(login + "?next="), (name, response["Location"])
    assert client.get(login).status_code == 200


@pytest.mark.django_db
def test_it_logs_in_through_the_login_page(client, normal_user):
    response = client.post(reverse("frontend:login"), {"username": "user", "password": "user-password"})
    assert response.status_code == 302 and response["Location"] == reverse("frontend:overview")
    bad = client.post(reverse("frontend:login"), {"username": "user", "password": "wrong"})
    assert bad.status_code == 200 and "did not match" in bad.content.decode()


@pytest.mark.django_db
def test_it_shows_staff_controls_only_to_staff(client, objects, staff_user, normal_user):
    client.force_login(staff_user)
    assert "Start fitting" in client.get(reverse("frontend:dataset", args=[objects["dataset"].pk])).content.decode()
    assert "Cancel run" in client.get(reverse("frontend:run", args=[objects["fit"].pk])).content.decode()
    client.force_login(normal_user)
    assert "Cancel run" not in client.get(reverse("frontend:run", args=[objects["fit"].pk])).content.decode()
    for url in [reverse("frontend:dataset_fit", args=[objects["dataset"].pk]),
                reverse("frontend:run_cancel", args=[objects["fit"].pk]),
                reverse("frontend:inrset_train", args=[objects["inrset"].pk]),
                reverse("frontend:run_follow_up", args=[objects["simclr"].pk])]:
        assert client.post(url).status_code == 403, url
    objects["fit"].refresh_from_db()
    assert not objects["fit"].cancel_requested


@pytest.mark.django_db
def test_it_gives_each_user_a_token_and_replaces_it_on_request(client, normal_user):
    from rest_framework.authtoken.models import Token

    client.force_login(normal_user)
    html = client.get(reverse("frontend:api_help")).content.decode()
    token = Token.objects.get(user=normal_user).key
    assert token in html
    client.post(reverse("frontend:api_token_reset"))
    new = Token.objects.get(user=normal_user).key
    assert new != token and new in client.get(reverse("frontend:api_help")).content.decode()


def test_it_serves_plotly_from_the_installed_package_and_our_assets(client):
    import plotly

    response = client.get(reverse("frontend:asset", args=["plotly.min.js"]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    body = response.content
    with open(f"{plotly.__path__[0]}/package_data/plotly.min.js", "rb") as f:
        assert body == f.read()
    cached = client.get(reverse("frontend:asset", args=["plotly.min.js"]), HTTP_IF_NONE_MATCH=response["ETag"])
    assert cached.status_code == 304
    for name in ["cinr.css", "cinr.js", "charts.js", "upload.js", "inrset.js", "run.js", "explorer.js"]:
        assert client.get(reverse("frontend:asset", args=[name])).status_code == 200, name
    # Pages link versioned URLs (?v=<content hash>), which may be cached for long.
    html = client.get(reverse("frontend:login")).content.decode()
    versioned = re.search(r'href="(/assets/cinr\.css\?v=[0-9a-f]{10})"', html).group(1)
    assert "max-age=86400" in client.get(versioned)["Cache-Control"]
    for bad in ["..%2Fviews%2Fpages.py", "pages.py", "missing.js", ".hidden.js"]:
        assert client.get(f"/assets/{bad}").status_code == 404, bad


@pytest.mark.django_db
def test_it_links_no_cdn(client, objects, normal_user):
    client.force_login(normal_user)
    for name, url in page_urls(objects).items():
        html = client.get(url).content.decode()
        # Every script, stylesheet and image comes from this server: no absolute or protocol-relative URLs.
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), name


@pytest.mark.django_db
def test_it_serves_the_maps_of_an_embedding_run_to_the_explorer(client, objects, normal_user):
    from types import SimpleNamespace

    import torch
    from django.core.files.base import ContentFile

    from cinr_web.runs.artifacts import maps_bytes
    from cinr_web.runs.models import Artifact

    rows = torch.arange(4)
    dataset = SimpleNamespace(labels=torch.tensor([0, 1, 1, 0]), image_index=torch.tensor([0, 0, 1, 1]),
                              seed=torch.tensor([0, 1, 0, 1]), is_train=torch.tensor([True, True, False, True]),
                              class_names=["a", "b"])
    embedding = Run.objects.create(kind="embedding", inrset=objects["inrset"], parent=objects["simclr"],
                                   status="succeeded", progress=1.0)
    artifact = Artifact(run=embedding, kind="embedding")
    artifact.file.save("maps.safetensors", ContentFile(maps_bytes(
        raw_xy=torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]]),
        encoder_xy=torch.tensor([[1.0, 0.0], [3.0, 2.0], [5.0, 4.0], [7.0, 6.0]]), rows=rows, dataset=dataset)))

    client.force_login(normal_user)
    for pk in (objects["simclr"].pk, embedding.pk):  # the encoder's explorer and its embedding run's
        html = client.get(reverse("frontend:explorer", args=[pk])).content.decode()
        assert "map-encoder" in html and "map-raw" in html
        maps = client.get(reverse("frontend:explorer_points", args=[pk])).json()
        assert maps["classes"] == ["a", "b"] and maps["labels"] == [0, 1, 1, 0]
        assert maps["encoder"]["x"] == [1.0, 3.0, 5.0, 7.0] and maps["raw"]["y"] == [1.0, 3.0, 5.0, 7.0]
        assert maps["split"] == ["train", "train", "test", "train"]
    assert "try-form" in client.get(reverse("frontend:explorer", args=[objects["simclr"].pk])).content.decode()
    # A fit run has no map: 404, with a message.
    assert client.get(reverse("frontend:explorer_points", args=[objects["fit"].pk])).status_code == 404


@pytest.mark.django_db
def test_it_answers_try_it_uploads_with_clear_errors(client, objects, normal_user):
    import io

    import numpy as np
    from django.core.files.uploadedfile import SimpleUploadedFile
    from PIL import Image

    import inr

    url = reverse("frontend:try_it", args=[objects["simclr"].pk])
    client.force_login(normal_user)

    def post(name: str, data: bytes):
        return client.post(url, {"file": SimpleUploadedFile(name, data)})

    assert "form field 'file'" in client.post(url).json()["error"]
    bad_image = post("digit.png", b"not a png")
    assert bad_image.status_code == 400 and "digit.png: not a readable image" in bad_image.json()["error"]
    bad_weights = post("inr.safetensors", b"\x00" * 64)
    assert bad_weights.status_code == 400
    other = inr.FieldSpec.siren(hidden=4, layers=2)
    buffer = io.BytesIO()
    inr.save(buffer, other, inr.init(other, 1))
    wrong_spec = post("other.safetensors", buffer.getvalue())
    assert wrong_spec.status_code == 400 and "is not the encoder's" in wrong_spec.json()["error"]
    spec = objects["inrset"].field_spec
    buffer = io.BytesIO()
    inr.save(buffer, spec, inr.init(spec, 2))
    two = post("two.safetensors", buffer.getvalue())
    assert two.status_code == 400 and "exactly one" in two.json()["error"]

    # A good image is fitted (the set's spec and 5 steps), then the encoder is asked: this run has no checkpoint.
    png = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((12, 10)) * 255).astype(np.uint8)).save(png, format="PNG")
    answer = post("digit.png", png.getvalue())
    assert answer.status_code == 409 and "no checkpoint" in answer.json()["error"]
    # A fit run is no encoder; anonymous users are sent to the login page.
    assert client.post(reverse("frontend:try_it", args=[objects["fit"].pk])).status_code == 404
    client.logout()
    assert client.post(url).status_code == 302


@pytest.mark.django_db
def test_it_imports_a_built_in_dataset_for_staff_only(client, staff_user, normal_user):
    from cinr_web.datasets.models import ImageDataset

    url = reverse("frontend:dataset_import_builtin")
    client.force_login(normal_user)
    assert client.post(url, {"name": "digits"}).status_code == 403
    client.force_login(staff_user)
    assert "Import scikit-learn digits" in client.get(reverse("frontend:overview")).content.decode()
    unknown = client.post(url, {"name": "imagenet"}, follow=True)
    assert "Unknown built-in dataset" in unknown.content.decode()
    response = client.post(url, {"name": "digits"})
    dataset = ImageDataset.objects.get(name="digits")
    assert response["Location"] == reverse("frontend:dataset", args=[dataset.pk])
    assert dataset.num_images == 1797 and dataset.images.count() == 1797
    assert client.post(url, {"name": "digits"})["Location"] == response["Location"]  # imported once


@pytest.mark.django_db
def test_it_lets_staff_start_cancel_and_follow_up_runs(client, objects, staff_user):
    client.force_login(staff_user)
    inrset, simclr = objects["inrset"], objects["simclr"]
    # An encoder run with its probe and embedding map, waiting for the set's fit (still running here).
    response = client.post(reverse("frontend:inrset_train", args=[inrset.pk]),
                           {"kind": "simclr", "steps": 5, "batch_size": 4, "lr": 0.002, "encoder_size": "small",
                            "chain": "on"})
    encoder = Run.objects.filter(kind="simclr").exclude(pk=simclr.pk).get()
    assert response["Location"] == reverse("frontend:run", args=[encoder.pk])
    assert encoder.config["steps"] == 5 and encoder.config["optim"]["lr"] == 0.002
    assert encoder.config["encoder"]["d_node"] == 32 and encoder.parent == objects["fit"]
    assert sorted(encoder.children.values_list("kind", flat=True)) == ["embedding", "probe"]
    bad = client.post(reverse("frontend:inrset_train", args=[inrset.pk]), {"kind": "simclr", "steps": 0}, follow=True)
    assert "Could not start the run" in bad.content.decode()

    # Cancel: a queued run is cancelled at once (and the runs waiting for it with it).
    client.post(reverse("frontend:run_cancel", args=[encoder.pk]))
    encoder.refresh_from_db()
    assert encoder.status == "cancelled" and encoder.cancel_requested
    assert set(encoder.children.values_list("status", flat=True)) == {"cancelled"}
    again = client.post(reverse("frontend:run_cancel", args=[encoder.pk]), follow=True)
    assert "has already cancelled" in again.content.decode()

    # Follow-ups of a succeeded encoder.
    response = client.post(reverse("frontend:run_follow_up", args=[simclr.pk]), {"kind": "embedding"})
    child = simclr.children.get(kind="embedding")
    assert response["Location"] == reverse("frontend:run", args=[child.pk])
    refused = client.post(reverse("frontend:run_follow_up", args=[objects["fit"].pk]), {"kind": "probe"}, follow=True)
    assert "started from a SimCLR or supervised run" in refused.content.decode()


@pytest.mark.django_db
def test_it_puts_the_other_anti_aliasing_settings_spectrum_beside_an_inr_sets(client, tiny_digits_dataset, normal_user):
    spec = {"arch": "mfn", "out_dim": 1, "hidden": 8, "filters": 2, "input_scale": 3.03}

    def fitted(anti_alias: bool) -> INRSet:
        return INRSet.objects.create(dataset=tiny_digits_dataset, spec=spec, seeds_per_image=1, status="succeeded",
                                     fit_config={"anti_alias": anti_alias}, weights=f"inrsets/aa-{anti_alias}.st")

    plain, other_arch = fitted(False), INRSet.objects.create(dataset=tiny_digits_dataset, spec={**spec, "hidden": 4},
                                                             fit_config={"anti_alias": True}, status="succeeded",
                                                             weights="inrsets/other.st")
    client.force_login(normal_user)
    assert "twin-views" not in client.get(reverse("frontend:inrset", args=[plain.pk])).content.decode()
    clamped = fitted(True)
    html = client.get(reverse("frontend:inrset", args=[plain.pk])).content.decode()
    assert "twin-views" in html and f"/api/inrsets/{clamped.pk}/inrs/" in html
    assert f"/api/inrsets/{other_arch.pk}/inrs/" not in html
    back = client.get(reverse("frontend:inrset", args=[clamped.pk])).content.decode()
    assert f"/api/inrsets/{plain.pk}/inrs/" in back and "not anti-aliased), 4×" in back
