"""cinr_web: the Django project (layer 3). Datasets, INR sets and runs live in the database; Celery workers do the work.

Importing the Celery app here makes `@shared_task` bind to it wherever Django starts (web, worker, manage.py).
"""

# Every process that loads Django (the web server, the workers, manage.py) takes its torch, OpenMP and BLAS thread
# counts from one rule (training.threads), set here: before anything imports torch or numpy.
from training.threads import prepare_environment

prepare_environment()

from cinr_web.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
