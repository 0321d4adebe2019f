"""Admin pages and actions, and the management commands (rows only: no worker here, so nothing is enqueued)."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from PIL import Image as PILImage

from cinr_web.inrsets.models import INRSet
from cinr_web.inrsets.services import start_fit
from cinr_web.runs.models import Run
from cinr_web.runs.services import start_run
from inr import FieldSpec

pytestmark = pytest.mark.django_db

SPEC = FieldSpec.siren(hidden=8)


def test_the_admin_lists_render_with_status_and_progress(admin_client, tiny_digits_dataset):
    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5})
    Run.objects.filter(pk=inrset.fit_run.pk).update(status="running", progress=0.25)
    for model in ("datasets/imagedataset", "datasets/image", "inrsets/inrset", "runs/run", "runs/metricpoint"):
        response = admin_client.get(f"/admin/{model}/")
        assert response.status_code == 200, model
    page = admin_client.get("/admin/runs/run/").content.decode()
    assert "<progress" in page and "25%" in page and "running" in page
    assert admin_client.get("/admin/runs/run/?stale=yes").status_code == 200
    assert admin_client.get(f"/admin/runs/run/{inrset.fit_run.pk}/change/").status_code == 200


def test_the_fit_action_asks_for_settings_then_starts_a_fit(admin_client, tiny_digits_dataset):
    url = reverse("admin:datasets_imagedataset_changelist")
    data = {"action": "fit_inrs", "_selected_action": [tiny_digits_dataset.pk]}
    form_page = admin_client.post(url, data)
    assert form_page.status_code == 200 and b"seeds_per_image" in form_page.content
    assert INRSet.objects.count() == 0
    response = admin_client.post(url, {**data, "confirmed": "yes", "arch": "mfn", "hidden": 8, "depth": 2,
                                       "seeds_per_image": 2, "steps": 7, "lr": "", "shared_init": "on",
                                       "chunk_images": 16})
    assert response.status_code == 302
    inrset = INRSet.objects.get()
    assert inrset.spec == FieldSpec.mfn(hidden=8, filters=2, input_scale=1.5).to_dict()  # the preset's, grey images
    assert inrset.fit_config["steps"] == 7 and inrset.seeds_per_image == 2
    assert inrset.fit_run.chunks.count() == 3


def test_the_run_actions_cancel_and_chain(admin_client, tiny_digits_dataset):
    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5})
    fit = inrset.fit_run
    response = admin_client.post(reverse("admin:runs_run_changelist"),
                                 {"action": "cancel", "_selected_action": [fit.pk]})
    assert response.status_code == 302
    fit.refresh_from_db()
    assert fit.status == "cancelled" and INRSet.objects.get(pk=inrset.pk).status == "cancelled"

    other = start_fit(tiny_digits_dataset, SPEC, {"steps": 5}, seeds_per_image=2)
    url = reverse("admin:inrsets_inrset_changelist")
    data = {"action": "pretrain_chain", "_selected_action": [other.pk], "confirmed": "yes", "config": "{}"}
    assert admin_client.post(url, data).status_code == 302
    kinds = list(Run.objects.filter(inrset=other).order_by("id").values_list("kind", "status", "parent__kind"))
    assert kinds == [("fit", "queued", None), ("simclr", "queued", "fit"), ("probe", "queued", "simclr"),
                     ("embedding", "queued", "simclr")]


def test_the_import_and_fit_commands(tmp_path, tiny_digits_dataset):
    for c in ("a", "b"):
        (tmp_path / "set" / c).mkdir(parents=True)
        for i in range(2):
            buffer = io.BytesIO()
            PILImage.new("L", (6, 6), 60 * i).save(buffer, format="PNG")
            (tmp_path / "set" / c / f"{i}.png").write_bytes(buffer.getvalue())
    out = io.StringIO()
    call_command("import_dataset", str(tmp_path / "set"), "--name", "folder", stdout=out)
    assert "4 images 1x6x6, 2 classes" in out.getvalue()
    with pytest.raises(CommandError, match="not a directory|no such|does not exist|cannot"):
        call_command("import_dataset", str(tmp_path / "missing"))

    out = io.StringIO()
    call_command("fit", "tiny-digits", "--arch", "siren", "--hidden", "8", "--steps", "5", "--chunk-images", "25",
                 stdout=out)
    inrset = INRSet.objects.get(dataset=tiny_digits_dataset)
    assert f"INR set {inrset.pk}: fit run {inrset.fit_run.pk} queued in 2 chunk(s)" in out.getvalue()

    out = io.StringIO()
    call_command("pretrain", str(inrset.pk), "--chain", stdout=out)
    assert out.getvalue().count("queued") == 3
    simclr = Run.objects.get(kind="simclr")
    call_command("probe", "--encoder", str(simclr.pk), stdout=io.StringIO())
    call_command("embed", "--inrset", str(inrset.pk), stdout=io.StringIO())
    assert Run.objects.filter(kind="probe").count() == 2 and Run.objects.filter(kind="embedding").count() == 2

    out = io.StringIO()
    call_command("cancel", str(inrset.fit_run.pk), stdout=out)
    assert "cancelled" in out.getvalue()
    # the runs that waited for the fit will never start: cancelled with it
    assert set(Run.objects.filter(inrset=inrset).values_list("status", flat=True)) == {"cancelled"}
    out = io.StringIO()
    call_command("stale_runs", stdout=out)
    assert "no stale runs" in out.getvalue()
    with pytest.raises(CommandError, match="does not exist"):
        call_command("cancel", "999999")


def test_start_run_refuses_bad_configs(tiny_digits_dataset):
    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5})
    with pytest.raises(ValueError, match="unknown run kind"):
        start_run("dance", inrset, {})
    with pytest.raises(ValueError, match="unknown settings"):
        start_run("embedding", inrset, {"perplexity_typo": 3})
    with pytest.raises(ValueError, match="max_seconds"):
        start_run("probe", inrset, {"max_seconds": -1})
    with pytest.raises(ValueError, match="start_fit"):
        start_run("fit", inrset, {})


def test_the_encoder_actions_start_probes_and_maps(admin_client, tiny_digits_dataset):
    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5}, seeds_per_image=2)
    Run.objects.filter(pk=inrset.fit_run.pk).update(status="succeeded")
    encoder = Run.objects.create(kind="simclr", status="succeeded", inrset=inrset, config={})
    url = reverse("admin:runs_run_changelist")
    for action, kind in (("probe_with_encoder", "probe"), ("embedding_with_encoder", "embedding")):
        page = admin_client.post(url, {"action": action, "_selected_action": [encoder.pk]})
        assert page.status_code == 200 and b"config" in page.content
        done = admin_client.post(url, {"action": action, "_selected_action": [encoder.pk], "confirmed": "yes",
                                       "config": ""})
        assert done.status_code == 302
        assert Run.objects.filter(kind=kind, parent=encoder, inrset=inrset).count() == 1
    # a fit run is not an encoder: refused with a message, nothing started
    admin_client.post(url, {"action": "probe_with_encoder", "_selected_action": [inrset.fit_run.pk],
                            "confirmed": "yes", "config": "{}"})
    assert Run.objects.filter(kind="probe").count() == 1


def test_it_shows_a_running_run_as_a_record_without_save_delete_or_add_buttons(admin_client, tiny_digits_dataset):
    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5})
    Run.objects.filter(pk=inrset.fit_run.pk).update(status="running", progress=0.123456789)
    page = admin_client.get(f"/admin/runs/run/{inrset.fit_run.pk}/change/").content.decode()
    assert not any(f'name="{button}"' in page for button in ("_save", "_continue", "_addanother"))
    assert 'name="chunks-MAX_NUM_FORMS" value="0"' in page  # no "Add another Fit chunk"
    assert "deletelink" not in page
    assert "12%" in page and "0.123456789" not in page
    assert admin_client.post(f"/admin/runs/run/{inrset.fit_run.pk}/delete/", {"post": "yes"}).status_code == 403
    Run.objects.filter(pk=inrset.fit_run.pk).update(status="cancelled")
    assert "deletelink" in admin_client.get(f"/admin/runs/run/{inrset.fit_run.pk}/change/").content.decode()


def test_it_formats_psnr_and_metric_values(admin_client, tiny_digits_dataset):
    from cinr_web.runs.models import MetricPoint

    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5})
    INRSet.objects.filter(pk=inrset.pk).update(status="succeeded", psnr_mean=51.22942352294922, psnr_min=40.0,
                                               psnr_max=60.98765)
    inrset.fit_run.chunks.update(psnr_mean=48.123456789, seconds=12.3456789)
    page = admin_client.get(f"/admin/runs/run/{inrset.fit_run.pk}/change/").content.decode()
    assert "48.12" in page and "12.3" in page and "48.1234" not in page and "12.345" not in page
    MetricPoint.objects.create(run=inrset.fit_run, step=1, name="loss", value=0.0123456789, time="2026-12-03T10:00Z")
    for url in ("/admin/inrsets/inrset/", f"/admin/inrsets/inrset/{inrset.pk}/change/"):
        page = admin_client.get(url).content.decode()
        assert "51.23" in page and "51.229" not in page, url
    page = admin_client.get("/admin/runs/metricpoint/").content.decode()
    assert "0.012346" in page and "0.0123456789" not in page


def test_it_keeps_a_typed_config_with_an_unknown_setting_on_the_form(admin_client, tiny_digits_dataset):
    inrset = start_fit(tiny_digits_dataset, SPEC, {"steps": 5}, seeds_per_image=2)
    typed = '{"steps": 40, "stepz": 3}'
    page = admin_client.post(reverse("admin:inrsets_inrset_changelist"),
                             {"action": "pretrain_chain", "_selected_action": [inrset.pk], "confirmed": "yes",
                              "config": typed})
    assert page.status_code == 200  # the form again, not a redirect to the list
    html = page.content.decode()
    assert "stepz" in html and "unknown settings" in html and "&quot;steps&quot;: 40" in html
    assert not Run.objects.filter(kind="simclr").exists()
