"""The whole pipeline on a real worker: fit -> SimCLR pretraining -> linear probe -> embedding map, on tiny digits;
training runs that fail, get cancelled, or run over their budget; the probe artifact round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cinr_web.inrsets.services import start_fit
from cinr_web.runs.artifacts import load_encoder, load_encoder_map, load_maps, load_probe
from cinr_web.runs.models import Artifact, MetricPoint, Run
from cinr_web.runs.services import cancel_run, start_chain, start_run
from inr import FieldSpec
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

SPEC = FieldSpec.siren(hidden=8, layers=3)
FIT = {"steps": 40, "lr": 1e-3}
TINY_ENCODER = {"d_node": 16, "d_edge": 8, "d_attn": 16, "heads": 2, "layers": 1, "d_ff": 32, "feature_dim": 16}
TINY_SIMCLR = {"encoder": TINY_ENCODER, "steps": 6, "batch_size": 8, "optim": {"warmup_steps": 2},
               "checkpoint_every": 0}


def test_the_fit_pretrain_probe_embedding_chain(celery_worker, tiny_digits_dataset, wait_for_run):
    inrset = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2)
    simclr, probe, embedding = start_chain(inrset, encoder_config=TINY_SIMCLR,
                                           embedding_config={"seed": 0, "max_points": 40})
    assert (simclr.parent, probe.parent, embedding.parent) == (inrset.fit_run, simclr, simclr)
    assert simclr.dispatched_at is None  # waits for the fit

    for run in (inrset.fit_run, simclr, probe, embedding):
        run = wait_for_run(run, timeout=180)
        assert run.status == "succeeded", f"{run}: {run.error}"
        assert run.progress == 1.0 and run.started_at <= run.finished_at

    simclr.refresh_from_db()
    names = set(MetricPoint.objects.filter(run=simclr).values_list("name", flat=True))
    assert {"loss", "lr", "top1", "top5"} <= names
    assert MetricPoint.objects.filter(run=simclr, name="loss").count() == 6
    assert simclr.result["steps"] == 6 and simclr.result["feature_dim"] == 16
    assert 0 < simclr.result["reporting_seconds"] < simclr.result["seconds"]  # the Reporter's share of the run
    encoder, head = load_encoder(simclr.artifact("checkpoint"))
    assert head is None and encoder.spec == SPEC
    inrset.refresh_from_db()
    dataset = inrset.load()
    with torch.no_grad():
        assert encoder.encode_params({k: v[:3] for k, v in dataset.params.items()}).shape == (3, 16)

    probe.refresh_from_db()
    result = probe.result
    assert 0.0 <= result["accuracy"] <= 100.0 and 0.0 <= result["raw_weights_accuracy"] <= 100.0
    assert result["num_train"] == 60 and result["num_test"] == 20  # 30 / 10 images x 2 seeds
    assert np.array(result["confusion"]).sum() == 20 and len(result["class_names"]) == 10
    head = load_probe(probe.artifact("probe"))
    assert head.predict_proba(np.zeros((2, 16))).shape == (2, 10)

    embedding.refresh_from_db()
    maps = load_maps(embedding)
    assert len(maps["encoder"]["x"]) == len(maps["raw"]["x"]) == len(maps["labels"]) == 40
    assert set(maps["split"]) == {"train", "test"} and maps["classes"] == [str(d) for d in range(10)]
    assert all(np.isfinite(maps["encoder"]["x"])) and all(np.isfinite(maps["raw"]["y"]))
    # the artifact holds the encoder features the map was made from, row for row (the model API places new INRs
    # with them instead of encoding the mapped INRs again)
    encoder_map = load_encoder_map(embedding)
    assert encoder_map.features.dtype == np.float32 and encoder_map.features.shape == (40, 16)
    assert encoder_map.inr_index.tolist() == maps["inr_index"]
    np.testing.assert_allclose(encoder_map.xy[:, 0], maps["encoder"]["x"], rtol=1e-6)
    with torch.no_grad():
        expected = encoder.encode_params({k: v[encoder_map.inr_index] for k, v in dataset.params.items()})
    np.testing.assert_allclose(encoder_map.features, expected.numpy(), rtol=1e-4, atol=1e-5)


def test_the_probe_artifact_predicts_like_the_probe(db, tmp_path):
    from cinr_web.runs.artifacts import probe_bytes
    from cinr_web.runs.work import store_artifact_bytes
    from training.probe import linear_probe

    generator = np.random.default_rng(0)
    for classes in (2, 4):
        x = generator.normal(size=(80, 5))
        y = np.arange(80) % classes
        x[:, 0] += y * 2.0
        result = linear_probe(x[:60], y[:60], x[60:], y[60:], [f"c{i}" for i in range(classes)])
        run = Run.objects.create(kind="probe", config={})
        artifact = store_artifact_bytes(run, Artifact.Kind.PROBE, "probe.safetensors", probe_bytes(result, "raw"), {})
        head = load_probe(artifact)
        new = generator.normal(size=(7, 5))
        np.testing.assert_allclose(head.predict_proba(new), result.predict_proba(new), rtol=1e-9, atol=1e-12)


def test_a_cancelled_pretraining_stops_quickly_and_keeps_its_points(celery_worker, tiny_digits_dataset,
                                                                    wait_for_run):
    inrset = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2)
    assert wait_for_run(inrset.fit_run).status == "succeeded"
    run = start_run("simclr", inrset, {**TINY_SIMCLR, "steps": 100_000})
    wait_for(lambda: MetricPoint.objects.filter(run=run).count() >= 2, timeout=60, what="SimCLR points")
    cancel_run(run)
    run = wait_for_run(run, timeout=15)
    assert run.status == "cancelled" and run.error == ""
    assert MetricPoint.objects.filter(run=run, name="loss").exists()
    assert not run.artifacts.exists()


def test_a_failing_training_run_is_failed_with_its_error(celery_worker, tiny_digits_dataset, wait_for_run):
    inrset = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2)
    # A learning rate that blows the loss up: training raises, the run fails with the reason, the chain stops.
    diverging = {**TINY_SIMCLR, "steps": 200, "optim": {"lr": 1e30, "warmup_steps": 0, "grad_clip": 0.0}}
    simclr, probe, embedding = start_chain(inrset, encoder_config=diverging)
    simclr = wait_for_run(simclr, timeout=120)
    assert simclr.status == "failed"
    assert "FloatingPointError" in simclr.error and "learning rate" in simclr.error
    for child in (probe, embedding):
        child.refresh_from_db()
        assert child.status == "cancelled" and f"parent run {simclr.pk} failed" in child.error


def test_a_training_run_over_its_budget_fails_and_keeps_history(celery_worker, tiny_digits_dataset, wait_for_run):
    inrset = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2)
    run = start_run("supervised", inrset, {"encoder": TINY_ENCODER, "steps": 100_000, "batch_size": 8,
                                          "max_seconds": 2}, parent=inrset.fit_run)
    run = wait_for_run(run, timeout=120)
    assert run.status == "failed" and "time limit of 2 s" in run.error
    assert MetricPoint.objects.filter(run=run, name="accuracy").exists()


def test_simclr_needs_two_seeds_and_known_settings(celery_worker, tiny_digits_dataset, wait_for_run):
    one_seed = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=1)
    with pytest.raises(ValueError, match="seeds_per_image >= 2"):
        start_run("simclr", one_seed, {})
    two = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=2)
    with pytest.raises(ValueError, match="unknown settings"):
        start_run("simclr", two, {"encoder": {"widht": 3}})
    with pytest.raises(ValueError, match="divisible"):
        start_run("simclr", two, {"encoder": {"d_attn": 15, "heads": 2}})
    run = start_run("simclr", two, {"steps": 3})
    assert run.config["steps"] == 3 and run.config["encoder"]["feature_dim"] == 128  # defaults filled in
    # Nothing may still run on the worker thread when the test's tables are flushed (a write during the TRUNCATE
    # deadlocks it): wait for every run this test started.
    for started in (one_seed.fit_run, two.fit_run, run):
        assert wait_for_run(started, timeout=180).status == "succeeded"


def test_map_rows_take_first_seeds_first():
    from cinr_web.runs.work import map_rows

    seeds = torch.tensor([0, 1, 0, 1, 0, 1])  # 3 images x 2 seeds, image-major
    dataset = type("Rows", (), {"seed": seeds, "__len__": lambda self: 6})()
    rows = map_rows(dataset, 4, seed=0)
    assert rows.tolist() == sorted(rows.tolist()) and len(rows) == 4
    assert set(rows.tolist()) >= {0, 2, 4} and (seeds[rows] == 1).sum() == 1
    assert map_rows(dataset, 100, seed=0).tolist() == list(range(6))


def test_a_raw_weights_probe_and_map(celery_worker, tiny_digits_dataset, wait_for_run):
    inrset = start_fit(tiny_digits_dataset, SPEC, FIT, seeds_per_image=1)
    probe = start_run("probe", inrset, {}, parent=inrset.fit_run)
    embedding = start_run("embedding", inrset, {"max_points": 30, "seed": 3}, parent=inrset.fit_run)
    probe, embedding = wait_for_run(probe), wait_for_run(embedding)
    assert probe.status == embedding.status == "succeeded", probe.error + embedding.error
    assert probe.result["feature"] == "raw" and "raw_weights_accuracy" not in probe.result
    assert probe.result["feature_dim"] == SPEC.num_params
    maps = load_maps(embedding)
    assert maps["encoder"] is None and len(maps["raw"]["x"]) == 30 == len(set(maps["image_index"]))
    assert load_encoder_map(embedding) is None  # no encoder: no encoder map, no features stored
