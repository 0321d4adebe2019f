from django.core.management.base import BaseCommand, CommandError

from cinr_web.datasets.services import import_builtin, import_path
from training.sources import BUILTINS, InvalidImages


class Command(BaseCommand):
    help = (f"Import an image dataset: a built-in ({', '.join(BUILTINS)}) or a path (image folder root/<class>/*.png, "
            "zip of one, MNIST IDX files, CIFAR-10 python batches).")

    def add_arguments(self, parser):
        parser.add_argument("sources", nargs="+", help="built-in names or paths")
        parser.add_argument("--name", help="dataset name (one source only; default: the set's own name)")
        parser.add_argument("--description", default="")

    def handle(self, *args, sources, name, description, **options):
        if name and len(sources) > 1:
            raise CommandError("--name needs exactly one source")
        for source in sources:
            try:
                if source in BUILTINS:
                    dataset = import_builtin(source)
                else:
                    dataset = import_path(source, name=name, description=description)
            except InvalidImages as exc:
                raise CommandError(str(exc)) from None
            shape = f"{dataset.channels}x{dataset.height}x{dataset.width}"
            self.stdout.write(f"dataset {dataset.pk} {dataset.name!r}: {dataset.num_images} images {shape}, "
                              f"{len(dataset.class_names)} classes")
