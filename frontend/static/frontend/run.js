// Run page: loss, learning rate and alignment charts fed by the run's websocket (history, then live points).
"use strict";

(function () {
  const data = JSON.parse(document.getElementById("run-data").textContent);
  const panel = document.getElementById("run-panel");
  const status = panel.querySelector("[data-status]");
  const progress = document.getElementById("run-progress");
  const latest = document.getElementById("run-latest");
  const errorBox = document.getElementById("run-error");
  const isFit = data.kind === "fit";
  const charts = [
    new CINR.MetricChart(document.getElementById("chart-loss"), ["loss"], { yTitle: isFit ? "MSE" : "loss", logY: isFit }),
    new CINR.MetricChart(document.getElementById("chart-lr"), ["lr"], { yTitle: "learning rate" }),
    new CINR.MetricChart(document.getElementById("chart-acc"), ["top1", "top5", "accuracy", "psnr_mean"],
                         { yTitle: isFit ? "PSNR (dB)" : "fraction" }),
  ];
  const last = {};

  function showLatest() {
    const parts = [];
    ["loss", "lr", "top1", "top5", "accuracy", "psnr_mean"].forEach(function (name) {
      if (last[name]) parts.push(name + " " + Number(last[name].value).toPrecision(4) + " @ " + last[name].step);
    });
    latest.textContent = parts.length ? parts.join(" · ") : "–";
  }

  let reloadOnFinish = !CINR.FINISHED.includes(data.status);
  let liveWhileRunning = 0;  // metric points that arrived live before the run finished (tests read it)
  CINR.socket("/ws/runs/" + data.run + "/", function (event) {
    if (event.kind === "metric" && !CINR.FINISHED.includes(status.textContent.trim())) {
      liveWhileRunning += 1;
      panel.dataset.liveWhileRunning = String(liveWhileRunning);
    }
    CINR.feedCharts(charts, event);
    const points = event.kind === "history" ? (event.points || []) : (event.kind === "metric" ? [event] : []);
    points.forEach(function (p) { if (!last[p.name] || p.step >= last[p.name].step) last[p.name] = p; });
    if (points.length) showLatest();
    if (!CINR.FINISHED.includes(status.textContent.trim())) {
      points.forEach(function (p) { CINR.stepProgress(progress, p.step, data.steps); });
    }
    if (event.kind === "progress") CINR.setProgress(progress, event.progress);
    if (event.kind === "history" || event.kind === "status") {
      CINR.setStatus(status, event.status);
      CINR.setProgress(progress, event.progress);
      if (event.error) { errorBox.textContent = event.error; errorBox.hidden = false; }
      // The result (probe accuracy, confusion matrix, follow-up buttons) is rendered by the server: reload once.
      if (reloadOnFinish && CINR.FINISHED.includes(event.status)) {
        reloadOnFinish = false;
        setTimeout(() => location.reload(), 1500);
      }
    }
  });

  if (data.confusion) CINR.confusionChart(document.getElementById("confusion"), data.confusion, data.class_names);
})();
