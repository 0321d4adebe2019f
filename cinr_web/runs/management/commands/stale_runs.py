from django.core.management.base import BaseCommand

from cinr_web.runs import services
from cinr_web.runs.management.commands._common import describe


class Command(BaseCommand):
    help = ("List running runs whose heartbeat is stale (their worker most likely died); --rerun re-runs them now "
            "(the workers' sweeper sends them again by itself after CINR_STALE_SECONDS).")

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, help="staleness threshold (default CINR_STALE_SECONDS)")
        parser.add_argument("--rerun", action="store_true")

    def handle(self, *args, seconds, **options):
        stale = list(services.stale_runs(seconds))
        if not stale:
            self.stdout.write("no stale runs")
        for run in stale:
            age = f"heartbeat {run.heartbeat_at:%Y-%m-%d %H:%M:%S}" if run.heartbeat_at else "no heartbeat"
            self.stdout.write(f"{describe(run)} on {run.worker or '?'}, {age}")
            if options["rerun"]:
                self.stdout.write(f"  re-run as run {services.rerun(run, stale_seconds=seconds).pk}")
