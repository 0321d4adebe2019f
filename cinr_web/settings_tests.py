"""Settings of the test sessions (pyproject's DJANGO_SETTINGS_MODULE): the project's settings with a test-only
SECRET_KEY set explicitly.

With DEBUG off the project refuses to start without a SECRET_KEY (there is no built-in production secret); the tests
run with DEBUG off, as production does, so they bring their own key. Processes the tests start inherit it. This
module lives in the cinr_web package, not in tests/, because importing the package loads the Celery app, which reads
the settings: a settings module outside the package would be read half-imported.
"""

import os

os.environ.setdefault("SECRET_KEY", "cinr-tests-only-key-never-used-outside-the-test-suite-0123456789")

from cinr_web.settings import *  # noqa: E402,F403
