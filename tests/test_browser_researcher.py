"""The dashboard as a researcher uses it (issue 17), in a real browser against the real server and worker
(tests/browser_fixtures.py): downloads from the run, INR set and explorer pages; "Try it" says what it changed in a
picture and clears the last answer; the favicon; what a fit will make while it runs; import buttons that go once
used; a cancel that asks first; whole-step ticks on a chart of two points. No request leaves the server, no console
error, no failed request but the one a test provokes. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import os
import re

import pytest
from PIL import Image as PILImage

from tests.api_support import fitted_inrset
from tests.browser_fixtures import ARTIFACTS, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium missing: `make system-test-deps` installs it"),
]

SMALL_ENCODER = {"d_node": 16, "d_edge": 8, "d_attn": 16, "heads": 2, "layers": 1, "d_ff": 32, "feature_dim": 12}


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def problems_of(page) -> list[str]:
    """Console errors and failed requests from now on (a list the page fills)."""
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console: {m.text} ({m.location.get('url')})")
            if m.type == "error" else None)
    page.on("response", lambda r: problems.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    return problems


def download(page, link) -> tuple[str, bytes]:
    """Clicks a download link: (the file name the browser saves it under, its bytes)."""
    with page.expect_download() as info:
        link.click()
    saved = info.value
    with open(saved.path(), "rb") as f:
        return saved.suggested_filename, f.read()


def picture(width: int, height: int, mode: str) -> bytes:
    out = io.BytesIO()
    PILImage.new(mode, (width, height), (200, 40, 40) if mode == "RGB" else 128).save(out, format="PNG")
    return out.getvalue()


def test_it_downloads_from_the_pages_and_tries_a_colour_picture(page, tiny_digits_dataset, staff_user, wait_for_run,
                                                                tmp_path):
    import inr
    from cinr_web.runs.services import start_chain
    from training.checkpoint import load_encoder

    inrset = fitted_inrset(tiny_digits_dataset)
    simclr, probe, embedding = start_chain(inrset, encoder_config={"encoder": SMALL_ENCODER, "steps": 6,
                                                                   "batch_size": 16},
                                           embedding_config={"seed": 0}, user=staff_user)
    for run in (simclr, probe, embedding):
        assert wait_for_run(run, timeout=240).status == "succeeded"
    problems = problems_of(page)

    page.goto(f"/runs/{simclr.pk}/")
    name, data = download(page, page.get_by_role("link", name="checkpoint.safetensors"))
    assert name == f"cinr-run-{simclr.pk}-checkpoint.safetensors"
    (tmp_path / name).write_bytes(data)
    assert load_encoder(tmp_path / name).spec == inrset.field_spec
    shot(page, "researcher-run-downloads")
    name, data = download(page, page.locator("#probe-download"))  # the probe panel's result, from the encoder's page
    assert name == f"cinr-run-{probe.pk}-probe.json" and b'"accuracy"' in data

    page.goto(f"/inrsets/{inrset.pk}/")
    name, data = download(page, page.get_by_role("link", name="weights (safetensors)"))
    assert name == f"cinr-inrset-{inrset.pk}-weights.safetensors" and inr.load(data)[1]["layer0.weight"].shape[0] == 80

    page.goto(f"/runs/{simclr.pk}/explorer/")
    page.wait_for_function("Number(document.getElementById('map-encoder').dataset.points || 0) > 0")
    name, data = download(page, page.locator("#map-downloads").get_by_role("link", name="CSV"))
    rows = list(csv.DictReader(io.StringIO(data.decode())))
    assert name == f"cinr-run-{embedding.pk}-embedding.csv" and len(rows) == 80 and "feature_11" in rows[0]

    # Try it with a colour picture of another size: both conversions are stated, the ★ is placed.
    colour = tmp_path / "red.png"
    colour.write_bytes(picture(20, 12, "RGB"))
    page.locator("#try-file").set_input_files(str(colour))
    page.get_by_role("button", name="Embed it").click()
    page.locator("#try-result").wait_for(state="visible", timeout=60_000)
    said = page.locator("#try-conversions").inner_text()
    assert "colour (RGB) converted to grey" in said and "resized from 20×12 to 8×8 pixels" in said
    assert "stretched" in said
    stars = "document.getElementById('map-encoder').data.filter(t => t.marker && t.marker.symbol === 'star').length"
    assert page.evaluate(stars) == 1
    shot(page, "researcher-try-it-conversions")

    # A file that is no picture: the error, and nothing left of the last answer.
    junk = tmp_path / "notes.png"
    junk.write_bytes(b"these are notes, not a picture")
    page.locator("#try-file").set_input_files(str(junk))
    page.get_by_role("button", name="Embed it").click()
    page.locator("#try-error").wait_for(state="visible", timeout=30_000)
    error = page.locator("#try-error").inner_text()
    assert "notes.png: not a readable image" in error and "0x" not in error and "BytesIO" not in error
    assert page.locator("#try-result").is_hidden() and page.locator("#try-class").inner_text() == ""
    assert page.evaluate(stars) == 0
    shot(page, "researcher-try-it-error")
    try_url = f"/runs/{simclr.pk}/try/"
    assert [p for p in problems if try_url not in p and "status of 400" not in p] == [], problems


def test_it_asks_before_cancelling_and_says_what_a_running_fit_will_make(page, tiny_digits_dataset):
    import inr
    from cinr_web.inrsets.models import INRSet
    from cinr_web.runs.models import MetricPoint, Run

    problems = problems_of(page)
    icon = page.request.get("/favicon.ico")  # what a browser asks for on pages without an icon link (the admin)
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")

    # Built-in imports: a button goes once its dataset is in.
    page.goto("/")
    imports = page.locator("#import-builtins")
    imports.get_by_role("button", name=re.compile("Import scikit-learn digits")).click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"), timeout=60_000)
    page.goto("/")
    assert imports.get_by_role("button", name=re.compile("digits")).count() == 0
    assert imports.get_by_role("button", name=re.compile("MNIST-5k")).count() == 1
    shot(page, "researcher-overview-import-gone")

    # An upload error names the file as it was sent.
    page.goto("/datasets/new/")
    page.get_by_label("Dataset name").fill("with-a-bad-file")
    page.locator("#upload-files").set_input_files([
        {"name": "good.png", "mimeType": "image/png", "buffer": picture(8, 8, "L")},
        {"name": "bad.png", "mimeType": "image/png", "buffer": b"not a picture"}])
    page.get_by_role("button", name="Upload").click()
    page.locator("#upload-error").wait_for(state="visible", timeout=30_000)
    error = page.locator("#upload-error").inner_text()
    assert "bad.png: not a readable image" in error and "000001-" not in error and "0x" not in error, error
    shot(page, "researcher-upload-error")
    problems[:] = [p for p in problems if "/api/datasets/upload/" not in p and "status of 400" not in p]

    # A fit in progress says how many INRs it will make, not "0 INRs".
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec=inr.FieldSpec.siren().to_dict(),
                                   seeds_per_image=2, status="running")
    fit = Run.objects.create(kind="fit", status="running", inrset=inrset, config={"steps": 300})
    page.goto(f"/inrsets/{inrset.pk}/")
    assert page.locator("#planned-inrs").inner_text() == "80 INRs when fitted"
    shot(page, "researcher-inrset-planned")

    # Cancel asks first: dismissed, nothing happens; accepted, the run is cancelled.
    page.goto(f"/runs/{fit.pk}/")
    questions: list[str] = []
    page.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Cancel run").click()
    page.wait_for_timeout(300)
    fit.refresh_from_db()
    assert questions and "Cancel run" in questions[0] and not fit.cancel_requested and fit.status == "running"
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Cancel run").click()
    page.wait_for_url(re.compile(rf"/runs/{fit.pk}/$"))
    fit.refresh_from_db()
    assert fit.cancel_requested or fit.status == "cancelled"

    # A chart of two points has ticks at whole steps.
    run = Run.objects.create(kind="simclr", status="succeeded", inrset=inrset, config={"steps": 2})
    for step, value in ((1, 4.2), (2, 3.9)):
        MetricPoint.objects.create(run=run, step=step, name="loss", value=value, time="2026-12-03T10:00Z")
    page.goto(f"/runs/{run.pk}/")
    page.wait_for_function("Number(document.getElementById('chart-loss').dataset.points || 0) === 2")
    ticks = page.locator("#chart-loss .xtick text").all_text_contents()
    assert ticks and all(re.fullmatch(r"\d+", t) for t in ticks), ticks
    shot(page, "researcher-two-point-chart")
    assert problems == [], problems
