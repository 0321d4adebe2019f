"""cinr_web: the Django project (layer 3). Datasets, INR sets and runs live in the database; Celery workers do the work.

Importing the Celery app here makes `@shared_task` bind to it wherever Django starts (web, worker, manage.py).
"""

from cinr_web.celery import app as celery_app

__all__ = ["celery_app"]
