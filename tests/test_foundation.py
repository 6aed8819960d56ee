"""Foundation: sign-in, CSRF, config validation, upsert keys, health, migrations."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from dashboard.config import ConfigError, load_config
from tests.conftest import ENV, csrf_token_from

ROOT = Path(__file__).resolve().parent.parent


# --- configuration -------------------------------------------------------------------

def test_config_defaults_to_embedded_sqlite_and_generates_secrets_once(tmp_path):
    first = load_config({}, tmp_path)
    assert first.database_url == f"sqlite:///{tmp_path / 'qbosync.db'}"
    assert first.redis_url is None and first.secret_key_generated
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    second = load_config({}, tmp_path)
    assert (second.secret_key, second.token_encryption_keys) == (first.secret_key, first.token_encryption_keys)
    assert first.uses_simulator and first.qbo_api_base_url == "http://127.0.0.1:3001"


@pytest.mark.parametrize("env, message", [
    ({"TOKEN_ENCRYPTION_KEYS": "not-a-key"}, "TOKEN_ENCRYPTION_KEYS key #1 is not a Fernet key"),
    ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL must be a URL starting with postgresql://"),
    ({"DATABASE_URL": "postgresql:///"}, "DATABASE_URL must be a URL"),
    ({"REDIS_URL": "localhost:6379"}, "REDIS_URL must be a URL starting with redis://"),
    ({"SYNC_INTERVAL_MINUTES": "five"}, "SYNC_INTERVAL_MINUTES must be a whole number"),
    ({"SYNC_INTERVAL_MINUTES": "0"}, "SYNC_INTERVAL_MINUTES must be at least 1"),
    ({"QBO_ENVIRONMENT": "staging"}, "QBO_ENVIRONMENT must be sandbox or production"),
    ({"APP_ENV": "production", "DATABASE_URL": "postgresql://h/db", "REDIS_URL": "redis://h"},
     "SECRET_KEY is required when APP_ENV=production"),
    ({"APP_ENV": "production"}, "DATABASE_URL is required"),
])
def test_config_errors_name_the_variable(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config(env, tmp_path)


def test_settings_repr_hides_secrets(tmp_path):
    settings = load_config({"DATABASE_URL": "postgresql://u:hunter2@h/db", "QBO_CLIENT_ID": "cid",
                            "QBO_CLIENT_SECRET": "s3cr3t-value"}, tmp_path)
    assert "hunter2" not in repr(settings) and "s3cr3t-value" not in repr(settings)
    assert settings.database_url.startswith("postgresql+psycopg2://")


def test_bad_config_stops_the_app_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "TOKEN_ENCRYPTION_KEYS": "nope", "INSTANCE_PATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "routes"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith("Configuration error: TOKEN_ENCRYPTION_KEYS")
    assert "Traceback" not in proc.stderr


# --- sign-in and CSRF ----------------------------------------------------------------

def _sign_in(client, username, password, **extra):
    token = csrf_token_from(client.get("/sign-in").get_data(as_text=True))
    return client.post("/sign-in", data={"username": username, "password": password, "csrf_token": token},
                       **extra)


def test_sign_in_good_and_bad(client, operator):
    assert _sign_in(client, "alice", "wrong password!").status_code == 401
    response = _sign_in(client, "alice", operator["password"])
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert client.get("/").status_code == 200


def test_sign_in_redirects_back_but_never_off_site(client, operator):
    token = csrf_token_from(client.get("/sign-in").get_data(as_text=True))
    response = client.post("/sign-in?next=//evil.example/x", data={
        "username": "alice", "password": operator["password"], "csrf_token": token})
    assert response.headers["Location"] == "/"


def test_failed_sign_ins_are_throttled_per_account_and_address(client, operator):
    for _ in range(5):
        assert _sign_in(client, "alice", "wrong password!").status_code == 401
    # Now even the right password is refused for a while.
    response = _sign_in(client, "alice", operator["password"])
    assert response.status_code == 429 and "Too many failed sign-ins" in response.get_data(as_text=True)
    # Another address is still throttled for this account...
    assert _sign_in(client, "alice", operator["password"],
                    environ_base={"REMOTE_ADDR": "10.9.9.9"}).status_code == 429
    # ...and this address is throttled for other accounts too.
    assert _sign_in(client, "bob", "whatever-pass").status_code == 429


def test_sign_in_without_csrf_token_is_rejected(client, operator):
    response = client.post("/sign-in", data={"username": "alice", "password": operator["password"]})
    assert response.status_code == 400
    assert client.get("/").status_code == 302


def test_sign_out_requires_csrf(signed_in):
    assert signed_in.post("/sign-out").status_code == 400
    assert signed_in.get("/").status_code == 200
    assert signed_in.post("/sign-out", data={"csrf_token": signed_in.csrf}).status_code == 302
    assert signed_in.get("/").status_code == 302


def test_session_cookie_flags(client, operator):
    response = _sign_in(client, "alice", operator["password"])
    session = [c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")]
    assert session and "HttpOnly" in session[0] and "SameSite=Lax" in session[0]


def test_anonymous_htmx_request_gets_a_client_redirect(client):
    response = client.get("/", headers={"HX-Request": "true", "HX-Current-URL": "http://localhost/?page=2"})
    assert response.headers["HX-Redirect"].startswith("/sign-in?next=")


def test_create_operator_command(runner, app):
    result = runner.invoke(args=["create-operator", "carol"], input="a long enough password\n")
    assert result.exit_code == 0, result.output
    result = runner.invoke(args=["create-operator", "carol"], input="a long enough password\n")
    assert result.exit_code != 0 and "already exists" in result.output
    result = runner.invoke(args=["create-operator", "dave"], input="short\n")
    assert result.exit_code != 0 and "at least 10 characters" in result.output
    from dashboard.models import Operator
    from dashboard.extensions import db
    with app.app_context():
        stored = db.session.scalar(select(Operator).where(Operator.username == "carol"))
        assert stored.password_hash.startswith("scrypt:") and "long enough" not in stored.password_hash


# --- URL map: every route is protected or deliberately public ---------------------------

def _concrete(rule) -> str:
    path = rule.rule
    for arg in rule.arguments:
        path = path.replace(f"<{arg}>", "1").replace(f"<int:{arg}>", "1").replace(f"<path:{arg}>", "x")
        path = __import__("re").sub(r"<[^>]*" + arg + r">", "1", path)
    return path


def test_every_route_requires_sign_in_except_the_public_ones(app, client):
    from dashboard.security import PUBLIC_ENDPOINTS

    checked = 0
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC_ENDPOINTS:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_concrete(rule), method=method)
            assert response.status_code in (302, 400), (rule.rule, method, response.status_code)
            if response.status_code == 302:
                assert response.headers["Location"].startswith("/sign-in"), rule.rule
            checked += 1
    assert checked >= 2


def test_every_state_changing_route_requires_csrf(app, signed_in):
    exempt = {"oauth.callback", "webhooks.receive"}
    checked = 0
    for rule in app.url_map.iter_rules():
        unsafe = rule.methods & {"POST", "PUT", "PATCH", "DELETE"}
        if not unsafe or rule.endpoint in exempt:
            continue
        for method in unsafe:
            response = signed_in.open(_concrete(rule), method=method)
            assert response.status_code == 400, (rule.rule, method, response.status_code)
            assert "Form expired" in response.get_data(as_text=True) or response.is_json
            checked += 1
    assert checked >= 1


# --- security headers ---------------------------------------------------------------------

def test_security_headers(client):
    response = client.get("/sign-in")
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"


# --- health ---------------------------------------------------------------------------

def test_health_ok(client):
    response = client.get("/v1/health")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "queue"}
    assert all(c["status"] == "up" for c in body["checks"].values())


def test_health_names_a_failing_database(tmp_path):
    from dashboard import create_app

    env = {**ENV, "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nowhere", "INSTANCE_PATH": str(tmp_path)}
    response = create_app({"TESTING": True}, environ=env).test_client().get("/v1/health")
    assert response.status_code == 503
    body = response.get_json()
    assert body["failing"] == ["database"] and body["checks"]["queue"]["status"] == "up"


def test_health_names_a_failing_queue(tmp_path):
    from dashboard import create_app

    env = {**ENV, "REDIS_URL": "redis://127.0.0.1:1/0", "INSTANCE_PATH": str(tmp_path)}
    response = create_app({"TESTING": True}, environ=env).test_client().get("/v1/health")
    assert response.status_code == 503
    assert response.get_json()["failing"] == ["queue"]
    assert response.get_json()["checks"]["queue"]["ms"] < 2000


# --- upsert keys ---------------------------------------------------------------------------

def test_upsert_keys(db_session):
    from sqlalchemy.exc import IntegrityError

    from dashboard.models import Company, Customer

    db_session.add_all([Company(source_id="111"), Company(source_id="222")])
    db_session.flush()
    db_session.add_all([Customer(company_source_id="111", source_id="1"),
                        Customer(company_source_id="222", source_id="1")])
    db_session.commit()
    assert db_session.scalar(select(func.count()).select_from(Customer)) == 2
    db_session.add(Customer(company_source_id="111", source_id="1"))
    with pytest.raises(IntegrityError):
        db_session.commit()
    db_session.rollback()


# --- migrations ------------------------------------------------------------------------------

# SQLite cannot reflect expression indexes, so alembic skips ix_company_name_order (and the
# search's trigram indexes) there
# with this warning (the index is PostgreSQL only); the PostgreSQL run compares it.
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index "
                            "'ix_company_name_order'")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index "
                            "'ix_company_(name|source_id)_trgm'")
def test_models_and_migrations_agree(app):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from dashboard.extensions import db

    with app.app_context(), db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(context, db.metadata)
    assert diff == [], diff


def test_tuning_knobs_are_validated_at_start_up(tmp_path):
    settings = load_config({"SYNC_PAGE_CONCURRENCY": "2", "QBO_HTTP_TIMEOUT": "7.5"}, tmp_path)
    assert settings.tuning["SYNC_PAGE_CONCURRENCY"] == 2 and settings.tuning["QBO_HTTP_TIMEOUT"] == 7.5
    assert settings.tuning["SYNC_RETRIES"] == 3 and settings.tuning["SYNC_RETRY_DELAY"] == 1.0
    with pytest.raises(ConfigError, match="SYNC_PAGE_CONCURRENCY must be a whole number, got 'many'"):
        load_config({"SYNC_PAGE_CONCURRENCY": "many"}, tmp_path)
    with pytest.raises(ConfigError, match="SYNC_PAGE_SIZE must be at least 1"):
        load_config({"SYNC_PAGE_SIZE": "0"}, tmp_path)
