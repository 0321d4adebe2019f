// Run page: the charts its kind of run fills, fed by the run's websocket (history, then live points), and its clock.
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const panel = document.getElementById("run-panel");
  const status = panel.querySelector("[data-status]");
  const progress = document.getElementById("run-progress");
  const latest = document.getElementById("run-latest");
  const errorBox = document.getElementById("run-error");
  const isFit = data.kind === "fit";
  const xTitle = isFit ? "fit step" : "training step";
  // Each chart's metrics and the units its y axis is in (top1/top5 are fractions, accuracies percentages).
  const chartSpecs = {
    "chart-loss": { names: ["loss"], yTitle: isFit ? "mean MSE (log scale)" : "loss", logY: isFit },
    "chart-lr": { names: ["lr"], yTitle: "learning rate" },
    "chart-acc": isFit ? { names: ["psnr_mean"], yTitle: "mean PSNR (dB)" }
      : data.kind === "simclr" ? { names: ["top1", "top5"], yTitle: "fraction of views (0–1)" }
        : { names: ["accuracy"], yTitle: "accuracy (%)" },
  };
  const charts = [];
  Object.entries(chartSpecs).forEach(function ([id, spec]) {
    const el = document.getElementById(id);
    if (el) charts.push(new CINR.MetricChart(el, spec.names, { yTitle: spec.yTitle, logY: spec.logY, xTitle: xTitle }));
  });
  const shown = charts.flatMap(c => c.names);
  const last = {};
  const clock = new CINR.RunClock(document.getElementById("run-clock"), data.started_at, data.finished_at);

  function showLatest() {
    if (!latest) return;
    const parts = [];
    shown.forEach(function (name) {
      if (last[name]) parts.push(name + " " + Number(last[name].value).toPrecision(4) + " @ step " + last[name].step);
    });
    latest.textContent = parts.length ? parts.join(" · ") : "–";
  }

  let reloadOnFinish = !CINR.FINISHED.includes(data.status);
  let liveWhileRunning = 0;  // metric points that arrived live before the run finished (tests read it)
  CINR.socket("/ws/runs/" + data.run + "/", function (event) {
    const running = !CINR.FINISHED.includes(status.textContent.trim());
    if (event.kind === "metric" && running) {
      liveWhileRunning += 1;
      panel.dataset.liveWhileRunning = String(liveWhileRunning);
    }
    CINR.feedCharts(charts, event);
    const points = event.kind === "history" ? (event.points || []) : (event.kind === "metric" ? [event] : []);
    points.forEach(function (p) { if (!last[p.name] || p.step >= last[p.name].step) last[p.name] = p; });
    if (points.length) showLatest();
    if (running && data.steps) {
      // A training run's step s of S means s/S done; its points' times give its own step rate.
      points.forEach(function (p) {
        CINR.stepProgress(progress, p.step, data.steps);
        if (p.name === "loss") clock.sample(Math.min(1, p.step / data.steps), p.time);
      });
    }
    if (event.kind === "progress") {
      CINR.setProgress(progress, event.progress);
      clock.sample(event.progress);
    }
    if (event.kind === "history" || event.kind === "status") {
      CINR.setStatus(status, event.status);
      CINR.setProgress(progress, event.progress);
      if (event.status === "running") clock.start();
      if (!data.steps) clock.sample(event.progress);
      if (event.error) { errorBox.textContent = event.error; errorBox.hidden = false; }
      // The result (probe accuracy, confusion matrix, follow-up buttons) is rendered by the server: reload once.
      if (reloadOnFinish && CINR.FINISHED.includes(event.status)) {
        reloadOnFinish = false;
        clock.finish();
        setTimeout(() => location.reload(), 1500);
      }
    }
  });

  if (data.confusion) CINR.confusionChart(document.getElementById("confusion"), data.confusion, data.class_names);
})();
