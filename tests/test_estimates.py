"""cinr_web.runs.estimates: a run's cost is its steps times the step time this machine measured for that kind of run
(from finished runs in the database), and "not measured yet" when there is none. Also the one set of defaults that
the dashboard, the admin and the REST API share (cinr_web.runs.defaults)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from cinr_web.inrsets.models import INRSet
from cinr_web.runs import defaults, estimates
from cinr_web.runs.models import FitChunk, MetricPoint, Run

SPEC = {"arch": "siren", "out_dim": 1, "hidden": 8, "layers": 2, "omega0": 30.0}
SMALL = defaults.SMALL_ENCODER


@pytest.fixture
def inrset(tiny_digits_dataset):
    return INRSet.objects.create(dataset=tiny_digits_dataset, spec=SPEC, fit_config={"steps": 5}, seeds_per_image=2,
                                 status="succeeded")


def finished_run(inrset, kind: str, seconds_per_step: float, *, batch_size: int = 32, encoder=SMALL,
                 steps: int = 11, status: str = "succeeded") -> Run:
    """A finished run whose "loss" points are `seconds_per_step` apart, after a slow start-up (not counted)."""
    started = timezone.now() - timedelta(hours=1)
    run = Run.objects.create(kind=kind, inrset=inrset, status=status, progress=1.0, started_at=started,
                             finished_at=started + timedelta(seconds=1000),
                             config={"steps": steps, "batch_size": batch_size, "encoder": encoder})
    first = started + timedelta(seconds=300)  # start-up: loading the set, building the model
    MetricPoint.objects.bulk_create([
        MetricPoint(run=run, step=s, name=name, value=1.0, time=first + timedelta(seconds=s * seconds_per_step))
        for s in range(1, steps + 1) for name in ("loss", "lr")])
    return run


@pytest.mark.django_db
def test_it_says_nothing_was_measured_when_no_run_like_it_has_finished(inrset):
    finished_run(inrset, "simclr", 2.0, batch_size=64)  # another batch size
    finished_run(inrset, "supervised", 2.0)  # another kind
    finished_run(inrset, "simclr", 2.0, encoder={})  # another encoder
    finished_run(inrset, "simclr", 2.0, status="failed")
    estimate = estimates.estimate_training("simclr", inrset, {"steps": 200, "batch_size": 32, "encoder": SMALL})
    assert estimate.seconds is None and estimate.measured_runs == []
    assert "no run like this has finished on this machine yet" in estimate.text
    assert "200 steps" in estimate.text


@pytest.mark.django_db
def test_it_multiplies_the_steps_by_the_median_measured_step_time(inrset):
    runs = [finished_run(inrset, "simclr", rate) for rate in (1.0, 3.0, 2.0)]
    finished_run(inrset, "simclr", 50.0, batch_size=64)  # not this batch size: not counted
    estimate = estimates.estimate_training("simclr", inrset, {"steps": 200, "batch_size": 32, "encoder": SMALL})
    assert estimate.seconds_per_unit == pytest.approx(2.0)  # the median; the start-up is not counted
    assert estimate.seconds == pytest.approx(400.0)
    assert sorted(estimate.measured_runs) == sorted(r.pk for r in runs)
    assert estimate.text.startswith("about 7 min on this machine (200 steps × 2 s")


@pytest.mark.django_db
def test_it_uses_only_the_last_runs(inrset):
    for _ in range(estimates.MAX_RUNS):
        finished_run(inrset, "simclr", 10.0)
    newest = finished_run(inrset, "simclr", 1.0)
    Run.objects.filter(pk=newest.pk).update(finished_at=timezone.now())
    for _ in range(estimates.MAX_RUNS - 1):
        run = finished_run(inrset, "simclr", 1.0)
        Run.objects.filter(pk=run.pk).update(finished_at=timezone.now())
    estimate = estimates.estimate_training("simclr", inrset, {"steps": 10, "batch_size": 32, "encoder": SMALL})
    assert estimate.seconds_per_unit == pytest.approx(1.0) and newest.pk in estimate.measured_runs


@pytest.mark.django_db
def test_it_estimates_a_fit_from_the_seconds_per_inr_step_of_finished_fits(inrset, tiny_digits_dataset):
    dataset = tiny_digits_dataset
    assert estimates.estimate_fit(dataset, SPEC, 100, 2).seconds is None
    fit = Run.objects.create(kind="fit", inrset=inrset, status="succeeded", finished_at=timezone.now(),
                             config={"spec": SPEC, "steps": 50, "seeds_per_image": 2})
    FitChunk.objects.create(run=fit, index=0, start=0, stop=20, status="succeeded", total=40, done=40, seconds=8.0)
    FitChunk.objects.create(run=fit, index=1, start=20, stop=40, status="succeeded", total=40, done=40, seconds=8.0)
    estimate = estimates.estimate_fit(dataset, SPEC, 100, 2)
    per_inr_step = 8.0 / (40 * 50)
    assert estimate.unit == "INR-step" and estimate.units == dataset.num_images * 2 * 100
    assert estimate.seconds_per_unit == pytest.approx(per_inr_step) and estimate.measured_runs == [fit.pk]
    assert estimate.seconds == pytest.approx(dataset.num_images * 2 * 100 * per_inr_step)
    # Another architecture has not been measured.
    wider = {**SPEC, "hidden": 16}
    assert estimates.estimate_fit(dataset, wider, 100, 2).seconds is None


def test_it_writes_durations_a_person_reads():
    assert estimates.duration(42) == "42 s"
    assert estimates.duration(23 * 60) == "23 min"
    assert estimates.duration(95 * 60) == "1 h 35 min"


@pytest.mark.django_db
def test_it_gives_api_admin_and_dashboard_one_set_of_defaults(inrset, tiny_digits_dataset):
    from cinr_web.api.serializers import FitConfigSerializer, INRSetCreateSerializer
    from cinr_web.inrsets.services import normalise_fit_config
    from cinr_web.runs.admin_forms import FitForm as AdminFitForm
    from cinr_web.runs.configs import normalise_config
    from frontend.forms import FitForm

    # Independent initialisation (the paper's setting) unless a user asks for a shared one.
    assert defaults.FIT["shared_init"] is False
    assert FitForm().fields["shared_init"].initial is False
    assert AdminFitForm().fields["shared_init"].initial is False
    assert "not the paper's setting" in FitForm().fields["shared_init"].label
    assert "not the paper's setting" in AdminFitForm().fields["shared_init"].label
    api = FitConfigSerializer(data={})
    assert api.is_valid() and api.validated_data["shared_init"] is False
    import inr

    assert normalise_fit_config(inr.FieldSpec.siren(), {})["shared_init"] is False
    create = INRSetCreateSerializer(data={"dataset": tiny_digits_dataset.pk, "spec": {"arch": "siren"}})
    assert create.is_valid(), create.errors
    assert create.validated_data["seeds_per_image"] == FitForm().fields["seeds_per_image"].initial == 4
    for form in (FitForm(), AdminFitForm()):
        for name in ("arch", "hidden", "depth", "seeds_per_image", "anti_alias"):
            assert form.fields[name].initial == defaults.FIT[name], name
    # A SimCLR run that names nothing gets the same steps and batch size however it was started.
    stored = normalise_config("simclr", {}, inrset=inrset)
    assert stored["steps"] == defaults.TRAINING["simclr"]["steps"]
    assert stored["batch_size"] == defaults.TRAINING["simclr"]["batch_size"]
    assert normalise_config("simclr", {"steps": 7}, inrset=inrset)["steps"] == 7
    # ... and the `cpu` preset's encoder and recipe; a config that sets one encoder field keeps the others
    assert stored["encoder"]["neuron_stats"] is True and stored["augment"]["rotation_prob"] == 0.0
    deeper = normalise_config("simclr", {"encoder": {"layers": 3}}, inrset=inrset)["encoder"]
    assert deeper["layers"] == 3 and deeper["neuron_stats"] is True
    assert normalise_config("supervised", {})["encoder"]["neuron_stats"] is True
    # ... exactly the recipe training.reproduce runs with `--preset cpu` (optimiser, temperature and all)
    from training.presets import PRESETS

    assert stored == PRESETS["cpu"].simclr_config().to_dict()
    assert normalise_config("supervised", {}) == PRESETS["cpu"].supervised_config().to_dict()
    # a SIREN fit of grey images that names no steps or lr gets the preset's gentle fit, of colour images lr 1e-3
    # (chosen on CIFAR-10's validation split); an MFN inr.DEFAULT_FIT's
    assert normalise_fit_config(inr.FieldSpec.siren(), {})["lr"] == 2e-4
    assert normalise_fit_config(inr.FieldSpec.siren(out_dim=3), {}) == {
        "steps": 300, "lr": PRESETS["cpu"].fit_lr_for("siren", 3), "anti_alias": False, "shared_init": False}
    assert PRESETS["cpu"].fit_lr_for("siren", 3) == 1e-3
    assert normalise_fit_config(inr.FieldSpec.mfn(), {})["lr"] == inr.DEFAULT_FIT["mfn"].lr


@pytest.mark.django_db
def test_it_shows_the_cost_in_the_admin_before_a_fit_or_a_chain_starts(admin_client, inrset, tiny_digits_dataset):
    from django.urls import reverse

    page = admin_client.post(reverse("admin:datasets_imagedataset_changelist"),
                             {"action": "fit_inrs", "_selected_action": [tiny_digits_dataset.pk]})
    assert page.status_code == 200 and not INRSet.objects.exclude(pk=inrset.pk).exists()  # nothing started yet
    assert "no run like this has finished on this machine yet" in page.content.decode()
    stored = {**defaults.TRAINING["simclr"], "encoder": normalise_encoder()}
    measured = finished_run(inrset, "simclr", 2.0, batch_size=stored["batch_size"], encoder=stored["encoder"])
    page = admin_client.post(reverse("admin:inrsets_inrset_changelist"),
                             {"action": "pretrain_chain", "_selected_action": [inrset.pk]})
    text = page.content.decode()
    steps = stored["steps"]  # the preset's
    expected = (f"about {round(steps * 2 / 60)} min on this machine ({steps:,} steps × 2 s, the median of run "
                f"{measured.pk})")
    assert expected in text, text


def normalise_encoder() -> dict:
    """The encoder a SimCLR run that names none is stored with."""
    from cinr_web.runs.configs import normalise_config

    return normalise_config("simclr", {})["encoder"]
