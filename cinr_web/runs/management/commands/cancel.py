from django.core.management.base import BaseCommand

from cinr_web.runs.management.commands._common import describe, get_run
from cinr_web.runs.services import cancel_run


class Command(BaseCommand):
    help = "Cancel runs (queued ones at once; running ones stop cooperatively within a step or two)."

    def add_arguments(self, parser):
        parser.add_argument("runs", nargs="+", type=int)

    def handle(self, *args, runs, **options):
        for pk in runs:
            self.stdout.write(describe(cancel_run(get_run(pk))))
