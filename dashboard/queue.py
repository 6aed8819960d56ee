"""The Huey instance of an app, built from its validated settings.

Redis (``PriorityRedisExpireHuey``: task priorities, and locks that expire after a
crash, on Redis 7.0) when ``REDIS_URL`` is set, otherwise ``SqliteHuey`` in
``instance/`` (the embedded default). ``create_app`` builds the instance and declares
the tasks on it (``dashboard.tasks.install``); the worker entry (``dashboard.worker``)
runs a consumer for it. Nothing here reads the environment or builds an app.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from flask import current_app
from huey import Huey, PriorityRedisExpireHuey, SqliteHuey
from werkzeug.local import LocalProxy

from .config import Settings
from .redis_client import redis_client

EXTENSION = "huey"
RESULTS_KEPT_SECONDS = 24 * 3600


def build_huey(settings: Settings) -> Huey:
    """Return a Huey instance named by the deployment's Redis namespace."""
    if settings.redis_url:
        pool = redis_client(settings.redis_url).connection_pool
        return PriorityRedisExpireHuey(settings.redis_namespace, connection_pool=pool,
                                       expire_time=RESULTS_KEPT_SECONDS)
    Path(settings.huey_sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(settings.redis_namespace, filename=settings.huey_sqlite_path, timeout=10)


def app_huey(app) -> Huey:
    """Return the Huey instance ``create_app`` gave ``app``."""
    return app.extensions[EXTENSION]


# The current app's instance, for code that runs inside an app context (tests, the CLI).
huey: Huey = LocalProxy(lambda: app_huey(current_app))  # type: ignore[assignment]


def in_app_context(app) -> Callable[[Callable], Callable]:
    """Decorate a task body so that it runs inside ``app``'s context (its settings, database)."""
    def decorate(fn: Callable) -> Callable:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with app.app_context():
                return fn(*args, **kwargs)

        return wrapper

    return decorate
