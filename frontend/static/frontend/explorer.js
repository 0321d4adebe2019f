// Embedding explorer: two t-SNE maps coloured by class, seed or image; hover shows the INR's reconstruction; click opens it;
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

  // What the points are coloured by: class (what a probe predicts), seed (which of an image's INRs) or image (do an
  // image's INRs land together?). Up to 10 groups get a colour and a legend entry each; more, a colour scale.
  const colourBy = document.getElementById("colour-by");
  const GROUPINGS = {
    class: { values: () => data.labels, name: v => data.classes[v] },
    seed: { values: () => data.seed, name: v => "seed " + v },
    image: { values: () => data.image_index, name: v => "image " + v },
  };

  function pointText(i) {
    return data.classes[data.labels[i]] + " · image " + data.image_index[i] +
      (data.seed ? " · seed " + data.seed[i] : "") + " · INR " + data.inr_index[i];
  }

  function traces(map) {
    const grouping = GROUPINGS[colourBy.value] || GROUPINGS["class"];
    const values = grouping.values();
    const type = data.labels.length > 5000 ? "scattergl" : "scatter";
    const groups = Array.from(new Set(values)).sort((a, b) => a - b);
    if (groups.length > COLORS.length) {
      const all = values.map((_, i) => i);
      return [{ type: type, mode: "markers", name: colourBy.value, x: map.x, y: map.y, customdata: all,
                text: all.map(pointText), hovertemplate: "%{text}<extra></extra>", showlegend: false,
                marker: { size: 7, color: values, colorscale: "Turbo", opacity: 0.85, showscale: true,
                          colorbar: { title: { text: colourBy.value }, thickness: 12 }, line: { width: 0.5, color: "#fff" } } }];
    }
    return groups.map(function (value, g) {
      const idx = [];
      values.forEach((v, i) => { if (v === value) idx.push(i); });
      return {
        type: type, mode: "markers", name: grouping.name(value), x: idx.map(i => map.x[i]), y: idx.map(i => map.y[i]),
        customdata: idx, text: idx.map(pointText), hovertemplate: "%{text}<extra></extra>",
        marker: { size: 7, color: COLORS[g % COLORS.length], opacity: 0.85, line: { width: 0.5, color: "#fff" } },
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

  function draw() {
    if (data.encoder) {
      Plotly.react(encEl, traces(data.encoder), layout(), { responsive: true, displaylogo: false });
      if (!encEl.dataset.wired) { wire(encEl); encEl.dataset.wired = "1"; }
    } else {
      encEl.textContent = "This embedding run mapped the raw weights only.";
    }
    Plotly.react(rawEl, traces(data.raw), layout(), { responsive: true, displaylogo: false });
    if (!rawEl.dataset.wired) { wire(rawEl); rawEl.dataset.wired = "1"; }
    encEl.dataset.colourBy = colourBy.value;
  }

  fetch(config.points_url, { credentials: "same-origin" }).then(r => r.json()).then(function (body) {
    if (body.error) { hoverText.textContent = body.error; return; }
    data = body;
    document.getElementById("inspect-index").max = data.labels.length - 1;
    if (!data.seed) colourBy.querySelector("option[value=seed]").disabled = true;  // maps made before seeds were kept
    draw();
    colourBy.addEventListener("change", draw);
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

  let star = null;  // the map trace of the last answer's ★
  // A new try starts from nothing: the last answer (prediction, pictures, ★) must not stay under a new error.
  function clearResult() {
    document.getElementById("try-result").hidden = true;
    ["try-class", "try-probs", "try-views", "try-position", "try-conversions"].forEach(function (id) {
      document.getElementById(id).replaceChildren();
    });
    document.getElementById("try-conversions").hidden = true;
    if (star !== null && encEl.data && encEl.data.includes(star)) Plotly.deleteTraces(encEl, encEl.data.indexOf(star));
    star = null;
  }

  form.addEventListener("submit", async function (e) {
    e.preventDefault();
    clearResult();
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
      const conversions = document.getElementById("try-conversions");
      (answer.conversions || []).forEach(function (text) {
        const item = document.createElement("li");
        item.textContent = "Your image: " + text + ".";
        conversions.append(item);
      });
      conversions.hidden = !(answer.conversions || []).length;
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
        star = { type: "scatter", mode: "markers+text", x: [pos[0]], y: [pos[1]], name: file.name,
                 text: ["★ " + (answer.predicted_class || "")], textposition: "top center",
                 marker: { symbol: "star", size: 18, color: "#000", line: { color: "#ffb000", width: 2 } } };
        Plotly.addTraces(encEl, star);
        star = encEl.data[encEl.data.length - 1];
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
