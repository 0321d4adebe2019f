"""The dashboard in a real browser: Playwright drives Debian's Chromium against the real ASGI server (daphne, HTTP and
websockets) with a real Celery worker, PostgreSQL and Redis. Screenshots go to test-artifacts/.

The ASGI server runs in a thread of this process, so it shares the test database, MEDIA_ROOT and Redis prefixes that
tests/conftest.py set up; tests are transactional so the server and the worker see their rows.
"""

from __future__ import annotations

import base64
import io
import os
import re
import time
import zipfile

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.browser_fixtures import ARTIFACTS, CHROMIUM  # its fixtures (asgi_server, browser, page): tests/conftest.py

SIMCLR_STEPS = 200  # long enough for the page to see points arrive while it runs (60 took 1 s on 2 idle cores)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Chromium missing: `make system-test-deps` installs it"),
]


def goto_past_own_reload(page, url: str) -> None:
    """page.goto, where the page may still reload itself: run.js reloads once when its run finishes, and in a tab that
    was in the background that timer can fire just as the test navigates ("interrupted by another navigation")."""
    from playwright.sync_api import Error as PlaywrightError

    page.bring_to_front()  # a background tab's timers are throttled: its reload may come late, mid-navigation
    for _ in range(5):
        try:
            page.goto(url)
            return
        except PlaywrightError as error:
            if "interrupted by another navigation" not in str(error):
                raise
            # let the page's own reload finish before navigating again (retrying at once only interrupts it anew)
            page.wait_for_load_state("load")
            page.wait_for_timeout(2000)
    page.goto(url)


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def digits_png(digit: int) -> bytes:
    """One 8x8 grey scikit-learn digit as PNG bytes."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    i = int(np.flatnonzero(digits.target == digit)[-1])  # the last one: not among the tiny set's first four
    png = io.BytesIO()
    PILImage.fromarray((digits.images[i] / 16.0 * 255.0).round().astype(np.uint8), mode="L").save(png, format="PNG")
    return png.getvalue()


def digits_zip(per_class: int = 3, classes: int = 3) -> bytes:
    """A zip of <class>/<n>.png 8x8 grey digits from scikit-learn (no network, no shared data)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for c in range(classes):
            for n, i in enumerate(np.flatnonzero(digits.target == c)[:per_class]):
                pixels = (digits.images[i] / 16.0 * 255.0).round().astype(np.uint8)
                png = io.BytesIO()
                PILImage.fromarray(pixels, mode="L").save(png, format="PNG")
                archive.writestr(f"digit-{c}/{n}.png", png.getvalue())
    return buffer.getvalue()


def test_it_uploads_a_zip_by_drag_and_drop_and_shows_its_images(page, tmp_path):
    from cinr_web.datasets.models import ImageDataset

    page.goto("/datasets/new/")
    page.get_by_label("Dataset name").fill("browser-digits")
    # Drag and drop: a real drop event carrying the zip in its DataTransfer.
    drop = page.evaluate_handle("""(b64) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const transfer = new DataTransfer();
        transfer.items.add(new File([bytes], "digits.zip", { type: "application/zip" }));
        return transfer;
    }""", base64.b64encode(digits_zip(per_class=3, classes=3)).decode())
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": drop})
    assert "digits.zip" in page.locator("#upload-chosen").inner_text()
    shot(page, "upload-chosen")
    # Record what the progress bar shows (in sessionStorage, which survives the redirect that follows).
    page.evaluate("""() => {
        const bar = document.getElementById("upload-progress");
        sessionStorage.setItem("progressSeen", "");
        new MutationObserver(() => {
            const seen = sessionStorage.getItem("progressSeen");
            if (!bar.hidden) sessionStorage.setItem("progressSeen", seen + " " + bar.value);
        }).observe(bar, { attributes: true });
    }""")
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"), timeout=30_000)
    dataset = ImageDataset.objects.get(name="browser-digits")
    assert page.url.endswith(f"/datasets/{dataset.pk}/")
    seen = [float(v) for v in page.evaluate("sessionStorage.getItem('progressSeen')").split()]
    assert seen and seen[-1] == 1.0, seen  # only the XHR's upload events move the bar
    images = page.locator("#image-grid img")
    assert images.count() == 9
    # Every image actually loaded (naturalWidth > 0), through the API's authenticated PNG route.
    page.wait_for_function("Array.from(document.querySelectorAll('#image-grid img'))"
                           ".every(i => i.complete && i.naturalWidth === 8)")
    assert "digit-2" in page.locator("#image-grid").inner_text()
    shot(page, "dataset-after-upload")

    # A bad upload: the error is shown inline and nothing is stored.
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr("cats/not-an-image.png", b"this is not a png")
    page.goto("/datasets/new/")
    page.get_by_label("Dataset name").fill("browser-bad")
    page.locator("#upload-files").set_input_files(str(bad))
    page.get_by_role("button", name="Upload").click()
    error = page.locator("#upload-error")
    error.wait_for(state="visible", timeout=30_000)
    assert "not-an-image.png" in error.inner_text()
    assert not ImageDataset.objects.filter(name="browser-bad").exists()
    shot(page, "upload-error")

    # Loose images (chosen with the file picker) all get the class name typed in.
    for digit in (4, 7):
        (tmp_path / f"digit-{digit}.png").write_bytes(digits_png(digit))
    page.goto("/datasets/new/")
    page.get_by_label("Dataset name").fill("browser-loose")
    page.get_by_label("Class name").fill("scribble")
    page.locator("#upload-files").set_input_files([str(tmp_path / "digit-4.png"), str(tmp_path / "digit-7.png")])
    page.get_by_role("button", name="Upload").click()
    page.wait_for_url(re.compile(r"/datasets/\d+/$"), timeout=30_000)
    loose = ImageDataset.objects.get(name="browser-loose")
    assert loose.num_images == 2 and loose.class_names == ["scribble"]


def loaded(page, selector: str, width: int | None = None, timeout: float = 30_000) -> None:
    """Waits until the <img> at `selector` has loaded (optionally at a given natural width)."""
    check = f"i.naturalWidth === {width}" if width else "i.naturalWidth > 0"
    page.wait_for_function(f"(() => {{ const i = document.querySelector('{selector}'); "
                           f"return i && i.complete && {check}; }})()", timeout=timeout)


def start_tiny_fit(page, dataset) -> int:
    """Fills the dataset page's fit form (tiny SIREN, few steps) and returns the new INR set's id."""
    page.goto(f"/datasets/{dataset.pk}/")
    page.get_by_label("Architecture").select_option("siren")
    page.get_by_label("Hidden width").fill("16")
    page.get_by_label("Layers / filters").fill("2")
    page.get_by_label("Seeds per image").fill("2")
    page.get_by_label("Steps").fill("150")
    page.get_by_role("button", name="Start fitting").click()
    page.wait_for_url(re.compile(r"/inrsets/\d+/"), timeout=30_000)
    return int(re.search(r"/inrsets/(\d+)/", page.url).group(1))


def test_it_fits_a_tiny_set_and_shows_reconstructions_and_augmentations(page, tiny_digits_dataset):
    from cinr_web.inrsets.models import INRSet

    inrset_id = start_tiny_fit(page, tiny_digits_dataset)
    # The page follows the fit over its websocket and reloads itself when the fit has finished.
    finished = "['succeeded', 'failed', 'cancelled'].includes(document.querySelector('#fit-panel [data-status]')" \
               ".textContent.trim()) && document.readyState === 'complete'"
    page.wait_for_function(finished, timeout=90_000)
    inrset = INRSet.objects.get(pk=inrset_id)
    assert inrset.status == "succeeded", inrset.fit_run.error
    page.locator("#views").wait_for(state="visible", timeout=30_000)
    loaded(page, "#view-original", 8)
    loaded(page, "#view-reconstruction", 8)
    loaded(page, "#view-4x", 32)
    loaded(page, "#view-spectrum", 32)
    page.wait_for_function("document.getElementById('band-facts').textContent.includes('outside the grid')")
    assert page.locator("#fit-panel [data-status]").inner_text() == "succeeded"
    page.wait_for_function("document.querySelector('#psnr-histogram .bars') !== null")
    shot(page, "inrset-after-fit")

    # Augmentations re-render through the render API.
    page.get_by_label("Rotation").fill("90")
    page.wait_for_function("(document.getElementById('aug-after').dataset.query || '').includes('rotate=90')")
    loaded(page, "#aug-after", 32)
    page.get_by_label("Permute neurons").check()
    page.wait_for_function("(document.getElementById('aug-after').dataset.query || '').includes('permute=true')")
    loaded(page, "#pair-a", 32)
    loaded(page, "#pair-b", 32)
    assert "seed 0" in page.locator("#pair-a-caption").inner_text()
    assert "seed 1" in page.locator("#pair-b-caption").inner_text()
    # Another image, from the keyboard.
    page.get_by_role("button", name="Next image").focus()
    page.keyboard.press("Enter")
    page.wait_for_function("document.getElementById('view-original').src.endsWith('/1/image.png')")
    loaded(page, "#view-reconstruction", 8)
    shot(page, "inrset-augmented")

    # The fit's run page draws its history; the overview lists the set as succeeded.
    page.goto(f"/runs/{inrset.fit_run.pk}/")
    page.wait_for_function("Number(document.getElementById('chart-loss').dataset.points || 0) > 0")
    shot(page, "fit-run-page")
    page.goto("/")
    assert page.locator(f"[data-live-inrset='{inrset_id}'] [data-status]").inner_text() == "succeeded"
    shot(page, "overview")


def test_it_shows_the_api_page_with_the_users_token(page):
    from rest_framework.authtoken.models import Token

    page.goto("/api-help/")
    token = page.get_by_role("textbox", name="Token").input_value()
    assert token == Token.objects.get(user__username="browser").key
    assert token in page.locator("#curl-example").inner_text()
    shot(page, "api-page")


def poll(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


def fitted_set(dataset, steps: int = 100, spec=None, anti_alias: bool = False):
    """A tiny INR set of `dataset` (2 seeds per image; SIREN unless `spec`), fitted by the real worker."""
    import inr
    from cinr_web.inrsets.models import INRSet
    from cinr_web.inrsets.services import start_fit

    spec = spec or inr.FieldSpec.siren(hidden=16, layers=2)
    inrset = start_fit(dataset, spec, {"steps": steps, "anti_alias": anti_alias}, 2, None)
    inrset = poll(lambda: INRSet.objects.filter(pk=inrset.pk, status__in=["succeeded", "failed"]).first(), 60,
                  "the fit")
    assert inrset.status == "succeeded", inrset.fit_run.error
    return inrset


def test_it_shows_the_spectra_of_an_mfn_fitted_with_and_without_anti_aliasing(page, tiny_digits_dataset):
    import inr

    spec = inr.FieldSpec.mfn(hidden=16, filters=3)
    plain = fitted_set(tiny_digits_dataset, steps=150, spec=spec, anti_alias=False)
    clamped = fitted_set(tiny_digits_dataset, steps=150, spec=spec, anti_alias=True)
    page.goto(f"/inrsets/{plain.pk}/?image=2")
    for selector in ("#view-4x", "#view-spectrum", "#twin-4x", "#twin-spectrum"):
        loaded(page, selector, 32)
    assert f"/api/inrsets/{clamped.pk}/inrs/4/" in page.locator("#twin-spectrum").get_attribute("src")
    page.wait_for_function("document.getElementById('band-facts').textContent.includes('Band limit')")
    page.locator("#viewer").scroll_into_view_if_needed()
    shot(page, "mfn-spectra")


# Loss points that came over the websocket (not in the history) before the run finished, and are drawn.
LIVE_POINTS_WHILE_RUNNING = """() => {
  const chart = document.getElementById('chart-loss');
  const panel = document.getElementById('run-panel');
  return Number(panel.dataset.liveWhileRunning || 0) >= 3 && Number(chart.dataset.livePoints || 0) >= 3
    && Number(chart.dataset.points || 0) >= 3;
}"""


def test_it_streams_a_simclr_run_live_then_explores_its_embedding(page, tiny_digits_dataset, tmp_path):
    from cinr_web.runs.models import Run

    inrset = fitted_set(tiny_digits_dataset)
    page.goto(f"/inrsets/{inrset.pk}/")
    page.get_by_label("Kind").select_option("simclr")
    page.get_by_label("Steps").fill(str(SIMCLR_STEPS))
    page.get_by_label("Batch size").fill("16")
    page.get_by_label("Encoder").select_option("small")
    page.get_by_role("button", name="Start", exact=True).click()
    page.wait_for_url(re.compile(r"/runs/\d+/$"), timeout=30_000)
    run = Run.objects.get(pk=int(re.search(r"/runs/(\d+)/", page.url).group(1)))
    assert run.kind == "simclr"

    # The overview, open in a second tab, follows the run live (no reload: the marker survives).
    overview = page.context.new_page()
    overview.goto("/")
    overview.evaluate("window.notReloaded = true")
    page.bring_to_front()
    # While it runs, the clock counts the time elapsed (checked by polling the page as it runs: a tiny run can end
    # before a later read, and then the clock rightly says "took").
    page.wait_for_function("document.getElementById('run-clock').innerText.includes('elapsed')", timeout=60_000)
    # Points arrive over the websocket while the run is running (the page never polls).
    page.wait_for_function(LIVE_POINTS_WHILE_RUNNING, timeout=60_000)
    shot(page, "simclr-run-live")
    run = poll(lambda: Run.objects.filter(pk=run.pk, status__in=["succeeded", "failed", "cancelled"]).first(), 120,
               "the SimCLR run")
    assert run.status == "succeeded", run.error
    children = poll(lambda: [c for c in run.children.all() if c.is_finished] if run.children.filter(
        status__in=["succeeded", "failed", "cancelled"]).count() == 2 else None, 120, "probe and embedding runs")
    assert all(c.status == "succeeded" for c in children), [(c.kind, c.error) for c in children]
    overview.wait_for_function(f"document.querySelector(\"[data-live-run='{run.pk}'] [data-status]\").textContent"
                               " === 'succeeded' && window.notReloaded === true", timeout=30_000)
    shot(overview, "overview-live")
    overview.close()

    goto_past_own_reload(page, f"/runs/{run.pk}/")
    page.locator("#probe-panel").wait_for(state="visible")
    page.wait_for_function("document.querySelector('#confusion .heatmaplayer, #confusion .hm') !== null")
    assert "test accuracy" in page.locator("#h-probe").inner_text()
    baselines = page.locator("#probe-baselines").inner_text()
    assert f"encoder run {run.pk}" in baselines and "raw, flattened weights" in baselines
    assert "untrained (random weights)" in baselines and "chance" in baselines
    page.wait_for_function("Number(document.getElementById('chart-acc').dataset.points || 0) > 0")
    shot(page, "simclr-run-done")

    # The embedding explorer: hover a point, see its reconstruction.
    page.get_by_role("link", name="Open the embedding explorer").click()
    page.wait_for_function("Number(document.getElementById('map-encoder').dataset.points || 0) > 0")
    point = page.locator("#map-encoder .scatterlayer .point").first
    box = point.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    loaded(page, "#hover-image", 32)
    assert "INR" in page.locator("#hover-text").inner_text()
    shot(page, "explorer-hover")
    # Coloured by seed: one legend entry per seed, so a map that sorts INRs by initialisation shows it.
    page.get_by_label("Colour by").select_option("seed")
    page.wait_for_function("document.getElementById('map-encoder').dataset.colourBy === 'seed'")
    legend = page.locator("#map-raw .legend").text_content()
    assert "seed 0" in legend and "seed 1" in legend
    shot(page, "explorer-by-seed")
    page.get_by_label("Colour by").select_option("class")

    # Try it: drop one image; it is fitted, embedded, classified and placed on the map.
    picture = tmp_path / "three.png"
    picture.write_bytes(digits_png(3))
    page.locator("#try-file").set_input_files(str(picture))
    page.get_by_role("button", name="Embed it").click()
    page.locator("#try-result").wait_for(state="visible", timeout=60_000)
    assert page.locator("#try-class").inner_text() in tiny_digits_dataset.class_names
    assert page.locator("#try-probs tr").count() == len(tiny_digits_dataset.class_names)
    assert page.locator("#try-views img").count() >= 3
    shot(page, "explorer-try-it")

    # ... or one INR weight file (inr.save) of the set's architecture.
    import inr

    data = inrset.load()
    weights = tmp_path / "inr-5.safetensors"
    inr.save(weights, data.spec, {name: value[5:6] for name, value in data.params.items()})
    page.locator("#try-file").set_input_files(str(weights))
    page.get_by_role("button", name="Embed it").click()
    page.wait_for_function("document.getElementById('try-state').textContent === 'Embedded.'", timeout=30_000)
    assert page.locator("#try-class").inner_text() in tiny_digits_dataset.class_names

    # Two runs on one chart.
    page.goto(f"/runs/compare/?run={run.pk}&run={inrset.fit_run.pk}&metric=loss")
    page.wait_for_function("document.querySelectorAll('#compare-chart .scatterlayer .trace').length === 2")
    shot(page, "compare")

    # Clicking a point opens that INR on its set's page.
    page.goto(f"/runs/{run.pk}/explorer/")
    page.wait_for_function("Number(document.getElementById('map-encoder').dataset.points || 0) > 0")
    box = page.locator("#map-raw .scatterlayer .point").first.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.wait_for_url(re.compile(rf"/inrsets/{inrset.pk}/\?image=\d+"), timeout=30_000)


# -- the dashboard as a researcher uses it (issue 17): truthful live fit charts, time, explanations ------------------

FIT_SEEN_LIVE = """() => {
  const running = document.querySelector('#fit-panel [data-status]').textContent.trim() === 'running';
  const live = Number(document.getElementById('fit-psnr-chart').dataset.livePoints || 0);
  const clock = document.getElementById('fit-clock').textContent;
  if (running && live > 0 && !window.firstLive) window.firstLive = live;
  if (running && live >= 3) window.sawPoints = true;
  if (running && window.firstLive && live > window.firstLive) window.sawGrowth = true;
  if (running && clock.includes(' left') && clock.includes('elapsed')) window.sawClock = true;
  return Boolean(window.sawPoints && window.sawGrowth && window.sawClock);
}"""
# The form's most: ~7 s for the tiny set on 2 idle cores (6,000 took 2 s, over before the page had connected)
FIT_STEPS = 20000


def console_errors(page) -> list[str]:
    """The console's error messages from now on (a list the page fills)."""
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    return errors


def test_it_draws_a_fit_live_by_step_with_its_time_and_then_estimates_the_next(page, tiny_digits_dataset):
    from cinr_web.inrsets.models import INRSet

    errors = console_errors(page)
    page.goto(f"/datasets/{tiny_digits_dataset.pk}/")
    assert not page.get_by_label("Same initialisation for every image (not the paper's setting)").is_checked()
    page.get_by_label("Hidden width").fill("16")
    page.get_by_label("Layers / filters").fill("2")
    page.get_by_label("Steps").fill(str(FIT_STEPS))
    estimate = page.locator("#fit-estimate")
    assert "no run like this has finished on this machine yet" in estimate.inner_text()
    page.get_by_role("button", name="Start fitting").click()
    page.wait_for_url(re.compile(r"/inrsets/\d+/"), timeout=30_000)
    inrset_id = int(re.search(r"/inrsets/(\d+)/", page.url).group(1))

    # While it runs, the PSNR chart gains points pushed over the websocket, by step of the fit (not by chunk), and
    # the clock shows the time elapsed and left. Polled on every frame and remembered, so that a fit that ends
    # within seconds on an idle machine is seen while it ran, not read after it ended.
    page.wait_for_function(FIT_SEEN_LIVE, timeout=60_000)
    assert page.locator("#fit-psnr-chart .xtitle").text_content() == "fit step"
    assert page.locator("#fit-psnr-chart .ytitle").text_content() == "mean PSNR (dB)"
    assert page.locator("#fit-loss-chart .ytitle").text_content() == "mean MSE (log scale)"
    shot(page, "fit-live-by-step")

    inrset = poll(lambda: INRSet.objects.filter(pk=inrset_id, status__in=["succeeded", "failed"]).first(), 120,
                  "the fit")
    assert inrset.status == "succeeded", inrset.fit_run.error
    # The run page: loss and PSNR panels, no learning-rate panel (a fit has none); the curve ends near the set's PSNR.
    goto_past_own_reload(page, f"/runs/{inrset.fit_run.pk}/")
    page.wait_for_function("Number(document.getElementById('chart-acc').dataset.points || 0) > 0")
    assert page.locator("#chart-lr").count() == 0 and page.locator("#chart-loss").count() == 1
    last_psnr = float(re.search(r"psnr_mean ([\d.]+) @ step " + str(FIT_STEPS),
                                page.locator("#run-latest").inner_text()).group(1))
    assert abs(last_psnr - inrset.psnr_mean) < 0.5, (last_psnr, inrset.psnr_mean)
    assert page.locator("#run-clock").inner_text().startswith("took ")
    shot(page, "fit-run-panels")

    # The training form says what a run will cost, and with nothing measured starts from "quick on a CPU".
    page.goto(f"/inrsets/{inrset.pk}/")
    assert page.get_by_label("Preset").input_value() == "quick on a CPU"
    assert "no run like this has finished on this machine yet" in page.locator("#train-estimate").inner_text()
    page.get_by_label("Preset").select_option("the defaults")
    from cinr_web.runs.defaults import preset_config
    assert page.get_by_label("Steps").input_value() == str(preset_config("simclr", "the defaults")["steps"])
    assert page.get_by_label("Encoder").input_value() == "default"
    shot(page, "train-form-estimate")

    # The next fit of the same kind is estimated from this one's measured seconds per INR-step.
    page.goto(f"/datasets/{tiny_digits_dataset.pk}/")
    page.get_by_label("Hidden width").fill("16")
    page.get_by_label("Layers / filters").fill("2")
    page.get_by_label("Steps").fill(str(FIT_STEPS))
    text = estimate.inner_text()
    assert "on this machine" in text and f"run {inrset.fit_run.pk}" in text, text
    shot(page, "fit-estimate-measured")
    assert not errors, errors


def test_it_explains_a_probe_and_links_the_chained_probe_while_it_waits(page, tiny_digits_dataset):
    from django.utils import timezone

    from cinr_web.inrsets.models import INRSet
    from cinr_web.runs.models import MetricPoint, Run

    errors = console_errors(page)
    inrset = INRSet.objects.create(dataset=tiny_digits_dataset, spec={"arch": "siren", "out_dim": 1, "hidden": 8,
                                                                      "layers": 2, "omega0": 30.0},
                                   fit_config={"steps": 5}, seeds_per_image=2, status="succeeded")
    started = timezone.now()
    simclr = Run.objects.create(kind="simclr", inrset=inrset, status="succeeded", progress=1.0, started_at=started,
                                finished_at=started, config={"steps": 3, "batch_size": 32})
    MetricPoint.objects.create(run=simclr, step=1, name="loss", value=2.0, time=started)
    # The chain's probe waits (queued, never dispatched here): the page links to it instead of offering another.
    queued = Run.objects.create(kind="probe", inrset=inrset, parent=simclr, status="queued")
    page.goto(f"/runs/{simclr.pk}/")
    assert page.locator("#pending-probe").inner_text().startswith(f"Linear probe: run {queued.pk} is queued")
    assert page.get_by_role("button", name="Run a linear probe").count() == 0
    shot(page, "simclr-probe-queued")

    # A finished raw-weights probe: it says what it probed, percentages beside their baselines, no empty charts.
    raw = Run.objects.create(kind="probe", inrset=inrset, status="succeeded", progress=1.0, started_at=started,
                             finished_at=started,
                             result={"accuracy": 75.0, "confusion": [[1, 0], [1, 2]], "class_names": ["a", "b"],
                                     "feature": "raw", "num_train": 30, "num_test": 4})
    page.goto(f"/runs/{raw.pk}/")
    subject = page.locator("#probe-subject").inner_text()
    assert f"raw, flattened weights of INR set {inrset.pk}" in subject and "encoder" not in subject
    assert "test accuracy (%)" in page.locator("#probe-baselines th").last.text_content()
    assert re.search(r"chance \(1 of 2 classes\)\s+50\.0", page.locator("#probe-baselines").inner_text())
    assert page.locator("#chart-loss, #chart-lr, #chart-acc").count() == 0
    page.wait_for_function("document.querySelector('#confusion .heatmaplayer, #confusion .hm') !== null")
    shot(page, "probe-raw-explained")
    assert not errors, errors

