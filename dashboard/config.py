"""Settings parsed once from the environment, typed and validated.

``load_config(environ, instance_path)`` is pure apart from the embedded default's
generated secrets (kept under ``instance/``), so tests pass a plain dict.
A bad value raises ``ConfigError`` naming the variable and what is expected.
"""
from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from cryptography.fernet import Fernet

log = logging.getLogger(__name__)

INTUIT_HOSTS = {
    "sandbox": {
        "authorize": "https://appcenter.intuit.com/connect/oauth2",
        "token": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "revoke": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        "api": "https://sandbox-quickbooks.api.intuit.com",
    },
    "production": {
        "authorize": "https://appcenter.intuit.com/connect/oauth2",
        "token": "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "revoke": "https://developer.api.intuit.com/v2/oauth2/tokens/revoke",
        "api": "https://quickbooks.api.intuit.com",
    },
}
# Without QBO_CLIENT_ID the service talks to the built-in simulator (`flask sandbox`).
SIMULATOR = {
    "client_id": "sandbox-client-id",
    "client_secret": "sandbox-client-secret",
    "root": "http://127.0.0.1:3001",
}


# Tuning knobs (rarely changed; tests shorten waits): name -> (default, type, minimum).
TUNING: dict[str, tuple[float, type, float]] = {
    "SYNC_RETRIES": (3, int, 0),                # Huey task retries after a failed sync...
    "SYNC_RETRY_DELAY": (1.0, float, 0),        # ...first wait in seconds...
    "SYNC_RETRY_BACKOFF": (2.0, float, 1),      # ...multiplied by this each time (1 s, 2 s, 4 s)
    "SYNC_LEASE_SECONDS": (60.0, float, 1),     # a run whose lease lapses is re-queued by the reaper
    "SYNC_PAGE_SIZE": (1000, int, 1),           # records per page (Intuit's maximum is 1,000)
    "SYNC_PAGE_CONCURRENCY": (4, int, 1),       # backfill pages fetched at once per object type
    "SYNC_OVERLAP_SECONDS": (300.0, float, 0),  # incremental windows overlap by this (clock skew)
    "QBO_CDC_MAX_OBJECTS": (1000, int, 1),      # CDC's cap; a full answer falls back to queries
    # One retry budget per failure: a request is retried in place only where that can fix
    # it at once (a dropped connection, one 5xx), the run's retries do the rest, so a
    # persistently failing endpoint costs (1 + QBO_HTTP_RETRIES) × (1 + SYNC_RETRIES) = 8
    # requests before it shows Failed.
    "QBO_HTTP_RETRIES": (1, int, 0),            # in-place retries of one request after a 5xx/timeout/drop
    "QBO_HTTP_RETRY_DELAY": (0.5, float, 0),
    "QBO_HTTP_MAX_WAIT": (5.0, float, 0),       # a longer Retry-After is waited for in the queue
    "QBO_THROTTLE_WAIT": (60.0, float, 0),      # after 429s without Retry-After the run waits 5 s, doubling up to this (Intuit: 60 s)
    "SYNC_THROTTLE_DEFERRALS": (10, int, 0),    # 429 deferrals in a row without a page saved before it counts as a failure
    "QBO_HTTP_TIMEOUT": (60.0, float, 1),       # read timeout of one request
    "QBO_LIMIT_PER_MINUTE": (500, int, 1),      # Intuit's per-realm limits, shared by all workers
    "QBO_LIMIT_PER_SECOND": (10, int, 1),
    "QBO_LIMIT_CONCURRENT": (10, int, 1),
    "XERO_LIMIT_PER_MINUTE": (60, int, 1),      # Xero's per-tenant limits, shared by all workers
    "XERO_LIMIT_CONCURRENT": (5, int, 1),
    # PostgreSQL ends a token refresher idle this long inside its locked transaction (paused,
    # cut off), freeing the lock; keep it above the 10 s OAuth timeout.
    "TOKEN_LOCK_IDLE_TIMEOUT_SECONDS": (60.0, float, 1),
    # Retention (services/retention.py, daily): sync runs, webhook deliveries and parity
    # checks older than RETENTION_DAYS go, keeping each company's last runs per object type;
    # the audit trail keeps at least a year (the database refuses younger deletes).
    "RETENTION_DAYS": (30, int, 1),
    "RETENTION_KEEP_RUNS": (5, int, 1),
    "AUDIT_RETENTION_DAYS": (365, int, 365),
    # Alerts: more new problems than this in one pass go out as one digest; an open problem
    # is repeated at most this often; one delivery waits this long and is retried with backoff.
    "ALERT_DIGEST_THRESHOLD": (5, int, 1),
    "ALERT_REPEAT_HOURS": (24.0, float, 1),
    "ALERT_DELIVERY_TIMEOUT": (10.0, float, 1),
    "ALERT_DELIVERY_RETRIES": (3, int, 0),
    "ALERT_RETRY_DELAY": (30.0, float, 0),
    "ALERT_RETRY_BACKOFF": (2.0, float, 1),
}


class ConfigError(Exception):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    production: bool
    database_url: str
    redis_url: str | None
    secret_key: str
    token_encryption_keys: tuple[str, ...]
    qbo_client_id: str
    qbo_client_secret: str = field(repr=False)
    qbo_redirect_uri: str
    qbo_environment: str
    qbo_authorize_url: str
    qbo_token_url: str
    qbo_revoke_url: str
    qbo_api_base_url: str
    qbo_webhook_verifier_token: str = field(repr=False)
    sync_interval_minutes: int
    huey_sqlite_path: str
    # Prefix of every Redis key of this deployment (queue, locks, limiter, token cache), so
    # several deployments (or test runs) can share one Redis without meeting.
    redis_namespace: str
    uses_simulator: bool
    proxy_fix_hops: int
    # Object types new connections sync (None: all); names are checked against the registry at start-up.
    sync_object_types: tuple[str, ...] | None = None
    tuning: Mapping[str, float] = field(default_factory=dict)
    secret_key_generated: bool = False
    # Alert channels (each optional; see ``_alerts``). The webhook URL and the SMTP URL are
    # secrets (a Slack webhook's path is its key, the SMTP URL may hold a password).
    alert_webhook_url: str | None = field(default=None, repr=False)
    alert_webhook_format: str = "json"
    smtp_url: str | None = field(default=None, repr=False)
    alert_email_from: str | None = None
    alert_email_to: tuple[str, ...] = ()
    alert_base_url: str | None = None
    # Metered ("CorePlus") calls this app may spend per calendar month, UTC (Intuit's free
    # Builder tier allows 500,000); the budget governor paces and pauses scheduled syncs by it.
    qbo_monthly_call_budget: int = 500_000
    # Operating: /metrics and logs (issue 13). No METRICS_TOKEN: /metrics answers 404.
    metrics_token: str | None = field(default=None, repr=False)
    metrics_dir: str = ""            # PROMETHEUS_MULTIPROC_DIR: every process of a machine writes there
    metrics_per_company: bool = False  # a realm label on the high-volume series
    log_format: str = "text"         # text | json
    # Xero (see ``_xero``): without XERO_CLIENT_ID every URL points at the simulator.
    xero_client_id: str = ""
    xero_client_secret: str = field(default="", repr=False)
    xero_redirect_uri: str = ""
    xero_authorize_url: str = ""
    xero_token_url: str = ""
    xero_revoke_url: str = ""
    xero_connections_url: str = ""
    xero_api_base_url: str = ""
    xero_webhook_key: str = field(default="", repr=False)
    xero_scopes: str = ""
    # Calls per organisation per day (Xero: 5,000; 1,000 on its Starter tier).
    xero_daily_call_limit: int = 5000
    xero_uses_simulator: bool = True

    def redis_key(self, *parts: str) -> str:
        """Return a Redis key (or key prefix) inside this deployment's namespace."""
        return ":".join(("qbosync", self.redis_namespace, *parts))

    def __repr__(self) -> str:  # secrets never reach logs through a repr
        return (f"Settings(production={self.production}, database={_redact(self.database_url)}, "
                f"redis={_redact(self.redis_url) if self.redis_url else None}, "
                f"qbo_environment={self.qbo_environment})")


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        return url.replace(f":{parts.password}@", ":***@")
    return url


def _url(env: Mapping[str, str], name: str, schemes: tuple[str, ...], default: str | None = None) -> str:
    value = env.get(name, "").strip() or default
    if value is None:
        raise ConfigError(f"{name} is required")
    parts = urlsplit(value)
    scheme = parts.scheme.split("+")[0]
    if scheme not in schemes or (scheme != "sqlite" and not parts.netloc):
        raise ConfigError(f"{name} must be a URL starting with {' or '.join(s + '://' for s in schemes)}, got {_redact(value)!r}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, cast: type, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        kind = "a whole number" if cast is int else "a number"
        raise ConfigError(f"{name} must be {kind}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum:g}, got {raw}")
    return value


def _names(env: Mapping[str, str], name: str) -> tuple[str, ...] | None:
    """Read a comma-separated list of names; unset or blank is None ("all")."""
    names = tuple(n.strip().lower() for n in env.get(name, "").split(",") if n.strip())
    return names or None


def _namespace(env: Mapping[str, str]) -> str:
    value = env.get("REDIS_NAMESPACE", "").strip() or "qbosync"
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", value):
        raise ConfigError(f"REDIS_NAMESPACE must be 1-64 letters, digits, '.', '_' or '-', got {value!r}")
    return value


def _fernet_keys(raw: str) -> tuple[str, ...]:
    keys = tuple(k.strip() for k in raw.split(",") if k.strip())
    for i, key in enumerate(keys, 1):
        try:
            Fernet(key.encode())
        except Exception:
            raise ConfigError(
                f"TOKEN_ENCRYPTION_KEYS key #{i} is not a Fernet key (32 url-safe base64 bytes; "
                "make one with: python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())')") from None
    if not keys:
        raise ConfigError("TOKEN_ENCRYPTION_KEYS must hold at least one Fernet key")
    return keys


def _embedded_secrets(instance_path: Path) -> dict[str, str]:
    """Generate the embedded default's secrets once and keep them under instance/."""
    path = instance_path / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    instance_path.mkdir(parents=True, exist_ok=True)
    secrets = {"SECRET_KEY": os.urandom(32).hex(),
               "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
               # Shared with the built-in simulator so its webhooks verify.
               "QBO_WEBHOOK_VERIFIER_TOKEN": os.urandom(16).hex()}
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process (web, worker) generated them first
        return json.loads(path.read_text())
    with os.fdopen(fd, "w") as f:
        json.dump(secrets, f)
    log.warning("Generated SECRET_KEY and TOKEN_ENCRYPTION_KEYS in %s (embedded default only; "
                "set both in the environment for production)", path)
    return secrets


def load_config(env: Mapping[str, str], instance_path: str | os.PathLike) -> Settings:
    """Parse and validate every setting; raise ConfigError on the first bad one."""
    instance = Path(instance_path)
    app_env = env.get("APP_ENV", env.get("FLASK_ENV", "development")).strip().lower()
    if app_env not in ("development", "production", "test"):
        raise ConfigError(f"APP_ENV must be development, production or test, got {app_env!r}")
    production = app_env == "production"
    # In this order: the first missing or malformed setting is the one reported.
    database_url = _database_url(env, instance, production)
    redis_url = _redis_url(env, production)
    secret_key, keys_raw, verifier, generated = _secrets(env, instance, production)
    return Settings(
        production=production,
        database_url=database_url,
        redis_url=redis_url,
        secret_key=secret_key,
        token_encryption_keys=_fernet_keys(keys_raw),
        **_intuit(env, production),
        qbo_webhook_verifier_token=verifier,
        sync_interval_minutes=_number(env, "SYNC_INTERVAL_MINUTES", 5, int, 1),
        huey_sqlite_path=env.get("HUEY_SQLITE_PATH", "").strip() or str(instance / "huey.db"),
        redis_namespace=_namespace(env),
        proxy_fix_hops=_number(env, "PROXY_FIX_HOPS", 0, int, 0),
        sync_object_types=_names(env, "SYNC_OBJECT_TYPES"),
        tuning={name: _number(env, name, *spec) for name, spec in TUNING.items()},
        secret_key_generated=generated,
        **_alerts(env),
        qbo_monthly_call_budget=_number(env, "QBO_MONTHLY_CALL_BUDGET", 500_000, int, 1),
        **_operating(env, instance, production),
        **_xero(env),
    )


def _database_url(env: Mapping[str, str], instance: Path, production: bool) -> str:
    url = _url(env, "DATABASE_URL", ("postgresql", "postgres", "sqlite"),
               default=None if production else f"sqlite:///{instance / 'qbosync.db'}")
    # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3; we ship psycopg2. The
    # Heroku-style postgres:// alias is rejected by SQLAlchemy altogether.
    for bare in ("postgres://", "postgresql://"):
        if url.startswith(bare):
            url = "postgresql+psycopg2://" + url[len(bare):]
    return url


def _redis_url(env: Mapping[str, str], production: bool) -> str | None:
    if env.get("REDIS_URL", "").strip():
        return _url(env, "REDIS_URL", ("redis", "rediss", "unix"))
    if production:
        raise ConfigError("REDIS_URL is required when APP_ENV=production")
    return None


def _secrets(env: Mapping[str, str], instance: Path, production: bool) -> tuple[str, str, str, bool]:
    """Return SECRET_KEY, the raw TOKEN_ENCRYPTION_KEYS, the webhook verifier and whether
    the embedded default generated them."""
    secret_key = env.get("SECRET_KEY", "").strip()
    keys_raw = env.get("TOKEN_ENCRYPTION_KEYS", "").strip()
    verifier = env.get("QBO_WEBHOOK_VERIFIER_TOKEN", "").strip()
    generated = False
    if not secret_key or not keys_raw:
        if production:
            missing = "SECRET_KEY" if not secret_key else "TOKEN_ENCRYPTION_KEYS"
            raise ConfigError(f"{missing} is required when APP_ENV=production")
        stored = _embedded_secrets(instance)
        secret_key = secret_key or stored["SECRET_KEY"]
        keys_raw = keys_raw or stored["TOKEN_ENCRYPTION_KEYS"]
        verifier = verifier or stored.get("QBO_WEBHOOK_VERIFIER_TOKEN", "")
        generated = True
    if len(secret_key) < 16:
        raise ConfigError("SECRET_KEY must be at least 16 characters of random text")
    return secret_key, keys_raw, verifier, generated


def _intuit(env: Mapping[str, str], production: bool) -> dict[str, object]:
    """Return the QuickBooks settings: keys, environment and URLs (the simulator's without
    QBO_CLIENT_ID)."""
    qbo_env = env.get("QBO_ENVIRONMENT", "sandbox").strip().lower()
    if qbo_env not in INTUIT_HOSTS:
        raise ConfigError(f"QBO_ENVIRONMENT must be sandbox or production, got {qbo_env!r}")
    client_id = env.get("QBO_CLIENT_ID", "").strip()
    uses_simulator = not client_id
    if uses_simulator and production:
        raise ConfigError("QBO_CLIENT_ID is required when APP_ENV=production")
    hosts = dict(INTUIT_HOSTS[qbo_env])
    if uses_simulator:
        root = SIMULATOR["root"]
        hosts = {"authorize": f"{root}/connect/oauth2", "token": f"{root}/oauth2/v1/tokens/bearer",
                 "revoke": f"{root}/v2/oauth2/tokens/revoke", "api": root}
    client_secret = env.get("QBO_CLIENT_SECRET", "").strip() or (
        SIMULATOR["client_secret"] if uses_simulator else "")
    if not client_secret:
        raise ConfigError("QBO_CLIENT_SECRET is required when QBO_CLIENT_ID is set")
    http = ("http", "https")
    return dict(
        qbo_client_id=client_id or SIMULATOR["client_id"],
        qbo_client_secret=client_secret,
        qbo_redirect_uri=_url(env, "QBO_REDIRECT_URI", http, "http://localhost:3000/v1/oauth/callback/qbo"),
        qbo_environment=qbo_env,
        qbo_authorize_url=_url(env, "QBO_AUTHORIZE_URL", http, hosts["authorize"]),
        qbo_token_url=_url(env, "QBO_TOKEN_URL", http, hosts["token"]),
        qbo_revoke_url=_url(env, "QBO_REVOKE_URL", http, hosts["revoke"]),
        qbo_api_base_url=_url(env, "QBO_API_BASE_URL", http, hosts["api"]).rstrip("/"),
        uses_simulator=uses_simulator,
    )


ALERT_WEBHOOK_FORMATS = ("json", "slack", "teams")
_EMAIL = re.compile(r"[^@\s,<>]+@[^@\s,<>]+\.[^@\s,<>]+")


def _alerts(env: Mapping[str, str]) -> dict[str, object]:
    """Return the alert channels: a webhook (json, Slack or Teams) and e-mail over SMTP.

    ``SMTP_URL`` is ``smtp://[user:pass@]host[:port]`` (STARTTLS, port 587 by default) or
    ``smtps://`` (TLS from the first byte, port 465); e-mail needs ``ALERT_EMAIL_TO`` too.
    Errors never echo a URL: both may carry secrets.
    """
    webhook = env.get("ALERT_WEBHOOK_URL", "").strip() or None
    if webhook:
        parts = urlsplit(webhook)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError("ALERT_WEBHOOK_URL must be a URL starting with http:// or https://")
    fmt = env.get("ALERT_WEBHOOK_FORMAT", "").strip().lower() or "json"
    if fmt not in ALERT_WEBHOOK_FORMATS:
        raise ConfigError(f"ALERT_WEBHOOK_FORMAT must be json, slack or teams, got {fmt!r}")
    smtp = env.get("SMTP_URL", "").strip() or None
    recipients = tuple(a.strip() for a in env.get("ALERT_EMAIL_TO", "").split(",") if a.strip())
    sender = env.get("ALERT_EMAIL_FROM", "").strip() or None
    for name, addresses in (("ALERT_EMAIL_TO", recipients), ("ALERT_EMAIL_FROM", (sender,) if sender else ())):
        for address in addresses:
            if not _EMAIL.fullmatch(address):
                raise ConfigError(f"{name} must hold e-mail addresses (comma-separated), got {address!r}")
    if smtp:
        parts = urlsplit(smtp)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ConfigError("SMTP_URL must look like smtp://user:password@host:587 (STARTTLS) "
                              "or smtps://user:password@host:465 (implicit TLS)")
        try:
            parts.port
        except ValueError:
            raise ConfigError("SMTP_URL has a port that is not a number") from None
        if not recipients:
            raise ConfigError("ALERT_EMAIL_TO is required when SMTP_URL is set (comma-separated addresses)")
        sender = sender or f"qbosync@{parts.hostname}"
    elif recipients:
        raise ConfigError("ALERT_EMAIL_TO is set but SMTP_URL is not: set SMTP_URL to send alert e-mails")
    base = env.get("ALERT_BASE_URL", "").strip() or None
    if base:
        base = _url(env, "ALERT_BASE_URL", ("http", "https")).rstrip("/")
    return dict(alert_webhook_url=webhook, alert_webhook_format=fmt, smtp_url=smtp, alert_email_from=sender,
                alert_email_to=recipients, alert_base_url=base)
# --- operating: metrics and logs -----------------------------------------------------------

METRICS_TOKEN_FILE = "metrics-token"


def _operating(env: Mapping[str, str], instance: Path, production: bool) -> dict[str, object]:
    """Return the /metrics and logging settings."""
    log_format = env.get("LOG_FORMAT", "").strip().lower() or "text"
    if log_format not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be text or json, got {log_format!r}")
    per_company = env.get("METRICS_PER_COMPANY", "").strip().lower() or "0"
    if per_company not in ("0", "1", "true", "false", "yes", "no"):
        raise ConfigError(f"METRICS_PER_COMPANY must be 1 or 0, got {per_company!r}")
    return dict(
        metrics_token=_metrics_token(env, instance, production),
        metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip() or str(instance / "metrics"),
        metrics_per_company=per_company in ("1", "true", "yes"),
        log_format=log_format,
    )


def _metrics_token(env: Mapping[str, str], instance: Path, production: bool) -> str | None:
    """Return METRICS_TOKEN; outside production an unset one is generated once into
    instance/metrics-token (first process wins), in production it stays unset (404)."""
    token = env.get("METRICS_TOKEN", "").strip()
    if token:
        if len(token) < 16:
            raise ConfigError("METRICS_TOKEN must be at least 16 characters of random text")
        return token
    if production:
        return None
    path = instance / METRICS_TOKEN_FILE
    if path.exists():
        return path.read_text().strip() or None
    instance.mkdir(parents=True, exist_ok=True)
    token = os.urandom(24).hex()
    # Written whole under a private name, then linked into place: a process starting at the
    # same moment sees no file or the whole token, never an empty one.
    draft = instance / f".{METRICS_TOKEN_FILE}.{os.getpid()}"
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token)
    try:
        os.link(draft, path)
    except FileExistsError:  # another process (web, worker) generated it first
        return path.read_text().strip() or None
    finally:
        draft.unlink()
    log.warning("Generated METRICS_TOKEN in %s (development only): scrape /metrics with "
                "'Authorization: Bearer <its content>'; set METRICS_TOKEN in production", path)
    return token


# --- Xero ------------------------------------------------------------------------------------

XERO_HOSTS = {
    "authorize": "https://login.xero.com/identity/connect/authorize",
    "token": "https://identity.xero.com/connect/token",
    "revoke": "https://identity.xero.com/connect/revocation",
    "connections": "https://api.xero.com/connections",
    "api": "https://api.xero.com",
}
# The simulator serves Xero's three hosts under path prefixes of its one port (sandbox/README.md).
XERO_SIMULATOR = {
    "client_id": "xero-sandbox-client-id",
    "client_secret": "xero-sandbox-client-secret",
    "authorize": f"{SIMULATOR['root']}/xero/login/identity/connect/authorize",
    "token": f"{SIMULATOR['root']}/xero/identity/connect/token",
    "revoke": f"{SIMULATOR['root']}/xero/identity/connect/revocation",
    "connections": f"{SIMULATOR['root']}/xero/api/connections",
    "api": f"{SIMULATOR['root']}/xero/api",
}
# Apps created from 2 March 2026 may ask for Xero's granular scopes only; read-only is all a
# sync needs, and offline_access brings the refresh token.
XERO_DEFAULT_SCOPES = ("offline_access accounting.contacts.read accounting.settings.read "
                       "accounting.invoices.read accounting.payments.read "
                       "accounting.banktransactions.read accounting.manualjournals.read")


def _xero_scopes(env: Mapping[str, str]) -> str:
    scopes = env.get("XERO_SCOPES", "").replace(",", " ").split() or XERO_DEFAULT_SCOPES.split()
    if "offline_access" not in scopes:
        raise ConfigError("XERO_SCOPES must include offline_access (without it Xero issues no refresh token)")
    return " ".join(dict.fromkeys(scopes))


def _xero(env: Mapping[str, str]) -> dict[str, object]:
    """Return the Xero settings (the simulator's without XERO_CLIENT_ID).

    Unlike QBO_CLIENT_ID, XERO_CLIENT_ID is optional in production: a deployment may sync
    QuickBooks only, and ``xero_uses_simulator`` tells the wiring that Xero is not set up.
    """
    client_id = env.get("XERO_CLIENT_ID", "").strip()
    uses_simulator = not client_id
    hosts = XERO_SIMULATOR if uses_simulator else XERO_HOSTS
    client_secret = env.get("XERO_CLIENT_SECRET", "").strip() or (
        XERO_SIMULATOR["client_secret"] if uses_simulator else "")
    if not client_secret:
        raise ConfigError("XERO_CLIENT_SECRET is required when XERO_CLIENT_ID is set")
    http = ("http", "https")
    return dict(
        xero_client_id=client_id or XERO_SIMULATOR["client_id"],
        xero_client_secret=client_secret,
        xero_redirect_uri=_url(env, "XERO_REDIRECT_URI", http, "http://localhost:3000/v1/oauth/callback/xero"),
        xero_authorize_url=_url(env, "XERO_AUTHORIZE_URL", http, hosts["authorize"]),
        xero_token_url=_url(env, "XERO_TOKEN_URL", http, hosts["token"]),
        xero_revoke_url=_url(env, "XERO_REVOKE_URL", http, hosts["revoke"]),
        xero_connections_url=_url(env, "XERO_CONNECTIONS_URL", http, hosts["connections"]),
        xero_api_base_url=_url(env, "XERO_API_BASE_URL", http, hosts["api"]).rstrip("/"),
        xero_webhook_key=env.get("XERO_WEBHOOK_KEY", "").strip(),
        xero_scopes=_xero_scopes(env),
        xero_daily_call_limit=_number(env, "XERO_DAILY_CALL_LIMIT", 5000, int, 1),
        xero_uses_simulator=uses_simulator,
    )
