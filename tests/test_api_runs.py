"""REST API: runs (list with filters, detail, create = staff, cancel = staff, metric history, artifacts), the token."""

from __future__ import annotations

import pytest
from django.utils import timezone
from rest_framework.authtoken.models import Token

from cinr_web.runs.models import MetricPoint, Run
from tests.api_support import client_for, fitted_inrset

pytestmark = pytest.mark.django_db


@pytest.fixture
def inrset(tiny_digits_dataset):
    return fitted_inrset(tiny_digits_dataset)


@pytest.fixture
def run_with_history(inrset):
    run = Run.objects.create(kind="simclr", status="running", inrset=inrset, config={"steps": 10}, progress=0.5)
    now = timezone.now()
    MetricPoint.objects.bulk_create([MetricPoint(run=run, step=s, name=n, value=s * (1 if n == "loss" else 0.1),
                                                 time=now) for s in range(30) for n in ("loss", "lr")])
    return run


def test_it_refuses_anonymous_users(run_with_history):
    anonymous = client_for()
    pk = run_with_history.pk
    for url in ("/api/runs/", f"/api/runs/{pk}/", f"/api/runs/{pk}/metrics/", f"/api/runs/{pk}/artifacts/",
                "/api/encoders/", "/api/token/"):
        assert anonymous.get(url).status_code in (401, 403), url
    assert anonymous.post("/api/runs/", {}).status_code in (401, 403)
    assert anonymous.post(f"/api/runs/{pk}/cancel/").status_code in (401, 403)


def test_it_lists_runs_with_filters(run_with_history, inrset, normal_user):
    other = Run.objects.create(kind="probe", status="succeeded", inrset=inrset, parent=run_with_history)
    client = client_for(normal_user)
    assert client.get("/api/runs/").json()["count"] == 2
    assert [r["id"] for r in client.get("/api/runs/", {"kind": "probe"}).json()["results"]] == [other.pk]
    assert [r["id"] for r in client.get("/api/runs/", {"status": "running"}).json()["results"]] == [
        run_with_history.pk]
    assert client.get("/api/runs/", {"parent": run_with_history.pk}).json()["count"] == 1
    assert client.get("/api/runs/", {"inrset": inrset.pk}).json()["count"] == 2
    assert client.get("/api/runs/", {"inrset": inrset.pk + 1}).json()["count"] == 0
    for bad in ({"kind": "nope"}, {"status": "done"}, {"inrset": "x"}):
        assert client.get("/api/runs/", bad).status_code == 400
    detail = client.get(f"/api/runs/{run_with_history.pk}/").json()
    assert detail["status"] == "running" and detail["progress"] == 0.5 and detail["config"] == {"steps": 10}
    assert client.get("/api/runs/999999/").status_code == 404


def test_it_pages_the_metric_history(run_with_history, normal_user):
    client = client_for(normal_user)
    url = f"/api/runs/{run_with_history.pk}/metrics/"
    everything = client.get(url, {"page_size": 1000}).json()
    assert everything["count"] == 60
    loss = client.get(url, {"name": "loss", "page_size": 10, "page": 2}).json()
    assert loss["count"] == 30 and [p["step"] for p in loss["results"]] == list(range(10, 20))
    assert loss["next"] and loss["previous"]
    after = client.get(url, {"name": "lr", "after": 25}).json()["results"]
    assert [(p["step"], p["name"]) for p in after] == [(s, "lr") for s in range(26, 30)]
    assert client.get(url, {"after": "x"}).status_code == 400
    assert client.get("/api/runs/999999/metrics/").status_code == 404


def test_it_starts_runs_for_staff_only(inrset, normal_user, staff_user):
    body = {"kind": "simclr", "inrset": inrset.pk, "config": {"steps": 5, "batch_size": 16}}
    assert client_for(normal_user).post("/api/runs/", body, format="json").status_code == 403
    response = client_for(staff_user).post("/api/runs/", body, format="json")
    assert response.status_code == 201, response.content
    run = Run.objects.get(pk=response.json()["id"])
    assert (run.kind, run.status, run.inrset_id, run.created_by) == ("simclr", "queued", inrset.pk, staff_user)
    assert run.config["steps"] == 5  # stored with the training defaults filled in
    probe = client_for(staff_user).post("/api/runs/", {"kind": "probe", "inrset": inrset.pk, "parent": run.pk},
                                        format="json")
    assert probe.status_code == 201 and Run.objects.get(pk=probe.json()["id"]).parent_id == run.pk


@pytest.mark.parametrize("change, field", [
    ({"kind": "fit"}, "kind"),
    ({"kind": "dance"}, "kind"),
    ({"inrset": 999999}, "inrset"),
    ({"config": {"no_such_setting": 1}}, "config"),
    ({"config": [1, 2]}, "config"),
    ({"config": {"max_seconds": -1}}, "config"),
    ({"parent": 999999}, "parent"),
])
def test_it_refuses_bad_run_requests(inrset, staff_user, change, field):
    before = Run.objects.count()
    body = {"kind": "simclr", "inrset": inrset.pk, **change}
    response = client_for(staff_user).post("/api/runs/", body, format="json")
    assert response.status_code == 400 and field in response.json(), response.content
    assert Run.objects.count() == before


def test_it_refuses_a_failed_parent_and_a_failed_set(inrset, staff_user):
    failed = Run.objects.create(kind="simclr", status="failed", inrset=inrset)
    client = client_for(staff_user)
    response = client.post("/api/runs/", {"kind": "probe", "inrset": inrset.pk, "parent": failed.pk}, format="json")
    assert response.status_code == 400 and "failed" in str(response.json())
    inrset.status = "failed"
    inrset.save()
    response = client.post("/api/runs/", {"kind": "simclr", "inrset": inrset.pk}, format="json")
    assert response.status_code == 400 and "inrset" in response.json()


def test_it_cancels_for_staff_only(run_with_history, inrset, normal_user, staff_user):
    queued = Run.objects.create(kind="probe", status="queued", inrset=inrset)
    assert client_for(normal_user).post(f"/api/runs/{queued.pk}/cancel/").status_code == 403
    staff = client_for(staff_user)
    response = staff.post(f"/api/runs/{queued.pk}/cancel/")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    running = staff.post(f"/api/runs/{run_with_history.pk}/cancel/").json()
    assert running["status"] == "running" and running["cancel_requested"] is True  # the worker stops it
    again = staff.post(f"/api/runs/{queued.pk}/cancel/")
    assert again.status_code == 400 and "already cancelled" in str(again.json())
    assert staff.post("/api/runs/999999/cancel/").status_code == 404


def test_it_returns_and_renews_the_users_token(normal_user):
    client = client_for(normal_user)
    first = client.get("/api/token/").json()
    assert first["username"] == "user" and Token.objects.get(user=normal_user).key == first["token"]
    assert client.get("/api/token/").json()["token"] == first["token"]
    renewed = client.post("/api/token/").json()["token"]
    assert renewed != first["token"]
    scripted = client_for()
    scripted.credentials(HTTP_AUTHORIZATION=f"Token {renewed}")
    assert scripted.get("/api/runs/").status_code == 200
    scripted.credentials(HTTP_AUTHORIZATION=f"Token {first['token']}")
    assert scripted.get("/api/runs/").status_code == 401
