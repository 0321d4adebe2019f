from django.contrib import admin, messages
from django.utils import timezone
from django.utils.html import format_html

from cinr_web.runs.admin_forms import action_with_form, config_form
from cinr_web.runs.models import Artifact, FitChunk, MetricPoint, Run


def progress_bar(value: float) -> str:
    return format_html('<progress value="{}" max="1" style="width:6em"></progress> {}%', f"{value:.3f}",
                       f"{value * 100:.0f}")


class ArtifactInline(admin.TabularInline):
    model = Artifact
    extra = 0
    readonly_fields = ["kind", "file", "meta", "created_at"]
    can_delete = False


class FitChunkInline(admin.TabularInline):
    model = FitChunk
    extra = 0
    readonly_fields = ["index", "start", "stop", "status", "done", "total", "psnr", "time", "worker"]
    exclude = ["file", "psnr_mean", "seconds"]  # shown rounded, in "psnr" and "time"
    can_delete = False

    @admin.display(description="PSNR (dB)")
    def psnr(self, obj: FitChunk) -> str:
        return "-" if obj.psnr_mean is None else f"{obj.psnr_mean:.2f}"

    @admin.display(description="time (s)")
    def time(self, obj: FitChunk) -> str:
        return "-" if obj.seconds is None else f"{obj.seconds:.1f}"


class StaleFilter(admin.SimpleListFilter):
    title = "heartbeat"
    parameter_name = "stale"

    def lookups(self, request, model_admin):
        return [("yes", "stale (worker lost?)")]

    def queryset(self, request, queryset):
        from cinr_web.runs.services import stale_runs

        return queryset.filter(pk__in=stale_runs().values("pk")) if self.value() == "yes" else queryset


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress_column", "inrset", "parent", "created_by", "created_at",
                    "heartbeat_age", "summary"]
    list_filter = ["status", "kind", StaleFilter, "cancel_requested"]
    list_select_related = ["inrset", "inrset__dataset", "parent", "created_by"]
    readonly_fields = [f.name if f.name != "progress" else "progress_column" for f in Run._meta.fields]
    exclude = ["progress"]  # shown as a bar with its percentage, in "progress_column"
    inlines = [FitChunkInline, ArtifactInline]
    actions = ["cancel", "rerun_runs", "probe_with_encoder", "embedding_with_encoder"]

    def has_add_permission(self, request) -> bool:
        return False  # runs are started by actions, commands and the API (services)

    def has_change_permission(self, request, obj: Run | None = None) -> bool:
        return False  # a run's page is a record (no Save): runs change through the actions, workers and services

    def has_delete_permission(self, request, obj: Run | None = None) -> bool:
        # A queued or running run is cancelled first (its worker would write to a deleted row)
        return super().has_delete_permission(request, obj) and (obj is None or obj.is_finished)

    @admin.display(description="progress", ordering="progress")
    def progress_column(self, obj: Run) -> str:
        return progress_bar(obj.progress)

    @admin.display(description="heartbeat")
    def heartbeat_age(self, obj: Run) -> str:
        if obj.heartbeat_at is None or obj.status != "running":
            return "-"
        return f"{(timezone.now() - obj.heartbeat_at).total_seconds():.0f} s ago"

    @admin.display(description="result")
    def summary(self, obj: Run) -> str:
        if obj.status == "failed":
            return (obj.error.splitlines() or [""])[0][:100]
        for key in ("accuracy", "psnr_mean", "top1", "loss"):
            if key in (obj.result or {}):
                value = obj.result[key]
                return f"{key} {value:.4g}" if isinstance(value, float) else f"{key} {value}"
        return ""

    @admin.action(description="Cancel the selected runs")
    def cancel(self, request, queryset):
        from cinr_web.runs.services import cancel_run

        for run in queryset:
            cancel_run(run)
        self.message_user(request, f"cancel requested for {queryset.count()} run(s)")

    @admin.action(description="Re-run (stale, failed or cancelled runs)")
    def rerun_runs(self, request, queryset):
        from cinr_web.runs.services import rerun

        for run in queryset:
            try:
                new = rerun(run, request.user)
                self.message_user(request, f"run {run.pk} re-run as run {new.pk}")
            except ValueError as exc:
                self.message_user(request, f"run {run.pk}: {exc}", messages.ERROR)

    def _with_encoder(self, request, queryset, kind: str, title: str):
        from cinr_web.runs.services import start_run

        def start(encoder: Run, data: dict) -> str:
            if not encoder.is_encoder:
                raise ValueError(f"run {encoder.pk} is a {encoder.kind} run, not an encoder")
            run = start_run(kind, encoder.inrset, data["config"], request.user, parent=encoder)
            return f"{kind} run {run.pk} queued with encoder run {encoder.pk}"

        defaults = {"seed": 0, "max_points": 5000} if kind == "embedding" else {}
        return action_with_form(self, request, queryset, form_class=config_form(defaults, kind), title=title,
                                description=f"A {kind} run for each selected encoder run (SimCLR or supervised).",
                                submit_label="Start", start=start)

    @admin.action(description="Linear probe with the selected encoders…")
    def probe_with_encoder(self, request, queryset):
        return self._with_encoder(request, queryset, "probe", "Linear probe")

    @admin.action(description="Embedding map with the selected encoders…")
    def embedding_with_encoder(self, request, queryset):
        return self._with_encoder(request, queryset, "embedding", "Embedding map")


@admin.register(MetricPoint)
class MetricPointAdmin(admin.ModelAdmin):
    list_display = ["run", "name", "step", "rounded_value", "time"]
    list_filter = ["name"]
    readonly_fields = ["run", "name", "step", "rounded_value", "time"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="value", ordering="value")
    def rounded_value(self, obj: MetricPoint) -> str:
        return f"{obj.value:.5g}"


