// What a run will cost on this machine, shown under its form before it starts: its steps times the step time this
// machine measured for that kind of run (the server's cinr_web.runs.estimates, passed in as a table), never a
// constant. Also the training form's presets.
"use strict";

(function () {
  function measuredText(units, unit, rate) {
    if (!rate) return units.toLocaleString("en") + " " + unit + "s; no run like this has finished on this machine yet, so there is no estimate";
    const seconds = rate.seconds * units;
    return "about " + CINR.duration(seconds * 1000) + " on this machine (" + units.toLocaleString("en") + " " + unit +
      "s × " + Number(rate.seconds.toPrecision(3)) + " s, the median of run" + (rate.runs.length > 1 ? "s " : " ") +
      rate.runs.join(", ") + ")";
  }

  function follow(form, out, compute) {
    const update = function () {
      out.textContent = "Estimate: " + compute(form.elements);
      out.dataset.measured = String(!out.textContent.includes("no estimate"));
    };
    form.addEventListener("input", update);
    form.addEventListener("change", update);
    update();
  }

  const trainForm = document.getElementById("train-form");
  const trainData = document.getElementById("train-estimate-data");
  if (trainForm && trainData) {
    const data = JSON.parse(trainData.textContent);
    const f = trainForm.elements;
    f.preset.addEventListener("change", function () {
      const values = data.presets[f.kind.value][f.preset.value];
      if (!values) return;
      f.steps.value = values.steps;
      f.batch_size.value = values.batch_size;
      f.encoder_size.value = values.encoder_size;
    });
    follow(trainForm, document.getElementById("train-estimate"), function (e) {
      const row = data.rates.find(r => r.kind === e.kind.value && r.batch_size === Number(e.batch_size.value) &&
                                       r.encoder_size === e.encoder_size.value);
      return measuredText(Number(e.steps.value) || 0, "step", row ? { seconds: row.seconds_per_step, runs: row.runs } : null);
    });
  }

  const fitForm = document.getElementById("fit-form");
  const fitData = document.getElementById("fit-estimate-data");
  if (fitForm && fitData) {
    const data = JSON.parse(fitData.textContent);
    follow(fitForm, document.getElementById("fit-estimate"), function (e) {
      const arch = e.arch.value;
      const steps = Number(e.steps.value) || data.default_steps[arch];
      const inrSteps = data.images * (Number(e.seeds_per_image.value) || 0) * steps;
      const row = data.rates.find(r => r.arch === arch && r.hidden === Number(e.hidden.value) &&
                                       r.depth === Number(e.depth.value));
      return measuredText(inrSteps, "INR-step", row ? { seconds: row.seconds_per_inr_step, runs: row.runs } : null) +
        " (one worker; more workers share the chunks)";
    });
  }
})();
