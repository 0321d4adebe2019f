from django.contrib import admin

from cinr_web.inrsets.models import INRSet
from cinr_web.runs.admin import progress_bar
from cinr_web.runs.admin_forms import action_with_form, config_form


def _defaults(kind: str) -> dict:
    """The config a run of `kind` gets when the form is left as it is (cinr_web.runs.defaults filled in)."""
    from cinr_web.runs.configs import normalise_config

    try:
        return normalise_config(kind, {})
    except ImportError:
        return {}


@admin.register(INRSet)
class INRSetAdmin(admin.ModelAdmin):
    list_display = ["id", "__str__", "status", "fit_progress", "num_inrs", "psnr", "created_at"]
    list_filter = ["status", "dataset"]
    list_select_related = ["dataset"]
    readonly_fields = ["dataset", "spec", "fit_config", "seeds_per_image", "weights", "num_inrs", "psnr",
                       "psnr_histogram", "status", "created_by", "created_at"]
    exclude = ["psnr_mean", "psnr_min", "psnr_max"]  # shown rounded, in "psnr"
    actions = ["pretrain_chain", "supervised_chain", "raw_probe", "raw_embedding", "refit"]

    def has_add_permission(self, request) -> bool:
        return False  # INR sets are made by fits (dataset action, manage.py fit, the API)

    @admin.display(description="PSNR (dB)", ordering="psnr_mean")
    def psnr(self, obj: INRSet) -> str:
        if obj.psnr_mean is None:
            return "-"
        return f"mean {obj.psnr_mean:.2f} (min {obj.psnr_min:.2f}, max {obj.psnr_max:.2f})"

    @admin.display(description="fit progress")
    def fit_progress(self, obj: INRSet) -> str:
        run = obj.fit_run
        return progress_bar(run.progress if run else 0.0)

    def _chain(self, request, queryset, kind: str, title: str):
        from cinr_web.runs.services import start_chain

        def start(inrset: INRSet, data: dict) -> str:
            runs = start_chain(inrset, encoder_kind=kind, encoder_config=data["config"], user=request.user)
            return f"{inrset}: runs {', '.join(str(r.pk) for r in runs)} queued ({kind} -> probe -> embedding)"

        def cost(inrset: INRSet, data: dict) -> str:
            from cinr_web.runs.configs import normalise_config
            from cinr_web.runs.estimates import estimate_training

            try:
                return estimate_training(kind, inrset, normalise_config(kind, {}, inrset=inrset)).text
            except ValueError as error:  # e.g. SimCLR on a set with one seed per image
                return str(error)

        return action_with_form(self, request, queryset, form_class=config_form(_defaults(kind), kind), title=title,
                                description="Trains an encoder on each selected INR set, then a linear probe and an "
                                            "embedding map with it (each waits for the one before).",
                                submit_label="Start", start=start, cost=cost)

    @admin.action(description="Pretrain with SimCLR (then probe and embedding)…")
    def pretrain_chain(self, request, queryset):
        return self._chain(request, queryset, "simclr", "SimCLR pretraining")

    @admin.action(description="Supervised training (then probe and embedding)…")
    def supervised_chain(self, request, queryset):
        return self._chain(request, queryset, "supervised", "Supervised training")

    def _single(self, request, queryset, kind: str):
        from cinr_web.runs.services import start_run

        started = [start_run(kind, inrset, {}, request.user, parent=_pending_fit(inrset)) for inrset in queryset]
        self.message_user(request, f"{kind} on raw weights queued: runs {', '.join(str(r.pk) for r in started)}")

    @admin.action(description="Linear probe on the raw weights (baseline)")
    def raw_probe(self, request, queryset):
        self._single(request, queryset, "probe")

    @admin.action(description="Embedding map of the raw weights")
    def raw_embedding(self, request, queryset):
        self._single(request, queryset, "embedding")

    @admin.action(description="Fit again (re-run the latest fit)")
    def refit(self, request, queryset):
        from cinr_web.runs.services import rerun

        for inrset in queryset:
            run = inrset.fit_run
            try:
                new = rerun(run, request.user)
                self.message_user(request, f"{inrset}: fit re-run as run {new.pk}")
            except ValueError as exc:
                self.message_user(request, f"{inrset}: {exc}", level="error")


def _pending_fit(inrset: INRSet):
    fit = inrset.fit_run
    return fit if fit is not None and fit.status != "succeeded" else None
