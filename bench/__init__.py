"""`make bench`: the task engine against Celery + Redis and a raw sandbox loop, in one run."""
