"""Celery workers: take ids from the queue, load through api/ persistence, compute with models/."""
