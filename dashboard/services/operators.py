"""Operator accounts and sign-in, with failed attempts slowed per account and address."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from werkzeug.security import check_password_hash, generate_password_hash

from ..extensions import db
from ..models import Operator, SignInThrottle, utcnow

FREE_FAILURES = 5              # failures allowed in a window before sign-in is slowed
WINDOW = timedelta(minutes=15)
BASE_LOCKOUT = timedelta(seconds=30)
MAX_LOCKOUT = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
# Checked against when the account does not exist, so both paths cost one hash.
_DUMMY_HASH = generate_password_hash("not-a-real-password")


class OperatorError(ValueError):
    """A request about operators that cannot be carried out (message is for people)."""


@dataclass(frozen=True)
class SignInResult:
    operator: Operator | None
    retry_after: int = 0  # seconds; > 0 when sign-in is throttled

    @property
    def throttled(self) -> bool:
        return self.retry_after > 0


def create_operator(username: str, password: str) -> Operator:
    username = username.strip()
    if not username or len(username) > 80:
        raise OperatorError("The username must be 1 to 80 characters.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    if db.session.scalar(select(Operator).where(Operator.username == username)):
        raise OperatorError(f"An operator named {username!r} already exists.")
    # Werkzeug's default is scrypt, a memory-hard modern algorithm.
    operator = Operator(username=username, password_hash=generate_password_hash(password))
    db.session.add(operator)
    db.session.commit()
    return operator


def set_password(username: str, password: str) -> Operator:
    operator = db.session.scalar(select(Operator).where(Operator.username == username))
    if operator is None:
        raise OperatorError(f"No operator named {username!r}.")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"The password must be at least {MIN_PASSWORD_LENGTH} characters.")
    operator.password_hash = generate_password_hash(password)
    db.session.commit()
    return operator


def _throttle_keys(username: str, address: str | None) -> list[str]:
    keys = [f"user:{username.strip().lower()[:80]}"]
    if address:
        keys.append(f"addr:{address[:100]}")
    return keys


def _retry_after(rows: list[SignInThrottle], now: datetime) -> int:
    waits = [(r.locked_until - now).total_seconds() for r in rows if r.locked_until and r.locked_until > now]
    return int(max(waits) + 0.999) if waits else 0


def authenticate(username: str, password: str, address: str | None, now: datetime | None = None) -> SignInResult:
    """Check a sign-in; record a failure or clear the account's record on success."""
    now = now or utcnow()
    keys = _throttle_keys(username, address)
    rows = {r.key: r for r in db.session.scalars(
        select(SignInThrottle).where(SignInThrottle.key.in_(keys)).with_for_update())}
    wait = _retry_after(list(rows.values()), now)
    if wait:
        db.session.rollback()
        return SignInResult(None, retry_after=wait)

    operator = db.session.scalar(select(Operator).where(Operator.username == username.strip()))
    if operator is not None and check_password_hash(operator.password_hash, password):
        user_row = rows.get(keys[0])
        if user_row is not None:
            db.session.delete(user_row)
        operator.last_sign_in_at = now
        db.session.commit()
        return SignInResult(operator)
    if operator is None:
        check_password_hash(_DUMMY_HASH, password)

    for key in keys:
        row = rows.get(key)
        if row is None or now - row.window_started_at > WINDOW:
            if row is None:
                row = SignInThrottle(key=key, failures=0, window_started_at=now)
                db.session.add(row)
            row.failures, row.window_started_at, row.locked_until = 0, now, None
        row.failures += 1
        excess = row.failures - FREE_FAILURES
        if excess >= 0:  # doubling lockout per extra failure, capped
            row.locked_until = now + min(BASE_LOCKOUT * (2 ** excess), MAX_LOCKOUT)
    db.session.commit()
    return SignInResult(None)
