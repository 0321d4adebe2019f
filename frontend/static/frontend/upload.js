// Dataset upload: drag-and-drop or file picker, XHR upload with a progress bar, errors shown inline.
"use strict";

(function () {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("upload-files");
  const chosen = document.getElementById("upload-chosen");
  const bar = document.getElementById("upload-progress");
  const percent = document.getElementById("upload-percent");
  const errorBox = document.getElementById("upload-error");
  const okBox = document.getElementById("upload-ok");
  const submit = document.getElementById("upload-submit");
  let files = [];

  function showError(text) {
    errorBox.textContent = text;
    errorBox.hidden = false;
    okBox.hidden = true;
  }

  function setFiles(list) {
    files = Array.from(list || []);
    const bytes = files.reduce((sum, f) => sum + f.size, 0);
    chosen.textContent = files.length
      ? files.length + " file(s), " + (bytes / 1024).toFixed(1) + " KiB: " + files.slice(0, 5).map(f => f.name).join(", ") + (files.length > 5 ? ", …" : "")
      : "";
    errorBox.hidden = true;
  }

  input.addEventListener("change", function () { setFiles(input.files); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.add("dragging"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (e) { e.preventDefault(); zone.classList.remove("dragging"); });
  });
  zone.addEventListener("drop", function (e) {
    try { input.files = e.dataTransfer.files; } catch (err) { /* older browsers: the list below still says it */ }
    setFiles(e.dataTransfer.files);
  });

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    const name = form.elements.name.value.trim();
    if (!name) { showError("Give the dataset a name."); form.elements.name.focus(); return; }
    if (!files.length) { showError("Choose a zip or some images first."); input.focus(); return; }
    const isZip = files.length === 1 && files[0].name.toLowerCase().endsWith(".zip");
    const data = new FormData();
    data.append("name", name);
    data.append("description", form.elements.description.value);
    const label = form.elements.label.value.trim() || "unlabelled";
    files.forEach(function (f) {
      data.append("files", f, f.name);
      if (!isZip) data.append("labels", label);
    });

    const xhr = new XMLHttpRequest();
    xhr.open("POST", form.dataset.uploadUrl);
    xhr.setRequestHeader("X-CSRFToken", CINR.csrfToken());
    xhr.setRequestHeader("Accept", "application/json");
    bar.hidden = false;
    bar.value = 0;
    submit.disabled = true;
    errorBox.hidden = true;
    xhr.upload.onprogress = function (ev) {
      if (!ev.lengthComputable) return;
      CINR.setProgress(bar, ev.loaded / ev.total);
      percent.textContent = "Uploading " + Math.round(100 * ev.loaded / ev.total) + "%";
    };
    xhr.upload.onload = function () { CINR.setProgress(bar, 1); percent.textContent = "Uploaded; checking the images…"; };
    xhr.onerror = function () { submit.disabled = false; showError("The upload failed: the server could not be reached."); };
    xhr.onload = function () {
      submit.disabled = false;
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch (err) { body = xhr.responseText; }
      if (xhr.status === 201 || xhr.status === 200) {
        percent.textContent = "Done";
        okBox.textContent = "Stored " + body.num_images + " images as dataset “" + body.name + "”. Opening it…";
        okBox.hidden = false;
        window.location.href = form.dataset.datasetUrl.replace("/0/", "/" + body.id + "/");
      } else {
        percent.textContent = "";
        bar.hidden = true;
        showError("Upload refused (HTTP " + xhr.status + "): " + CINR.errorText(body));
      }
    };
    xhr.send(data);
  });
})();
