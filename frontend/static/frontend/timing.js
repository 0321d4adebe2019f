// A run's clock: time elapsed since it started and an estimate of the time left, from the run's OWN rate of
// progress (samples of fraction done over time), never from a constant.
"use strict";

window.CINR = window.CINR || {};

CINR.duration = function (ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 90) return s + " s";
  const min = Math.round(s / 60);
  if (min < 90) return min + " min";
  return Math.floor(min / 60) + " h " + String(min % 60).padStart(2, "0") + " min";
};

CINR.RunClock = class RunClock {
  // el: where the text goes (may be null); startedAt / finishedAt: ISO times from the server, or null.
  constructor(el, startedAt, finishedAt) {
    this.el = el;
    this.started = startedAt ? Date.parse(startedAt) : null;
    this.finished = finishedAt ? Date.parse(finishedAt) : null;
    this.first = null;  // the earliest sample with some progress: {t, fraction}
    this.last = null;   // the latest sample
    if (this.el) {
      this.show();
      if (!this.finished) this.timer = setInterval(() => this.show(), 1000);
    }
  }

  start() { if (!this.started) { this.started = Date.now(); this.show(); } }

  finish() {
    if (!this.finished) this.finished = Date.now();
    clearInterval(this.timer);
    this.show();
  }

  // fraction done (0..1) at time (ISO string; default now).
  sample(fraction, time) {
    if (fraction === undefined || fraction === null || !(fraction > 0)) return;
    const t = time ? Date.parse(time) : Date.now();
    if (!this.first || t < this.first.t) this.first = { t: t, fraction: fraction };
    if (!this.last || t >= this.last.t) this.last = { t: t, fraction: fraction };
  }

  // Milliseconds left at the rate seen so far (between the first and the latest sample; from the start when there
  // is only one), or null while there is no rate yet.
  left() {
    if (!this.last || this.last.fraction >= 1) return null;
    let from = this.first;
    if (!from || this.last.fraction <= from.fraction) from = this.started ? { t: this.started, fraction: 0 } : null;
    if (!from || this.last.t <= from.t) return null;
    const rate = (this.last.fraction - from.fraction) / (this.last.t - from.t);  // fraction per ms
    return Math.max(0, (1 - this.last.fraction) / rate - (Date.now() - this.last.t));
  }

  show() {
    if (!this.el) return;
    if (!this.started) { this.el.textContent = "not started"; return; }
    if (this.finished) {
      this.el.textContent = "took " + CINR.duration(this.finished - this.started);
      return;
    }
    const left = this.left();
    this.el.textContent = CINR.duration(Date.now() - this.started) + " elapsed · " +
      (left === null ? "time left: measuring the step rate…" : "about " + CINR.duration(left) + " left");
    this.el.dataset.left = left === null ? "" : String(Math.round(left / 1000));
  }
};
