"""Health checks for each dependency, with short timeouts."""
from __future__ import annotations

import sqlite3
import time

import redis

from sqlalchemy import text

from ..extensions import db


def _timed(check) -> dict:
    started = time.perf_counter()
    try:
        detail = check()
    except Exception as exc:  # a health check reports, it never raises
        return {"status": "down", "error": f"{type(exc).__name__}: {_first_line(exc)}",
                "ms": round((time.perf_counter() - started) * 1000, 1)}
    result = {"status": "up", "ms": round((time.perf_counter() - started) * 1000, 1)}
    if detail:
        result["backend"] = detail
    return result


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


def check_database() -> str:
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    return db.engine.dialect.name


def check_queue(settings) -> str:
    """Reach the queue backend the settings name (Redis, or the SQLite file)."""
    if settings.redis_url:
        client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=1)
        try:
            client.ping()
        finally:
            client.close()
        return "redis"
    conn = sqlite3.connect(settings.huey_sqlite_path, timeout=1)
    try:
        conn.execute("SELECT 1")
    finally:
        conn.close()
    return "sqlite"


def check_all(settings) -> dict[str, dict]:
    return {"database": _timed(check_database), "queue": _timed(lambda: check_queue(settings))}
