from cinr_web.runs.management.commands.train import Command as TrainCommand


class Command(TrainCommand):
    help = "SimCLR pretraining on an INR set (train --kind simclr); --chain adds a probe and an embedding map."
    default_kind = "simclr"
