// INR set page: live fit progress, PSNR histogram, one image's views, the augmentation panel, a SimCLR pair.
"use strict";

(function () {
  const panel = document.getElementById("fit-panel");
  const viewer = document.getElementById("viewer");
  const inrsetId = panel.dataset.inrset;
  const ready = viewer.dataset.ready === "1";

  // -- live fit progress ---------------------------------------------------------------------------------------
  const progress = document.getElementById("fit-progress");
  const text = document.getElementById("fit-text");
  const status = panel.querySelector("[data-status]");
  let reloading = false;
  // PSNR and loss on their own axes: a loss near 0 beside PSNRs of 10-60 dB would be a flat line.
  const fitCharts = [
    new CINR.MetricChart(document.getElementById("fit-psnr-chart"), ["psnr_mean"],
                         { yTitle: "mean PSNR (dB)", xTitle: "fit step" }),
    new CINR.MetricChart(document.getElementById("fit-loss-chart"), ["loss"],
                         { yTitle: "mean MSE (log scale)", xTitle: "fit step", logY: true }),
  ];
  const clockEl = document.getElementById("fit-clock");
  const clock = clockEl ? new CINR.RunClock(clockEl, clockEl.dataset.started || null, clockEl.dataset.finished || null)
    : null;
  if (!CINR.FINISHED.includes(status.textContent.trim())) {
    CINR.socket("/ws/inrsets/" + inrsetId + "/", function (event) {
      CINR.feedCharts(fitCharts, event);
      if (event.kind === "progress") {
        CINR.setProgress(progress, event.progress);
        if (clock) { clock.start(); clock.sample(event.progress); }
        // inr.fit fits INRs in batches: progress is steps done over all INRs' steps; the PSNR is of finished INRs.
        text.textContent = Math.round(100 * event.progress) + " % of " + event.total + " INRs' steps done" +
          (event.psnr_mean !== undefined && event.psnr_mean !== null ? "; finished INRs: mean PSNR " + CINR.fmt(event.psnr_mean, 1) + " dB" : "");
      }
      if (event.kind === "history" || event.kind === "status") {
        if (event.status) CINR.setStatus(status, event.status);
        if (event.progress !== undefined) CINR.setProgress(progress, event.progress);
        // The page rendered before the end: reload once, so the server renders the finished set (or its error).
        if (CINR.FINISHED.includes(event.status) && !ready && !reloading) {
          reloading = true;
          if (clock) clock.finish();
          setTimeout(() => location.reload(), 500);
        }
      }
    });
  } else {
    // Finished: the history still draws the charts of the fit.
    const ws = CINR.socket("/ws/inrsets/" + inrsetId + "/", function (event) {
      CINR.feedCharts(fitCharts, event);
      if (event.kind === "history") ws.close();
    });
  }

  const hist = JSON.parse(document.getElementById("histogram-data").textContent);
  CINR.histogramChart(document.getElementById("psnr-histogram"), hist.edges, hist.counts, "PSNR (dB)");

  // -- one image ----------------------------------------------------------------------------------------------
  const seeds = Number(viewer.dataset.seeds);
  const height = Number(viewer.dataset.height);
  const maxImage = Number(viewer.dataset.maxImage);
  const renderBase = viewer.dataset.renderBase;
  const imageInput = document.getElementById("image-index");
  const seedInput = document.getElementById("seed-index");
  const label = document.getElementById("inr-label");

  function current() {
    const image = Math.max(0, Math.min(maxImage, Number(imageInput.value) || 0));
    const seed = Math.max(0, Math.min(seeds - 1, Number(seedInput.value) || 0));
    return { image, seed, inr: image * seeds + seed };
  }

  function renderUrl(inr, params) {
    const query = new URLSearchParams(params || {});
    const q = query.toString();
    return renderBase + inr + "/render.png" + (q ? "?" + q : "");
  }

  function showImage() {
    const c = current();
    imageInput.value = c.image;
    label.textContent = "INR " + c.inr + " (image " + c.image + ", seed " + c.seed + ")";
    const url = new URL(location.href);
    url.searchParams.set("image", c.image);
    history.replaceState(null, "", url);
    if (!ready) return;
    document.getElementById("view-original").src = viewer.dataset.imagePrefix + c.image + "/image.png";
    document.getElementById("view-reconstruction").src = renderUrl(c.inr);
    document.getElementById("view-4x").src = renderUrl(c.inr, { size: 4 * height });
    document.getElementById("view-spectrum").src = renderUrl(c.inr, { size: 4 * height, spectrum: "true" });
    renderAugmented();
    drawPair();
    showBand(c.inr);
    const twin = document.getElementById("twin-views");
    if (twin) {
      const base = twin.dataset.renderBase + c.inr + "/render.png?size=" + (4 * height);
      document.getElementById("twin-4x").src = base;
      document.getElementById("twin-spectrum").src = base + "&spectrum=true";
    }
  }

  // Energy of the 4x render outside the grid's band (and an MFN's band limit against Nyquist), under the spectrum.
  function showBand(inr) {
    const facts = document.getElementById("band-facts");
    if (!facts) return;
    facts.textContent = "";
    CINR.fetchJSON(viewer.dataset.bandUrl.replace("/inrs/0/", "/inrs/" + inr + "/")).then(function (band) {
      let text = "Energy outside the grid's band: " + Number(band.out_of_band_energy).toExponential(1) + " of the total.";
      if (band.band_limit) {
        text += " Band limit " + band.band_limit.map(v => v.toFixed(1)).join(" × ") + " rad/unit vs Nyquist " +
          band.nyquist.map(v => v.toFixed(1)).join(" × ") + ".";
      }
      facts.textContent = text;
    }).catch(function (err) { facts.textContent = err.message; });
  }

  document.getElementById("prev-image").addEventListener("click", () => { imageInput.value = current().image - 1; showImage(); });
  document.getElementById("next-image").addEventListener("click", () => { imageInput.value = current().image + 1; showImage(); });
  imageInput.addEventListener("change", showImage);
  seedInput.addEventListener("change", showImage);

  // -- augmentation panel ------------------------------------------------------------------------------------
  const form = document.getElementById("augment-form");
  let timer = null;

  function augmentParams() {
    const f = form.elements;
    const params = { size: 4 * height, seed: f.seed.value || 0 };
    if (Number(f.rotate.value) !== 0) params.rotate = f.rotate.value;
    if (Number(f.shift_r.value) !== 0 || Number(f.shift_c.value) !== 0) params.translate = f.shift_r.value + "," + f.shift_c.value;
    if (Number(f.scale.value) !== 1) params.scale = f.scale.value;
    if (Number(f.noise.value) > 0) params.noise = f.noise.value;
    if (Number(f.dropout.value) > 0) params.dropout = f.dropout.value;
    if (f.permute.checked) params.permute = "true";
    return params;
  }

  function updateOutputs() {
    const f = form.elements;
    document.getElementById("out-rotate").textContent = f.rotate.value + "°";
    document.getElementById("out-shift-r").textContent = f.shift_r.value;
    document.getElementById("out-shift-c").textContent = f.shift_c.value;
    document.getElementById("out-scale").textContent = f.scale.value + "×";
    document.getElementById("out-noise").textContent = f.noise.value;
    document.getElementById("out-dropout").textContent = f.dropout.value;
    document.getElementById("out-permute").textContent = f.permute.checked ? "on" : "off";
  }

  function renderAugmented() {
    if (!form) return;
    updateOutputs();
    const c = current();
    const params = augmentParams();
    const before = document.getElementById("aug-before");
    const after = document.getElementById("aug-after");
    const errorBox = document.getElementById("aug-error");
    before.src = renderUrl(c.inr, { size: 4 * height });
    const url = renderUrl(c.inr, params);
    // Fetch first, so a refused parameter shows its message instead of a broken image.
    fetch(url, { credentials: "same-origin" }).then(async function (response) {
      if (!response.ok) {
        let body = null;
        try { body = await response.json(); } catch (e) { body = null; }
        errorBox.textContent = CINR.errorText(body, "Render failed (HTTP " + response.status + ")");
        errorBox.hidden = false;
        return;
      }
      errorBox.hidden = true;
      const blob = await response.blob();
      if (after.dataset.objectUrl) URL.revokeObjectURL(after.dataset.objectUrl);
      after.dataset.objectUrl = URL.createObjectURL(blob);
      after.src = after.dataset.objectUrl;
      after.dataset.query = new URLSearchParams(params).toString();
      const parts = Object.keys(params).filter(k => k !== "size" && k !== "seed");
      document.getElementById("aug-caption").textContent = parts.length ? "After: " + parts.join(", ") : "After (no augmentation)";
    });
  }

  if (form) {
    form.addEventListener("input", function () {
      updateOutputs();
      clearTimeout(timer);
      timer = setTimeout(renderAugmented, 150);
    });
    document.getElementById("aug-reset").addEventListener("click", function () {
      form.reset();
      renderAugmented();
    });
  }

  // -- SimCLR positive pair ----------------------------------------------------------------------------------
  let draw = 0;
  function drawPair() {
    const a = document.getElementById("pair-a");
    if (!a) return;
    const c = current();
    const seedA = c.seed;
    const seedB = seeds > 1 ? (c.seed + 1) % seeds : c.seed;
    const inrA = c.image * seeds + seedA;
    const inrB = c.image * seeds + seedB;
    a.src = renderUrl(inrA, { size: 4 * height, augment: "true", seed: 2 * draw });
    document.getElementById("pair-b").src = renderUrl(inrB, { size: 4 * height, augment: "true", seed: 2 * draw + 1 });
    document.getElementById("pair-a-caption").textContent = "View A: seed " + seedA + ", draw " + (2 * draw);
    document.getElementById("pair-b-caption").textContent = "View B: seed " + seedB + ", draw " + (2 * draw + 1);
  }
  const pairButton = document.getElementById("pair-draw");
  if (pairButton) pairButton.addEventListener("click", function () { draw += 1; drawPair(); });

  showImage();
})();
