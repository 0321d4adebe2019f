// Plotly charts of metric points that arrive over a websocket: history first, then live points, deduplicated.
"use strict";

window.CINR = window.CINR || {};

// Steps are whole numbers: over a short span (one or two points) Plotly would put ticks at 0.5 steps.
CINR.stepTicks = function (traces) {
  let lo = Infinity, hi = -Infinity;
  traces.forEach(t => t.x.forEach(x => { lo = Math.min(lo, x); hi = Math.max(hi, x); }));
  return hi >= lo && hi - lo <= 10 ? { tick0: 0, dtick: 1 } : {};
};

CINR.MetricChart = class MetricChart {
  // el: the chart's element; names: metric names this chart shows (null = all); options: {title, xTitle, yTitle,
  // logY, label(run, name) -> trace name}.
  constructor(el, names, options) {
    this.el = el;
    this.names = names;
    this.options = options || {};
    this.series = new Map();  // "run:name" -> {run, name, steps: Map(step -> value)}
    this.livePoints = 0;      // points that arrived live (not in a history message)
    this.pending = false;
    this.drawn = false;
  }

  accepts(name) { return this.names === null || this.names.includes(name); }

  add(point, live) {
    if (!this.accepts(point.name)) return false;
    const key = point.run + ":" + point.name;
    if (!this.series.has(key)) this.series.set(key, { run: point.run, name: point.name, steps: new Map() });
    const steps = this.series.get(key).steps;
    const fresh = !steps.has(point.step);
    steps.set(point.step, point.value);
    if (live && fresh) this.livePoints += 1;
    this.el.dataset.livePoints = String(this.livePoints);
    this.schedule();
    return true;
  }

  count() {
    let n = 0;
    this.series.forEach(s => { n += s.steps.size; });
    return n;
  }

  // Redraw at most every 100 ms (a timer, not requestAnimationFrame, which stops in a background tab).
  schedule() {
    if (this.pending) return;
    this.pending = true;
    setTimeout(() => { this.pending = false; this.draw(); }, 100);
  }

  draw() {
    const label = this.options.label || ((run, name) => name);
    const traces = [];
    Array.from(this.series.values()).sort((a, b) => (a.run - b.run) || a.name.localeCompare(b.name)).forEach(s => {
      const steps = Array.from(s.steps.keys()).sort((a, b) => a - b);
      traces.push({ x: steps, y: steps.map(k => s.steps.get(k)), name: label(s.run, s.name),
                    mode: steps.length < 40 ? "lines+markers" : "lines", marker: { size: 5 },
                    type: "scatter", line: { width: 2 } });
    });
    const layout = {
      title: { text: this.options.title || "", font: { size: 15 } },
      margin: { l: 60, r: 20, t: this.options.title ? 40 : 15, b: 45 },
      xaxis: Object.assign({ title: { text: this.options.xTitle || "step" }, automargin: true }, CINR.stepTicks(traces)),
      yaxis: Object.assign({ title: { text: this.options.yTitle || "" }, type: this.options.logY ? "log" : "linear",
                             automargin: true },
                           this.options.logY ? { exponentformat: "power", dtick: 1 } : {}),
      legend: { orientation: "h", y: -0.25 },
      font: { family: "system-ui, sans-serif", size: 13 },
      paper_bgcolor: "rgba(0,0,0,0)",
      showlegend: traces.length > 1,
      annotations: traces.length ? [] : [{ text: "No points yet", showarrow: false, xref: "paper", yref: "paper",
                                           x: 0.5, y: 0.5, font: { size: 15, color: "#5b6577" } }],
    };
    if (!traces.length) { layout.xaxis.visible = false; layout.yaxis.visible = false; }
    Plotly.react(this.el, traces, layout, { responsive: true, displaylogo: false });
    this.drawn = true;
    this.el.dataset.points = String(this.count());
    this.el.dataset.livePoints = String(this.livePoints);
  }
};

// Route websocket events of runs into charts. A history message carries its points in "points".
CINR.feedCharts = function (charts, event) {
  if (event.kind === "history") {
    (event.points || []).forEach(p => charts.forEach(c => c.add(p, false)));
    charts.forEach(c => { if (!c.drawn) c.draw(); });
  } else if (event.kind === "metric") {
    charts.forEach(c => c.add(event, true));
  }
};

CINR.histogramChart = function (el, edges, counts, xTitle) {
  if (!counts || !counts.length) return;
  const centres = counts.map((_, i) => (edges[i] + edges[i + 1]) / 2);
  const widths = counts.map((_, i) => edges[i + 1] - edges[i]);
  Plotly.react(el, [{ type: "bar", x: centres, y: counts, width: widths, marker: { color: "#2457c5" },
                      hovertemplate: "%{x:.1f} dB: %{y} INRs<extra></extra>" }],
               { margin: { l: 50, r: 15, t: 10, b: 45 }, xaxis: { title: { text: xTitle } },
                 yaxis: { title: { text: "INRs" } }, bargap: 0.05, paper_bgcolor: "rgba(0,0,0,0)",
                 font: { family: "system-ui, sans-serif", size: 13 } },
               { responsive: true, displaylogo: false });
};

CINR.confusionChart = function (el, matrix, classNames) {
  if (!matrix || !matrix.length) return;
  const names = classNames && classNames.length === matrix.length ? classNames : matrix.map((_, i) => String(i));
  const most = Math.max(1, ...matrix.flat());
  Plotly.react(el, [{ type: "heatmap", z: matrix, x: names, y: names, zmin: 0, zmax: most, showscale: true,
                      colorscale: [[0, "#f4f7fc"], [0.5, "#6f93d6"], [1, "#173f94"]],
                      hovertemplate: "true %{y}, predicted %{x}: %{z}<extra></extra>" }],
               { margin: { l: 80, r: 20, t: 10, b: 70 }, xaxis: { title: { text: "predicted" }, type: "category" },
                 yaxis: { title: { text: "true" }, autorange: "reversed", type: "category" },
                 paper_bgcolor: "rgba(0,0,0,0)", font: { family: "system-ui, sans-serif", size: 13 },
                 annotations: matrix.flatMap((row, i) => row.map((v, j) => ({ x: names[j], y: names[i], text: String(v),
                   showarrow: false, font: { size: 12, color: v > most / 2 ? "#fff" : "#1d2330" } }))) },
               { responsive: true, displaylogo: false });
};
