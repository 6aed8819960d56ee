"""What every benchmark stands on: a scratch database, a Redis namespace, the simulator.

Everything is created for the run and removed afterwards, on loopback only: a database
``qbosync_bench_<id>`` on the PostgreSQL server of ``BENCH_DATABASE_URL``, Huey keys under
``qbosync-bench-<id>`` on ``BENCH_REDIS_URL``, and the simulator as its own process (so it
does not share a GIL with the code being measured).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ADMIN_DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
SIM_CLIENT_ID = "sandbox-client-id"
SIM_CLIENT_SECRET = "sandbox-client-secret"
REDIRECT_URI = "http://localhost:3000/v1/oauth/callback/qbo"


def free_port() -> int:
    """Return a loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pg_connect(url: str):
    """Open a psycopg2 connection from a SQLAlchemy-style or libpq URL."""
    import psycopg2

    return psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))


class ScratchDatabase:
    """A PostgreSQL database that exists for one benchmark run, schema from the real migrations."""

    def __init__(self, admin_url: str = ADMIN_DATABASE_URL, label: str = "") -> None:
        self.admin_url = admin_url
        self.name = f"qbosync_bench_{label + '_' if label else ''}{os.getpid()}_{uuid.uuid4().hex[:6]}"
        base = urlsplit(admin_url)
        self.url = base._replace(path=f"/{self.name}").geturl()

    def _admin(self, sql: str) -> None:
        conn = pg_connect(self.admin_url)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create(self, env: dict[str, str]) -> "ScratchDatabase":
        """Create the database and run ``flask db upgrade`` against it."""
        self._admin(f'CREATE DATABASE "{self.name}"')
        run_flask(env, "db", "upgrade")
        return self

    def drop(self) -> None:
        """Drop the database, closing whatever is still connected."""
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')

    def truncate_all(self) -> None:
        """Empty every application table (keeps the schema and alembic_version)."""
        conn = pg_connect(self.url)
        try:
            with conn, conn.cursor() as cur:
                cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                            "AND tablename <> 'alembic_version'")
                tables = [row[0] for row in cur.fetchall()]
                if tables:
                    cur.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
        finally:
            conn.close()


def flush_redis_namespace(redis_url: str, namespace: str) -> None:
    """Delete every key of one Huey namespace (never the whole server: it is shared)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"*{namespace}*", count=1000))
    if keys:
        client.delete(*keys)


def app_env(database_url: str, sim_url: str, *, redis_url: str | None = REDIS_URL,
            namespace: str, instance: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """Return the environment of an app / worker process pointed at the scratch services."""
    from cryptography.fernet import Fernet

    env = {k: v for k, v in os.environ.items() if not k.startswith(("QBO_", "DATABASE_", "REDIS_"))}
    env.update({
        "APP_ENV": "production" if redis_url else "development",
        "DATABASE_URL": database_url,
        "SECRET_KEY": uuid.uuid4().hex + uuid.uuid4().hex,
        "TOKEN_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "QBO_CLIENT_ID": SIM_CLIENT_ID,
        "QBO_CLIENT_SECRET": SIM_CLIENT_SECRET,
        "QBO_REDIRECT_URI": REDIRECT_URI,
        "QBO_AUTHORIZE_URL": f"{sim_url}/connect/oauth2",
        "QBO_TOKEN_URL": f"{sim_url}/oauth2/v1/tokens/bearer",
        "QBO_REVOKE_URL": f"{sim_url}/v2/oauth2/tokens/revoke",
        "QBO_API_BASE_URL": sim_url,
        "QBO_WEBHOOK_VERIFIER_TOKEN": "bench-verifier",
        "REDIS_NAMESPACE": namespace,
        "INSTANCE_PATH": str(instance),
        "HUEY_SQLITE_PATH": str(instance / "huey.db"),
        "PYTHONPATH": str(ROOT),
        "PYTHONUNBUFFERED": "1",
        # The classic datasets hold customers and invoices; the breadth benchmark asks for all.
        "SYNC_OBJECT_TYPES": "customer,invoice",
    })
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


def run_flask(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``flask --app wsgi <args>`` in a child process and fail loudly on a non-zero exit."""
    proc = subprocess.run([PYTHON, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


class Simulator:
    """The Intuit simulator (``python -m sandbox``) in its own process, driven over its admin API."""

    def __init__(self, *, companies: int = 1, customers: int = 50, invoices: int = 100, seed: int = 1,
                 latency: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tempfile.NamedTemporaryFile(prefix="qbosync-bench-sim-", suffix=".log", delete=False)
        self.args = ["--port", str(self.port), "--seed", str(seed), "--companies", str(companies),
                     "--customers", str(customers), "--invoices", str(invoices), "--latency", str(latency),
                     "--redirect-uri", REDIRECT_URI]
        self.process: subprocess.Popen | None = None
        self.http = requests.Session()

    def start(self, timeout: float = 300) -> "Simulator":
        """Start the process and wait until its admin API answers (generation takes a while)."""
        # -W ignore: werkzeug's request log is not wanted; the simulator prints to its log file.
        self.process = subprocess.Popen([PYTHON, "-m", "sandbox", *self.args], cwd=ROOT, stdout=self.log,
                                        stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"simulator exited {self.process.returncode}; see {self.log.name}")
            try:
                if self.http.get(f"{self.url}/_sandbox/health", timeout=1).ok:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"simulator did not answer within {timeout}s; see {self.log.name}")

    def stop(self) -> None:
        """Stop the process."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()
        try:
            os.unlink(self.log.name)
        except OSError:
            pass

    def __enter__(self) -> "Simulator":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- admin API -----------------------------------------------------------------
    def admin(self, method: str, path: str, body: dict[str, Any] | None = None, **params: Any) -> Any:
        """Call an admin endpoint and return its JSON, raising on an error status."""
        resp = self.http.request(method, f"{self.url}/_sandbox{path}", json=body, params=params or None,
                                 timeout=600)
        if not resp.ok:
            raise RuntimeError(f"simulator {method} {path}: {resp.status_code} {resp.text[:500]}")
        return resp.json()

    def generate(self, **spec: Any) -> list[str]:
        """Regenerate the data set; return the realm ids."""
        return self.admin("POST", "/generate", spec)["realms"]

    def realms(self) -> list[str]:
        return self.admin("GET", "/health")["realms"]

    def configure(self, **config: Any) -> dict[str, Any]:
        return self.admin("POST", "/config", config)

    def stats(self, realm: str) -> dict[str, Any]:
        return self.admin("GET", f"/stats/{realm}")

    def reset_stats(self, realm: str | None = None) -> None:
        self.admin("POST", "/stats/reset", {"realm": realm} if realm else {})

    def oauth_stats(self, realm: str | None = None) -> dict[str, Any]:
        return self.admin("GET", "/oauth/stats", **({"realm": realm} if realm else {}))

    def tokens(self, realm: str) -> dict[str, Any]:
        """Run the authorization-code grant without a browser; return Intuit's token JSON."""
        redirect = self.admin("GET", "/authorize", realm=realm, state="bench", redirect_uri=REDIRECT_URI)
        code = parse_qs(urlsplit(redirect["redirect_url"]).query)["code"][0]
        resp = self.http.post(f"{self.url}/oauth2/v1/tokens/bearer", auth=(SIM_CLIENT_ID, SIM_CLIENT_SECRET),
                              data={"grant_type": "authorization_code", "code": code,
                                    "redirect_uri": REDIRECT_URI}, timeout=30)
        resp.raise_for_status()
        return {**resp.json(), "realmId": realm}

    def request_log(self, realm: str) -> list[dict[str, Any]]:
        """Every API request of a realm since the last reset: kind, path, detail (what it asked), outcome."""
        return self.admin("GET", f"/stats/{realm}", log=1)["log"]

    def entity_counts(self, realm: str) -> dict[str, int]:
        """Records per entity as the simulator holds them (inactive included), without a metered call."""
        return self.admin("GET", f"/counts/{realm}")

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator's clock forward; return its new time (epoch seconds)."""
        return float(self.admin("POST", "/clock", {"advance_seconds": seconds})["now"])

    def count(self, realm: str, entity: str) -> int:
        """Return how many records of an entity the simulator holds (inactive customers included)."""
        token = self._any_token(realm)
        where = " WHERE Active IN (true, false)" if entity == "Customer" else ""
        resp = self.http.get(f"{self.url}/v3/company/{realm}/query",
                             params={"query": f"SELECT COUNT(*) FROM {entity}{where}"},
                             headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
                             timeout=30)
        resp.raise_for_status()
        return int(resp.json()["QueryResponse"]["totalCount"])

    def _any_token(self, realm: str) -> str:
        cache = self.__dict__.setdefault("_token_cache", {})
        if realm not in cache:
            cache[realm] = self.tokens(realm)["access_token"]
        return cache[realm]
