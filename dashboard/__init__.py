"""QuickBooks Online sync service: the Flask app factory."""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from dotenv import dotenv_values
from flask import Flask
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

from . import cli, logs, queue, security, tasks
from .config import ConfigError, Settings, load_config
from .extensions import csrf, db, htmx, login_manager, migrate
from .services import type_switches
from .services.token_keys import keys_open_stored_tokens
from .services import metrics as metrics_service
from .views import alerts, audit, auth, budget, companies, errors, health, metrics, oauth, webhooks

ROOT = Path(__file__).resolve().parent.parent
KEYS_CANNOT_OPEN_TOKENS = (
    "TOKEN_ENCRYPTION_KEYS cannot decrypt the stored tokens (the key they were encrypted with was "
    "replaced instead of rotated). Put the previous key back after the new one "
    "(TOKEN_ENCRYPTION_KEYS=new,old), run `flask --app wsgi rotate-keys`, then drop the old key. "
    "Nothing was changed.")

log = logging.getLogger(__name__)

__all__ = ["create_app", "ConfigError"]


def create_app(overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (and ``.env``); ``overrides`` are Flask config
    keys for tests; ``environ`` replaces the process environment entirely."""
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"),
                instance_path=os.environ.get("INSTANCE_PATH") or str(ROOT / "instance"))
    if environ is None:
        environ = {**dotenv_values(ROOT / ".env"), **os.environ}
    settings = load_config(environ, app.instance_path)
    configure(app, settings, overrides or {})
    register_metrics(app)
    register_extensions(app)
    register_queue(app)
    register_blueprints(app)
    register_security(app)
    register_commands(app)
    register_error_pages(app)
    check_token_keys(app)
    type_switches.check_default(settings.sync_object_types)
    return app


def configure(app: Flask, settings: Settings, overrides: Mapping[str, Any]) -> None:
    logs.configure(settings.log_format)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    engine_options: dict[str, Any] = {"pool_pre_ping": True}
    if settings.database_url.startswith("postgresql"):
        # Fail fast when the database is unreachable (health check, workers).
        engine_options["connect_args"] = {"connect_timeout": 3}
    elif settings.database_url.startswith("sqlite"):
        engine_options["connect_args"] = {"timeout": 30}
        Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.update(
        SETTINGS=settings,
        SECRET_KEY=settings.secret_key,
        SQLALCHEMY_DATABASE_URI=settings.database_url,
        SQLALCHEMY_ENGINE_OPTIONS=engine_options,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.production,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.production,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.config.update(settings.tuning)
    app.config.update(overrides)
    if settings.proxy_fix_hops:
        hops = settings.proxy_fix_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)


def register_metrics(app: Flask) -> None:
    """Record into Prometheus' multi-process files (every process: web, worker, commands)."""
    metrics_service.install(app.config["SETTINGS"])


def register_extensions(app: Flask) -> None:
    db.init_app(app)
    # Batch mode lets later migrations ALTER tables on SQLite too.
    migrate.init_app(app, db, directory=str(ROOT / "migrations"), render_as_batch=True,
                     compare_type=True, user_module_prefix="dashboard.types.")
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite"):
        with app.app_context():
            _tune_sqlite(db.engine)


def _tune_sqlite(engine) -> None:
    """WAL lets the web app read while the worker writes; enforce foreign keys."""
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()


def register_queue(app: Flask) -> None:
    """Build the app's Huey instance from its settings and declare the tasks on it."""
    huey = queue.build_huey(app.config["SETTINGS"])
    app.extensions[queue.EXTENSION] = huey
    tasks.install(app, huey)


def register_blueprints(app: Flask) -> None:
    for module in (health, auth, companies, audit, alerts, budget, webhooks, metrics):
        app.register_blueprint(module.bp)
    oauth.register(app)  # also loads the integrations registry


def register_security(app: Flask) -> None:
    security.register(app)


def register_commands(app: Flask) -> None:
    cli.register(app)


def register_error_pages(app: Flask) -> None:
    errors.register(app)


def check_token_keys(app: Flask) -> None:
    """Refuse to start (web, worker, any command) with keys that open none of the stored
    tokens: running on would mark every company reconnect-required, one by one."""
    with app.app_context():
        try:
            readable = keys_open_stored_tokens()
        except SQLAlchemyError as exc:  # the database is down: health checks report that
            log.warning("Could not check TOKEN_ENCRYPTION_KEYS against the stored tokens (%s)",
                        type(exc).__name__)
            return
        finally:
            # No connection opened here may outlive a fork (gunicorn --preload, workers).
            db.engine.dispose()
    if not readable:
        raise ConfigError(KEYS_CANNOT_OPEN_TOKENS)
