"""Forms of the dashboard: starting a fit, a training run, and a dataset upload's name."""

from __future__ import annotations

from django import forms

import inr
from cinr_web.runs.defaults import (
    FIT,
    PRESETS,
    QUICK,
    SHARED_INIT_HELP,
    SHARED_INIT_LABEL,
    SMALL_ENCODER,
    TRAINING,
    preset_config,
)


class FitForm(forms.Form):
    """Fit every image of a dataset with one INR architecture (staff)."""

    arch = forms.ChoiceField(choices=[("siren", "SIREN"), ("mfn", "MFN (multiplicative filter network)")],
                             initial=FIT["arch"], label="Architecture")
    hidden = forms.IntegerField(min_value=2, max_value=256, initial=FIT["hidden"], label="Hidden width")
    depth = forms.IntegerField(min_value=1, max_value=8, initial=FIT["depth"], label="Layers / filters",
                               help_text="SIREN: linear layers (incl. output); MFN: filters.")
    seeds_per_image = forms.IntegerField(min_value=1, max_value=16, initial=FIT["seeds_per_image"],
                                         label="Seeds per image",
                                         help_text="SimCLR pairs two different seeds of one image: use 2 or more.")
    steps = forms.IntegerField(min_value=1, max_value=20000, required=False, label="Steps",
                               help_text="Empty = the architecture's default.")
    lr = forms.FloatField(min_value=1e-6, max_value=1.0, required=False, label="Learning rate",
                          help_text="Empty = the architecture's default.")
    anti_alias = forms.BooleanField(required=False, initial=FIT["anti_alias"],
                                    label="Anti-alias (MFN: band limit at Nyquist)")
    shared_init = forms.BooleanField(required=False, initial=FIT["shared_init"], label=SHARED_INIT_LABEL,
                                     help_text=SHARED_INIT_HELP)

    def spec(self, channels: int) -> inr.FieldSpec:
        d = self.cleaned_data
        if d["arch"] == "siren":
            return inr.FieldSpec.siren(out_dim=channels, hidden=d["hidden"], layers=d["depth"])
        return inr.FieldSpec.mfn(out_dim=channels, hidden=d["hidden"], filters=d["depth"])

    def fit_config(self) -> dict:
        d = self.cleaned_data
        # Anti-aliasing bounds an MFN's band by its filter weights; a SIREN has no such bound.
        return {"steps": d["steps"], "lr": d["lr"], "anti_alias": bool(d["anti_alias"]) and d["arch"] == "mfn",
                "shared_init": bool(d["shared_init"])}


class TrainForm(forms.Form):
    """Start an encoder run on an INR set (staff). Only the common knobs; the rest keep their defaults."""

    preset = forms.ChoiceField(choices=[(name, name) for name in PRESETS], required=False, label="Preset",
                               help_text="Fills in the steps, batch size and encoder below.")
    kind = forms.ChoiceField(choices=[("simclr", "SimCLR pretraining"), ("supervised", "Supervised training")],
                             initial="simclr", label="Kind")
    steps = forms.IntegerField(min_value=1, max_value=1_000_000, initial=TRAINING["simclr"]["steps"], label="Steps")
    batch_size = forms.IntegerField(min_value=2, max_value=4096, initial=TRAINING["simclr"]["batch_size"],
                                    label="Batch size")
    lr = forms.FloatField(min_value=1e-7, max_value=1.0, required=False, label="Learning rate",
                          help_text="Empty = the default.")
    encoder_size = forms.ChoiceField(choices=[("default", "default"), ("small", "small (quick on a CPU)")],
                                     initial="default", label="Encoder")
    chain = forms.BooleanField(required=False, initial=True, label="then a linear probe and an embedding map")

    def config(self) -> dict:
        """A training.simclr.SimCLRConfig / training.supervised.SupervisedConfig as JSON (only what was chosen)."""
        d = self.cleaned_data
        config: dict = {"steps": d["steps"], "batch_size": d["batch_size"]}
        if d["lr"] is not None:
            config["optim"] = {"lr": d["lr"]}
        if d["encoder_size"] == "small":
            config["encoder"] = dict(SMALL_ENCODER)
        return config


def preset_fields(preset: str, kind: str = "simclr") -> dict:
    """The TrainForm values a preset stands for, for a run of `kind`."""
    config = preset_config(kind, preset)
    return {"preset": preset, "steps": config["steps"], "batch_size": config["batch_size"],
            "encoder_size": "small" if config.get("encoder") == SMALL_ENCODER else "default"}


def train_form_and_estimate(inrset) -> tuple[TrainForm, dict]:
    """The training form of an INR set's page and what its estimate needs: this machine's measured step times (by
    kind, batch size and encoder size). Until a SimCLR run with the defaults has been measured here, the form starts
    from the preset "quick on a CPU"."""
    from cinr_web.runs.configs import normalise_config
    from cinr_web.runs.estimates import training_rates

    encoders = {size: normalise_config("supervised", {"encoder": SMALL_ENCODER} if size == "small" else {})["encoder"]
                for size in ("small", "default")}
    rates = []
    for row in training_rates((inrset.spec or {}).get("arch", "")):
        size = next((name for name, encoder in encoders.items() if encoder == row["encoder"]), None)
        if size is not None:
            rates.append({"kind": row["kind"], "batch_size": row["batch_size"], "encoder_size": size,
                          "seconds_per_step": row["seconds_per_step"], "runs": row["runs"]})
    defaults = preset_fields("the defaults")
    measured = any(r["kind"] == "simclr" and r["batch_size"] == defaults["batch_size"]
                   and r["encoder_size"] == defaults["encoder_size"] for r in rates)
    initial = defaults if measured else preset_fields(QUICK)
    presets = {kind: {name: preset_fields(name, kind) for name in PRESETS} for kind in ("simclr", "supervised")}
    return TrainForm(initial=initial), {"rates": rates, "presets": presets, "quick": not measured}


def fit_estimate(dataset) -> dict:
    """What the fit form's estimate needs: this machine's seconds per INR-step for each (arch, hidden, depth) fitted
    to images of this dataset's size, the dataset's size and the architectures' default steps."""
    from cinr_web.runs.defaults import fit_defaults
    from cinr_web.runs.estimates import fit_rates
    from inr.fit import DEFAULT_FIT

    rates = []
    for row in fit_rates(dataset.height, dataset.width):
        spec = row["spec"]
        depth = spec.get("layers") if spec.get("arch") == "siren" else spec.get("filters")
        form = FitForm({"arch": spec.get("arch"), "hidden": spec.get("hidden"), "depth": depth})
        form.is_valid()  # only the spec's fields are needed
        if {"arch", "hidden", "depth"} <= set(form.cleaned_data) and \
                form.spec(dataset.channels).to_dict() == spec:  # the spec this form would make
            rates.append({"arch": spec["arch"], "hidden": spec["hidden"], "depth": depth,
                          "seconds_per_inr_step": row["seconds_per_inr_step"], "runs": row["runs"]})
    return {"rates": rates, "images": dataset.num_images,
            "default_steps": {arch: fit_defaults(arch, dataset.channels)["steps"] or fit.steps
                              for arch, fit in DEFAULT_FIT.items()}}
