"""Celery tasks (filled in below)."""
