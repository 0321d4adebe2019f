from cinr_web.runs.management.commands.probe import Command as ProbeCommand


class Command(ProbeCommand):
    help = "Embedding map (t-SNE): of an encoder run's features (--encoder) and of the raw weights, or raw only."
    kind = "embedding"
