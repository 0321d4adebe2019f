import argparse

from django.core.management.base import BaseCommand, CommandError

from cinr_web.datasets.models import ImageDataset
from cinr_web.inrsets.services import start_fit
from cinr_web.runs.defaults import fit_spec
from cinr_web.runs.management.commands._common import wait


class Command(BaseCommand):
    help = "Fit an INR set to a dataset (queued on the gpu workers, in chunks of --chunk-images images)."

    def add_arguments(self, parser):
        parser.add_argument("dataset", help="dataset name or id")
        parser.add_argument("--arch", choices=["siren", "mfn"], default="siren")
        parser.add_argument("--hidden", type=int, help="hidden width (default: the paper's, 32 SIREN / 16 MFN)")
        parser.add_argument("--depth", type=int, help="SIREN linear layers (default 3) or MFN filters (default 3)")
        parser.add_argument("--seeds", type=int, default=2, help="INRs per image (SimCLR needs >= 2)")
        parser.add_argument("--steps", type=int)
        parser.add_argument("--lr", type=float)
        parser.add_argument("--anti-alias", action=argparse.BooleanOptionalAction, default=None,
                            help="MFN: clamp the band limit to Nyquist (default: on for an MFN, as the preset fits)")
        parser.add_argument("--shared-init", action="store_true",
                            help="seed s starts from the same weights for every image (not the paper's setting)")
        parser.add_argument("--independent-init", action="store_true",
                            help="each INR starts from its own initialisation (the paper's setting; the default)")
        parser.add_argument("--chunk-images", type=int)
        parser.add_argument("--wait", action="store_true", help="follow progress until the fit finishes")

    def handle(self, *args, **o):
        key = o["dataset"]
        dataset = ImageDataset.objects.filter(pk=int(key)).first() if key.isdigit() else None
        dataset = dataset or ImageDataset.objects.filter(name=key).first()
        if dataset is None:
            raise CommandError(f"no dataset {key!r}")
        depth = "layers" if o["arch"] == "siren" else "filters"
        spec = fit_spec(o["arch"], dataset.channels, hidden=o["hidden"], **{depth: o["depth"]})
        try:
            inrset = start_fit(dataset, spec, {"steps": o["steps"], "lr": o["lr"], "anti_alias": o["anti_alias"],
                                               "shared_init": o["shared_init"] and not o["independent_init"]},
                               o["seeds"], chunk_images=o["chunk_images"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        run = inrset.fit_run
        self.stdout.write(f"INR set {inrset.pk}: fit run {run.pk} queued in {run.chunks.count()} chunk(s)")
        if o["wait"]:
            wait(self.stdout, [run])
