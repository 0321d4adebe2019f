from django.core.management.base import BaseCommand, CommandError

from cinr_web.runs.management.commands._common import describe, get_inrset, get_run, parse_config, wait
from cinr_web.runs.services import start_run


class Command(BaseCommand):
    help = "Linear probe: with an encoder run's features (--encoder), or on an INR set's raw weights (--inrset)."
    kind = "probe"

    def add_arguments(self, parser):
        group = parser.add_mutually_exclusive_group(required=True)
        group.add_argument("--encoder", type=int, help="SimCLR or supervised run id")
        group.add_argument("--inrset", type=int, help="INR set id (raw weights baseline)")
        parser.add_argument("--config", help="JSON config")
        parser.add_argument("--wait", action="store_true")

    def handle(self, *args, encoder, inrset, config, **options):
        parent = get_run(encoder) if encoder else None
        inrset_obj = parent.inrset if parent else get_inrset(inrset)
        if parent is None:  # raw weights: wait for the set's fit if it is still going
            fit = inrset_obj.fit_run
            parent = fit if fit is not None and fit.status != "succeeded" else None
        try:
            run = start_run(self.kind, inrset_obj, parse_config(config), parent=parent)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(describe(run))
        if options["wait"]:
            wait(self.stdout, [run])
