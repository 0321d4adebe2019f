from django.contrib import admin
from django.utils.html import format_html

from cinr_web.datasets.models import Image, ImageDataset
from cinr_web.runs.admin_forms import FitForm, action_with_form, fit_settings, fit_spec


@admin.register(ImageDataset)
class ImageDatasetAdmin(admin.ModelAdmin):
    list_display = ["name", "source", "num_images", "shape", "classes", "inr_sets", "created_at"]
    list_filter = ["source", "channels"]
    search_fields = ["name", "description"]
    readonly_fields = ["source", "channels", "height", "width", "class_names", "num_images", "arrays", "created_by",
                       "created_at"]
    actions = ["fit_inrs"]

    def has_add_permission(self, request) -> bool:
        return False  # datasets come in through imports (manage.py import_dataset, the API, the dashboard)

    @admin.display(description="C x H x W")
    def shape(self, obj: ImageDataset) -> str:
        return f"{obj.channels} x {obj.height} x {obj.width}"

    @admin.display(description="classes")
    def classes(self, obj: ImageDataset) -> int:
        return len(obj.class_names)

    @admin.display(description="INR sets")
    def inr_sets(self, obj: ImageDataset) -> int:
        return obj.inrsets.count()

    @admin.action(description="Fit INRs to the selected datasets…")
    def fit_inrs(self, request, queryset):
        from cinr_web.inrsets.services import start_fit

        def start(dataset: ImageDataset, data: dict) -> str:
            inrset = start_fit(dataset, fit_spec(data, dataset.channels), fit_settings(data), data["seeds_per_image"],
                               request.user, chunk_images=data.get("chunk_images"))
            return f"{dataset}: fit queued as INR set {inrset.pk} (run {inrset.fit_run.pk})"

        def cost(dataset: ImageDataset, data: dict) -> str:
            from cinr_web.inrsets.services import normalise_fit_config
            from cinr_web.runs.estimates import estimate_fit

            spec = fit_spec(data, dataset.channels)
            steps = normalise_fit_config(spec, {"steps": data["steps"]})["steps"]
            return estimate_fit(dataset, spec.to_dict(), steps, data["seeds_per_image"]).text

        return action_with_form(self, request, queryset, form_class=FitForm, title="Fit INRs",
                                description="Each selected dataset gets a new INR set, fitted by the GPU workers in "
                                            "chunks.", submit_label="Start fitting", start=start, cost=cost)


@admin.register(Image)
class ImageAdmin(admin.ModelAdmin):
    list_display = ["__str__", "label", "split", "thumbnail"]
    list_filter = ["split", "dataset"]
    list_select_related = ["dataset"]
    readonly_fields = ["dataset", "index", "label", "split", "file", "thumbnail"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.display(description="image")
    def thumbnail(self, obj: Image) -> str:
        return format_html('<img src="{}" alt="" style="height:32px;image-rendering:pixelated">', obj.file.url)
