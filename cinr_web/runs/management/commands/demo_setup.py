import os
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from cinr_web.datasets.services import import_builtin


class Command(BaseCommand):
    help = ("Set up a demo: an admin account (password from CINR_ADMIN_PASSWORD, else generated once and kept in "
            "var/admin-password.txt) and the built-in datasets; prints how to log in.")

    def add_arguments(self, parser):
        parser.add_argument("--url", default="http://127.0.0.1:8000/")
        parser.add_argument("--username", default="admin")
        parser.add_argument("--datasets", nargs="*", default=["digits", "mnist5k"])

    def handle(self, *args, url, username, datasets, **options):
        password_file = settings.VAR_DIR / "admin-password.txt"
        password = os.environ.get("CINR_ADMIN_PASSWORD")
        if not password:
            if password_file.exists():
                password = password_file.read_text().strip()
            else:
                password = secrets.token_urlsafe(12)
                password_file.parent.mkdir(parents=True, exist_ok=True)
                password_file.write_text(password + "\n")
                password_file.chmod(0o600)
        user, _ = get_user_model().objects.get_or_create(username=username,
                                                         defaults={"email": f"{username}@localhost"})
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        for name in datasets:
            dataset = import_builtin(name)
            self.stdout.write(f"dataset {dataset.name}: {dataset.num_images} images")
        line = "=" * 72
        self.stdout.write(f"{line}\n CINR is starting at {url}\n admin: {url}admin/\n"
                          f" user: {username}   password: {password}\n Ctrl-C stops everything.\n{line}")
