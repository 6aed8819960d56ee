"""The Huey instance, and the wrapper that gives every task an app context.

Huey binds tasks to its instance when they are declared, so the instance is built at
import from the same environment the app reads: Redis (``PriorityRedisExpireHuey``:
task priorities, and locks that expire after a crash, on Redis 7.0) when ``REDIS_URL``
is set, otherwise ``SqliteHuey`` in ``instance/`` (the embedded default).
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Callable

from huey import PriorityRedisExpireHuey, SqliteHuey
from redis import ConnectionPool

from .config import load_config

INSTANCE_PATH = Path(os.environ.get("INSTANCE_PATH") or Path(__file__).resolve().parent.parent / "instance")


def build_huey(settings, name: str):
    if settings.redis_url:
        # Short timeouts: a dead Redis must fail health checks fast, not hang a worker.
        pool = ConnectionPool.from_url(settings.redis_url, socket_connect_timeout=2,
                                       socket_timeout=30, health_check_interval=30)
        return PriorityRedisExpireHuey(name, connection_pool=pool, expire_time=24 * 3600)
    Path(settings.huey_sqlite_path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey(name, filename=settings.huey_sqlite_path, timeout=10)


def _settings_from_env():
    from dotenv import dotenv_values

    env = {**dotenv_values(), **os.environ}
    return load_config(env, INSTANCE_PATH)


settings = _settings_from_env()
huey = build_huey(settings, os.environ.get("HUEY_NAME", "qbosync"))

_app = None


def set_app(app) -> None:
    """Use this app for task contexts (the worker and tests call it)."""
    global _app
    _app = app


def get_app():
    global _app
    if _app is None:
        from . import create_app

        _app = create_app()
    return _app


def with_app_context(fn: Callable) -> Callable:
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with get_app().app_context():
            return fn(*args, **kwargs)

    return wrapper


def task(**options):
    """``huey.task`` whose body runs inside the Flask app context."""
    return lambda fn: huey.task(**options)(with_app_context(fn))


def periodic_task(validate_datetime, **options):
    return lambda fn: huey.periodic_task(validate_datetime, **options)(with_app_context(fn))
