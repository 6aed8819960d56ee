"""S7: keys that cannot open the stored tokens stop the web app and the worker at start-up.

The real commands run as child processes against the test database, which holds a token
sealed with a key the child is not given (keys replaced instead of rotated).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from dashboard.models import Company, ConnectionState, utcnow
from dashboard.vault import TokenVault
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
REALM = "4620816365012345678"


@pytest.fixture
def old_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def sealed_with_old_key(db_session, old_key) -> list[tuple]:
    """A connected company whose tokens the old key sealed; return the table's rows."""
    vault = TokenVault([old_key])
    db_session.add(Company(source_id=REALM, integration="qbo", connection_state=ConnectionState.CONNECTED,
                           access_token=vault.seal(REALM, "access", "AT-secret"), access_token_expires_at=utcnow(),
                           refresh_token=vault.seal(REALM, "refresh", "RT-secret"), token_version=1))
    db_session.commit()
    return _rows(db_session)


def _rows(db_session) -> list[tuple]:
    db_session.expire_all()
    return [tuple(row) for row in db_session.execute(text("SELECT * FROM company ORDER BY id"))]


def _flask(*args: str, keys: str | None, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, **env}
    environ.pop("TOKEN_ENCRYPTION_KEYS")
    if keys is not None:
        environ["TOKEN_ENCRYPTION_KEYS"] = keys
    proc = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", *args], cwd=ROOT, env=environ,
                          capture_output=True, text=True, timeout=60)
    return proc


def _assert_refused(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode != 0, (proc.returncode, proc.stderr)
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("Configuration error: TOKEN_ENCRYPTION_KEYS cannot decrypt the stored tokens"), last
    assert "rotate-keys" in last and "Traceback" not in proc.stderr
    assert "RT-secret" not in proc.stderr + proc.stdout


@pytest.mark.parametrize("command", [("worker", "-w", "1", "--no-periodic"),
                                     ("run", "--host", "127.0.0.1", "--port", "0")], ids=["worker", "web"])
def test_replaced_key_stops_start_up_and_changes_nothing(sealed_with_old_key, db_session, command):
    args = [a if a != "0" else str(free_port()) for a in command]
    proc = _flask(*args, keys=Fernet.generate_key().decode())
    _assert_refused(proc)
    assert _rows(db_session) == sealed_with_old_key


def test_missing_key_in_development_stops_start_up(sealed_with_old_key, db_session, tmp_path):
    """Without TOKEN_ENCRYPTION_KEYS the embedded default generates a key: not the one in use."""
    proc = _flask("routes", keys=None, APP_ENV="development", INSTANCE_PATH=str(tmp_path))
    _assert_refused(proc)
    assert _rows(db_session) == sealed_with_old_key


def test_the_advice_in_the_message_works(sealed_with_old_key, db_session, old_key):
    """Old key back as the secondary, rotate-keys, then the new key alone starts."""
    new_key = Fernet.generate_key().decode()
    proc = _flask("rotate-keys", keys=f"{new_key},{old_key}")
    assert proc.returncode == 0 and "tokens re-encrypted: 2" in proc.stdout, proc.stdout + proc.stderr
    proc = _flask("routes", keys=new_key)
    assert proc.returncode == 0, proc.stderr
    stored = db_session.execute(text("SELECT refresh_token FROM company")).scalar_one()
    assert TokenVault([new_key]).open(REALM, "refresh", stored) == "RT-secret"


def test_fresh_install_starts_with_any_key(db_session, tmp_path):
    """No company yet (migrated, empty), or no table at all (before `db upgrade`): start."""
    key = Fernet.generate_key().decode()
    proc = _flask("routes", keys=key)
    assert proc.returncode == 0, proc.stderr
    proc = _flask("routes", keys=key, DATABASE_URL=f"sqlite:///{tmp_path / 'fresh.db'}")
    assert proc.returncode == 0, proc.stderr
