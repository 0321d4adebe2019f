// CINR dashboard: shared helpers (CSRF, JSON calls, live websockets) and the live status rows of every page.
"use strict";

window.CINR = (function () {
  function csrfToken() {
    const meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  // Flatten a DRF-style error body ({"detail": ...} or {"field": ["msg"]}) into one readable line.
  function errorText(body, fallback) {
    if (!body) return fallback || "Request failed.";
    if (typeof body === "string") return body;
    if (body.detail) return String(body.detail);
    if (body.error) return String(body.error);
    const parts = [];
    for (const [key, value] of Object.entries(body)) {
      const text = Array.isArray(value) ? value.join(" ") : (typeof value === "object" ? JSON.stringify(value) : value);
      parts.push(key === "non_field_errors" ? text : key + ": " + text);
    }
    return parts.join("\n") || fallback || "Request failed.";
  }

  async function fetchJSON(url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ "X-CSRFToken": csrfToken(), "Accept": "application/json" }, opts.headers);
    const response = await fetch(url, opts);
    const text = await response.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch (e) { body = text; }
    if (!response.ok) {
      const err = new Error(errorText(body, "HTTP " + response.status));
      err.status = response.status;
      throw err;
    }
    return body;
  }

  // A websocket to our own server that reconnects after drops (not after a clean close we asked for).
  function socket(path, onEvent, onState) {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    let ws = null;
    let closedByUs = false;
    let delay = 1000;
    function open() {
      ws = new WebSocket(scheme + location.host + path);
      ws.onopen = function () { delay = 1000; if (onState) onState("open"); };
      ws.onmessage = function (msg) {
        let event;
        try { event = JSON.parse(msg.data); } catch (e) { return; }
        onEvent(event);
      };
      ws.onclose = function () {
        if (onState) onState("closed");
        if (closedByUs) return;
        setTimeout(open, delay);
        delay = Math.min(delay * 2, 15000);
      };
    }
    open();
    return { close: function () { closedByUs = true; if (ws) ws.close(); } };
  }

  const FINISHED = ["succeeded", "failed", "cancelled"];

  function setStatus(el, status) {
    if (!el || !status) return;
    el.textContent = status;
    el.className = "status status-" + status;
  }

  function setProgress(el, progress) {
    if (!el || progress === undefined || progress === null) return;
    el.value = progress;
    el.textContent = Math.round(progress * 100) + "%";
    el.setAttribute("aria-valuetext", Math.round(progress * 100) + "%");
    el.title = Math.round(progress * 100) + "%";
    const text = el.parentElement && el.parentElement.querySelector("[data-progress-text]");
    if (text) text.textContent = Math.round(progress * 100) + "%";
  }

  // Training runs publish metric points, not progress: a point at step s of a run of S steps means s/S done.
  function stepProgress(el, step, steps) {
    if (!el || !steps || step === undefined) return;
    const fraction = Math.min(1, step / steps);
    if (fraction > Number(el.value || 0)) setProgress(el, fraction);
  }

  // Rows marked data-live-run="<id>" or data-live-inrset="<id>" follow their websocket: status and progress.
  function followRows(root) {
    const handles = [];
    (root || document).querySelectorAll("[data-live-run]").forEach(function (row) {
      const status = row.querySelector("[data-status]");
      if (status && FINISHED.includes(status.textContent.trim())) return;
      const id = row.getAttribute("data-live-run");
      const steps = Number(row.dataset.steps || 0);
      handles.push(socket("/ws/runs/" + id + "/", function (event) {
        const progress = row.querySelector("progress");
        if (event.kind === "history" || event.kind === "status") {
          setStatus(status, event.status);
          if (event.progress !== undefined) setProgress(progress, event.progress);
        }
        if (event.kind === "progress") setProgress(progress, event.progress);
        if (event.kind === "metric") stepProgress(progress, event.step, steps);
        row.dataset.liveEvents = String(Number(row.dataset.liveEvents || 0) + 1);
      }));
    });
    (root || document).querySelectorAll("[data-live-inrset]").forEach(function (row) {
      const status = row.querySelector("[data-status]");
      if (status && ["ready", "succeeded", "failed", "cancelled"].includes(status.textContent.trim())) return;
      const id = row.getAttribute("data-live-inrset");
      handles.push(socket("/ws/inrsets/" + id + "/", function (event) {
        const progress = row.querySelector("progress");
        if (event.kind === "progress") {
          setProgress(progress, event.progress);
          const psnr = row.querySelector("[data-psnr]");
          if (psnr && event.psnr_mean !== undefined && event.psnr_mean !== null) psnr.textContent = Number(event.psnr_mean).toFixed(1);
        }
        if (event.kind === "status" || event.kind === "history") {
          if (event.status) setStatus(status, event.status);
          if (event.progress !== undefined) setProgress(progress, event.progress);
        }
        row.dataset.liveEvents = String(Number(row.dataset.liveEvents || 0) + 1);
      }));
    });
    return handles;
  }

  function fmt(value, digits) {
    if (value === null || value === undefined || Number.isNaN(Number(value))) return "–";
    return Number(value).toFixed(digits === undefined ? 3 : digits);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (document.body.dataset.noLiveRows === undefined) followRows(document);
    // Forms that cannot be undone (cancel a run) ask first: data-confirm holds the question.
    document.querySelectorAll("form[data-confirm]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  });

  return { csrfToken, errorText, fetchJSON, socket, setStatus, setProgress, stepProgress, followRows, fmt, FINISHED };
})();
