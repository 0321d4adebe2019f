// Embedding explorer: two t-SNE maps coloured by class; hover shows the INR's reconstruction; click opens it;
// "Try it" embeds a dropped image or weight file and marks it on the encoder map.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("explorer-config").textContent);
  if (!config.ready) return;
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf"];
  const encEl = document.getElementById("map-encoder");
  const rawEl = document.getElementById("map-raw");
  const hoverImage = document.getElementById("hover-image");
  const hoverText = document.getElementById("hover-text");
  const hoverLink = document.getElementById("hover-link");
  let data = null;

  function traces(map) {
    return data.classes.map(function (name, c) {
      const idx = [];
      data.labels.forEach((label, i) => { if (label === c) idx.push(i); });
      return {
        type: data.labels.length > 5000 ? "scattergl" : "scatter",
        mode: "markers", name: name, x: idx.map(i => map.x[i]), y: idx.map(i => map.y[i]), customdata: idx,
        marker: { size: 7, color: COLORS[c % COLORS.length], opacity: 0.85, line: { width: 0.5, color: "#fff" } },
        hovertemplate: name + " · INR %{customdata}<extra></extra>",
      };
    });
  }

  function layout() {
    return { margin: { l: 30, r: 10, t: 10, b: 30 }, hovermode: "closest", legend: { orientation: "h", y: -0.08 },
             xaxis: { showticklabels: false, zeroline: false }, yaxis: { showticklabels: false, zeroline: false },
             paper_bgcolor: "rgba(0,0,0,0)", font: { family: "system-ui, sans-serif", size: 13 } };
  }

  function show(i) {
    if (!data || i < 0 || i >= data.labels.length) return;
    const inr = data.inr_index[i];
    hoverImage.src = config.render_base + inr + "/render.png?size=" + (4 * config.height);
    hoverImage.alt = "Reconstruction of INR " + inr + " (" + data.classes[data.labels[i]] + ")";
    hoverImage.hidden = false;
    hoverImage.dataset.inr = String(inr);
    hoverText.textContent = "INR " + inr + " · image " + data.image_index[i] + " · class " + data.classes[data.labels[i]] +
      (data.split ? " · " + data.split[i] : "");
    hoverLink.href = config.inrset_url + "?image=" + data.image_index[i];
    hoverLink.hidden = false;
    document.getElementById("inspect-index").value = i;
  }

  function wire(el) {
    el.on("plotly_hover", function (ev) { if (ev.points.length && ev.points[0].customdata !== undefined) show(ev.points[0].customdata); });
    el.on("plotly_click", function (ev) {
      const p = ev.points[0];
      if (p && p.customdata !== undefined) location.href = config.inrset_url + "?image=" + data.image_index[p.customdata];
    });
  }

  fetch(config.points_url, { credentials: "same-origin" }).then(r => r.json()).then(function (body) {
    if (body.error) { hoverText.textContent = body.error; return; }
    data = body;
    document.getElementById("inspect-index").max = data.labels.length - 1;
    if (data.encoder) {
      Plotly.newPlot(encEl, traces(data.encoder), layout(), { responsive: true, displaylogo: false });
      wire(encEl);
    } else {
      encEl.textContent = "This embedding run mapped the raw weights only.";
    }
    Plotly.newPlot(rawEl, traces(data.raw), layout(), { responsive: true, displaylogo: false });
    wire(rawEl);
    encEl.dataset.points = String(data.labels.length);
  });

  document.getElementById("inspect-go").addEventListener("click", function () {
    show(Number(document.getElementById("inspect-index").value));
  });

  // -- Try it --------------------------------------------------------------------------------------------------
  const form = document.getElementById("try-form");
  if (!form) return;
  const zone = document.getElementById("try-zone");
  const input = document.getElementById("try-file");
  const state = document.getElementById("try-state");
  const errorBox = document.getElementById("try-error");
  let file = null;

  input.addEventListener("change", function () { file = input.files[0] || null; state.textContent = file ? file.name : ""; });
  ["dragenter", "dragover"].forEach(n => zone.addEventListener(n, e => { e.preventDefault(); zone.classList.add("dragging"); }));
  ["dragleave", "drop"].forEach(n => zone.addEventListener(n, e => { e.preventDefault(); zone.classList.remove("dragging"); }));
  zone.addEventListener("drop", function (e) {
    try { input.files = e.dataTransfer.files; } catch (err) { /* the state line still names the file */ }
    file = e.dataTransfer.files[0] || null;
    state.textContent = file ? file.name : "";
    if (file) form.requestSubmit();
  });

  function figure(src, caption) {
    const f = document.createElement("figure");
    const img = document.createElement("img");
    img.src = src;
    img.alt = caption;
    const c = document.createElement("figcaption");
    c.textContent = caption;
    f.append(img, c);
    return f;
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    if (!file) { errorBox.textContent = "Choose an image or a weight file first."; errorBox.hidden = false; return; }
    const body = new FormData();
    body.append("file", file, file.name);
    errorBox.hidden = true;
    state.textContent = "Fitting and embedding " + file.name + "…";
    document.getElementById("try-submit").disabled = true;
    try {
      const answer = await CINR.fetchJSON(config.try_url, { method: "POST", body: body });
      state.textContent = answer.kind === "image" ? "Fitted (PSNR " + CINR.fmt(answer.psnr, 1) + " dB) and embedded." : "Embedded.";
      document.getElementById("try-class").textContent = answer.predicted_class || "(no classifier)";
      const table = document.getElementById("try-probs");
      table.replaceChildren();
      Object.entries(answer.probabilities || {}).sort((a, b) => b[1] - a[1]).forEach(function ([name, p]) {
        const row = table.insertRow();
        row.insertCell().textContent = name;
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.style.width = Math.max(1, Math.round(120 * p)) + "px";
        row.insertCell().append(bar);
        row.insertCell().textContent = (100 * p).toFixed(1) + "%";
      });
      const views = document.getElementById("try-views");
      views.replaceChildren();
      if (answer.original) views.append(figure(answer.original, "Your image"));
      views.append(figure(answer.reconstruction_4x, "Reconstruction (4×)"));
      (answer.augmented || []).forEach((src, k) => views.append(figure(src, "Augmented view " + (k + 1))));
      const pos = answer.map_position;
      document.getElementById("try-position").textContent = pos ? "Map position (" + CINR.fmt(pos[0], 1) + ", " + CINR.fmt(pos[1], 1) + ")" : "Not placed: the run has no embedding map.";
      if (pos && data && data.encoder) {
        Plotly.addTraces(encEl, { type: "scatter", mode: "markers+text", x: [pos[0]], y: [pos[1]], name: file.name,
                                  text: ["★ " + (answer.predicted_class || "")], textposition: "top center",
                                  marker: { symbol: "star", size: 18, color: "#000", line: { color: "#ffb000", width: 2 } } });
      }
      document.getElementById("try-result").hidden = false;
    } catch (err) {
      state.textContent = "";
      errorBox.textContent = err.message;
      errorBox.hidden = false;
    } finally {
      document.getElementById("try-submit").disabled = false;
    }
  });
})();
