from django.core.management.base import BaseCommand, CommandError

from cinr_web.runs.management.commands import _common
from cinr_web.runs.management.commands._common import describe, get_inrset, parse_config
from cinr_web.runs.services import start_chain, start_run


class Command(BaseCommand):
    help = "Train an encoder (SimCLR or supervised) on an INR set; --chain adds a linear probe and an embedding map."
    default_kind = "simclr"

    def add_arguments(self, parser):
        parser.add_argument("inrset", type=int, help="INR set id")
        parser.add_argument("--kind", choices=["simclr", "supervised"], default=self.default_kind)
        parser.add_argument("--config", help='JSON, e.g. \'{"steps": 500, "batch_size": 128}\'')
        parser.add_argument("--chain", action="store_true", help="then a linear probe and an embedding map")
        parser.add_argument("--wait", action="store_true", help="follow progress until the runs finish")

    def handle(self, *args, inrset, kind, config, chain, **options):
        inrset_obj = get_inrset(inrset)
        config = parse_config(config)
        fit = inrset_obj.fit_run
        after = fit if fit is not None and fit.status != "succeeded" else None
        try:
            if chain:
                runs = start_chain(inrset_obj, encoder_kind=kind, encoder_config=config, after=after)
            else:
                runs = [start_run(kind, inrset_obj, config, parent=after)]
        except (ValueError, ImportError) as exc:
            raise CommandError(str(exc)) from None
        for run in runs:
            self.stdout.write(describe(run))
        if options["wait"]:
            _common.wait(self.stdout, runs)
