"""Test harness: real PostgreSQL + Redis, or the embedded SQLite + SqliteHuey.

``TEST_BACKEND=embedded`` (default) or ``TEST_BACKEND=services`` picks the backend for
the whole run (``make test`` runs both). The services run creates its own database on
the server named by ``TEST_DATABASE_URL`` and its own Huey namespace on
``TEST_REDIS_URL``, so concurrent runs never meet. Schema comes from the migrations,
and every test starts on empty tables.
"""
from __future__ import annotations

import contextvars
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest

BACKEND = os.environ.get("TEST_BACKEND", "embedded")
TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
RUN_ID = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"
TMP = Path(tempfile.mkdtemp(prefix=f"qbosync-test-{RUN_ID}-"))
ON_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Fixed test keys: real Fernet keys, never used outside tests.
TEST_FERNET_KEYS = "SEByAMfZKDQ_U8ngNv4CqL0IyYJgdZU4eJzqBFB02sY=,ICWjc1CO4LFVPYgcnrcMmukr_c0JqVD7UPkKFNXkuLw="
PASSWORD = "correct horse battery"


def _unavailable(what: str, exc: Exception) -> None:
    message = (f"\n{'!' * 78}\n!! {what} is not reachable ({type(exc).__name__}: {exc}).\n"
               f"!! The '{BACKEND}' test run cannot run here.\n{'!' * 78}\n")
    if ON_CI:
        pytest.exit(message + "CI=true: this is a failure.", returncode=3)
    pytest.exit(message + "Skipping this run (set CI=true to make it a failure).", returncode=0)


def _database_url() -> str:
    """Create this run's own database on the test server and return its URL."""
    import psycopg2
    from sqlalchemy.engine import make_url

    admin = make_url(TEST_DATABASE_URL)
    name = f"qbosync_test_{RUN_ID}"
    try:
        conn = psycopg2.connect(host=admin.host, port=admin.port or 5432, user=admin.username,
                                password=admin.password, dbname=admin.database, connect_timeout=3)
    except Exception as exc:
        _unavailable(f"PostgreSQL at {admin.host}:{admin.port or 5432}", exc)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    return admin.set(database=name).render_as_string(hide_password=False)


def _check_redis() -> None:
    import redis

    try:
        redis.Redis.from_url(TEST_REDIS_URL, socket_connect_timeout=2).ping()
    except Exception as exc:
        _unavailable(f"Redis at {TEST_REDIS_URL}", exc)


# The environment of the run's app (and of the processes tests start), set once in
# pytest_configure (the services run's database name is only known once it is created).
ENV = {
    "APP_ENV": "test",
    "DATABASE_URL": f"sqlite:///{TMP / 'test.db'}",
    "SECRET_KEY": "test-secret-key-0123456789abcdef",
    "TOKEN_ENCRYPTION_KEYS": TEST_FERNET_KEYS,
    "INSTANCE_PATH": str(TMP / "instance"),
    "REDIS_NAMESPACE": f"qbosync-test-{RUN_ID}",
    "HUEY_SQLITE_PATH": str(TMP / "huey.db"),
    "QBO_WEBHOOK_VERIFIER_TOKEN": "test-webhook-verifier",
    "SYNC_INTERVAL_MINUTES": "5",
    # Most tests exercise the machinery on two types; tests of the breadth switch the rest on.
    "SYNC_OBJECT_TYPES": "customer,invoice",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "services: needs PostgreSQL and Redis (skipped on the embedded run)")
    config.addinivalue_line("markers", "e2e: drives the dashboard in real Chromium")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")
    # Here rather than at import: pytest.exit then ends the run with its own exit code.
    if BACKEND == "services":
        _check_redis()
        ENV["DATABASE_URL"] = _database_url()
        ENV["REDIS_URL"] = TEST_REDIS_URL
    os.environ.update(ENV)
    os.environ.pop("QBO_CLIENT_ID", None)
    if BACKEND != "services":
        os.environ.pop("REDIS_URL", None)


def pytest_report_header(config):
    return f"backend: {BACKEND} ({re.sub(r'//[^@]*@', '//', ENV['DATABASE_URL'])})"


def pytest_collection_modifyitems(config, items):
    if BACKEND == "services":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL + Redis: runs in the services run")
    for item in items:
        if "services" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    if BACKEND == "services":
        _drop_test_database()
        _flush_redis_namespace()
    shutil.rmtree(TMP, ignore_errors=True)


def _drop_test_database() -> None:
    import psycopg2
    from sqlalchemy.engine import make_url

    try:
        from dashboard.extensions import db

        if _APP is not None:
            with _APP.app_context():
                db.engine.dispose()
    except Exception:
        pass
    url = make_url(TEST_DATABASE_URL)
    try:
        conn = psycopg2.connect(host=url.host, port=url.port or 5432, user=url.username,
                                password=url.password, dbname=url.database, connect_timeout=3)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "qbosync_test_{RUN_ID}" WITH (FORCE)')
        conn.close()
    except Exception as exc:  # leave it; a later run is not affected (unique names)
        print(f"could not drop test database: {exc}")


def _flush_redis_namespace() -> None:
    import redis

    client = redis.Redis.from_url(TEST_REDIS_URL)
    keys = list(client.scan_iter(match=f"*{ENV['REDIS_NAMESPACE']}*", count=1000))
    if keys:
        client.delete(*keys)


_APP = None


@pytest.fixture(scope="session")
def app():
    """One app for the run, its schema built by the real migrations."""
    global _APP
    from flask_migrate import upgrade

    from dashboard import create_app

    application = create_app({"TESTING": True}, environ=dict(os.environ))
    with application.app_context():
        upgrade()
    _APP = application
    return application


@pytest.fixture(autouse=True)
def _clean_state(request):
    """Empty every table and the queue after each test that used the app."""
    yield
    if "app" not in request.fixturenames or _APP is None:
        return
    from sqlalchemy import text

    from dashboard.extensions import db
    from dashboard.queue import app_huey

    with _APP.app_context():
        db.session.remove()
        tables = [t.name for t in reversed(db.metadata.sorted_tables)]
        with db.engine.begin() as conn:
            if db.engine.dialect.name == "postgresql":
                conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
            else:
                # The audit trail's triggers refuse deletes (append-only); emptying the test
                # database is an administrator's act: drop them, empty, put them back.
                triggers = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")).all()
                for name, _sql in triggers:
                    conn.execute(text(f'DROP TRIGGER "{name}"'))
                for name in tables:
                    conn.execute(text(f"DELETE FROM {name}"))
                for _name, sql in triggers:
                    conn.execute(text(sql))
    app_huey(_APP).flush()


@pytest.fixture
def db_session(app, monkeypatch):
    """The database session of an app context that the test body holds.

    Flask reuses an app context that is already pushed for every request, so requests
    from test clients would share this one's ``g`` (Flask-Login's cached operator, the
    CSRF token) and database session: one client signed in made another look signed in.
    Each request therefore starts in an empty ``contextvars`` context, as in a server's
    worker thread, and gets its own app context, ``g`` and session.
    """
    from dashboard.extensions import db

    serve = app.wsgi_app
    monkeypatch.setattr(app, "wsgi_app",
                        lambda environ, start_response: contextvars.Context().run(serve, environ, start_response))
    with app.app_context():
        yield db.session
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def operator(app):
    from dashboard.services.operators import create_operator

    with app.app_context():
        op = create_operator("alice", PASSWORD)
        return {"id": op.id, "username": "alice", "password": PASSWORD}


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf-token" content="([^"]+)"', html) or \
        re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or \
        re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


@pytest.fixture
def signed_in(client, operator):
    """A test client signed in as an operator, with ``client.csrf`` set."""
    page = client.get("/sign-in").get_data(as_text=True)
    response = client.post("/sign-in", data={"username": operator["username"], "password": operator["password"],
                                             "csrf_token": csrf_token_from(page)})
    assert response.status_code == 302, response.get_data(as_text=True)
    client.csrf = csrf_token_from(client.get("/").get_data(as_text=True))
    return client
