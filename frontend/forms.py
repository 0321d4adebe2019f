"""Forms of the dashboard: starting a fit, a training run, and a dataset upload's name."""

from __future__ import annotations

from django import forms

import inr
from cinr_web.runs.defaults import FIT, SHARED_INIT_HELP, SHARED_INIT_LABEL, SMALL_ENCODER


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

    kind = forms.ChoiceField(choices=[("simclr", "SimCLR pretraining"), ("supervised", "Supervised training")],
                             initial="simclr", label="Kind")
    steps = forms.IntegerField(min_value=1, max_value=1_000_000, initial=200, label="Steps")
    batch_size = forms.IntegerField(min_value=2, max_value=4096, initial=64, label="Batch size")
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
