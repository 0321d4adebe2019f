"""Intermediate pages for admin actions that need settings (a form between "Go" and the runs starting)."""

from __future__ import annotations

import json
from collections.abc import Callable

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from cinr_web.runs.defaults import FIT, SHARED_INIT_HELP, SHARED_INIT_LABEL
from cinr_web.runs.defaults import fit_spec as default_fit_spec
from inr import FieldSpec


def action_with_form(modeladmin, request, queryset, *, form_class: type[forms.Form], title: str, description: str,
                     submit_label: str, start: Callable[[object, dict], str],
                     cost: Callable[[object, dict], str] | None = None):
    """Shows `form_class` for the selected objects; on a valid POST calls start(obj, cleaned_data) for each and
    reports what started (or what was wrong) as admin messages. cost(obj, initial): what the run would cost on this
    machine with the form's initial settings, shown beside each object before anything starts."""
    action = request.POST.get("action")
    if request.POST.get("confirmed") == "yes":
        form = form_class(request.POST)
        if form.is_valid():
            for obj in queryset:
                try:
                    modeladmin.message_user(request, start(obj, form.cleaned_data), messages.SUCCESS)
                except (ValueError, ImportError) as exc:
                    modeladmin.message_user(request, f"{obj}: {exc}", messages.ERROR)
            return None
    else:
        form = form_class()
    initial = {name: field.initial for name, field in form.fields.items()}
    rows = [(obj, cost(obj, initial) if cost else "") for obj in queryset]
    context = {**modeladmin.admin_site.each_context(request), "title": title, "description": description,
               "submit_label": submit_label, "queryset": queryset, "rows": rows, "form": form, "action": action,
               "opts": modeladmin.model._meta, "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME}
    return TemplateResponse(request, "admin/cinr_action_form.html", context)


class FitForm(forms.Form):
    arch = forms.ChoiceField(choices=[("siren", "SIREN"), ("mfn", "MFN (FourierNet)")], initial=FIT["arch"])
    hidden = forms.IntegerField(min_value=1, max_value=512, initial=FIT["hidden"], help_text="neurons per hidden layer")
    depth = forms.IntegerField(min_value=1, max_value=16, initial=FIT["depth"],
                               help_text="SIREN: linear layers (3 = 2-32-32-out); MFN: filters")
    seeds_per_image = forms.IntegerField(min_value=1, max_value=64, initial=FIT["seeds_per_image"],
                                         help_text="INRs per image; SimCLR pairs need at least 2")
    steps = forms.IntegerField(min_value=1, max_value=100_000, required=False,
                               help_text="blank: the architecture's default")
    lr = forms.FloatField(min_value=1e-7, max_value=1.0, required=False, help_text="blank: the default")
    anti_alias = forms.BooleanField(required=False, initial=FIT["anti_alias"],
                                    help_text="MFN only: band limit clamped to Nyquist")
    shared_init = forms.BooleanField(required=False, initial=FIT["shared_init"], label=SHARED_INIT_LABEL,
                                     help_text=SHARED_INIT_HELP)
    chunk_images = forms.IntegerField(min_value=1, required=False,
                                      help_text="images per worker task; blank: CINR_FIT_CHUNK_IMAGES")


def fit_spec(data: dict, channels: int) -> FieldSpec:
    """The FieldSpec a FitForm's cleaned data describes, for images with `channels` channels (the preset's, the
    form's sizes over it)."""
    if data["arch"] == "siren":
        return default_fit_spec("siren", channels, hidden=data["hidden"], layers=max(2, data["depth"]))
    return default_fit_spec("mfn", channels, hidden=data["hidden"], filters=data["depth"])


def fit_settings(data: dict) -> dict:
    return {"steps": data["steps"], "lr": data["lr"], "anti_alias": data["anti_alias"],
            "shared_init": data["shared_init"]}


class ConfigForm(forms.Form):
    """A run config as JSON, prefilled with the kind's defaults; checked as the run's config when `kind` is set, so
    a wrong setting is shown on the form with what was typed, not after the page is gone."""

    kind: str | None = None
    config = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "cols": 80}), required=False,
                             help_text="JSON object; blank or {} = defaults")

    def clean_config(self) -> dict:
        text = (self.cleaned_data.get("config") or "").strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise forms.ValidationError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("the config must be a JSON object")
        if self.kind is not None:
            from cinr_web.runs.configs import normalise_config

            try:
                normalise_config(self.kind, value)
            except (TypeError, ValueError) as error:
                raise forms.ValidationError(str(error)) from None
        return value


def config_form(initial: dict, kind: str | None = None) -> type[ConfigForm]:
    class Form(ConfigForm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            if not self.is_bound:
                self.fields["config"].initial = json.dumps(initial, indent=2)

    Form.kind = kind
    return Form
