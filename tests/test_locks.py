"""Named locks (Redis on the services run, app_lock rows on the embedded one): one owner at
a time, renewed and released only by that owner, from any of its threads."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from flask import current_app
from sqlalchemy import update

from dashboard.locks import Lock, LockBusy, backend, hold
from dashboard.models import AppLock, utcnow
from dashboard.redis_client import redis_client


def _expire(db_session, name: str) -> None:
    """Do what the end of the TTL does, without waiting for it."""
    settings = current_app.config["SETTINGS"]
    if settings.redis_url:
        assert redis_client(settings.redis_url).delete(settings.redis_key("lock", name)) == 1
    else:
        result = db_session.execute(update(AppLock).where(AppLock.name == name)
                                    .values(expires_at=utcnow() - timedelta(seconds=1)))
        db_session.commit()
        assert result.rowcount == 1


def test_a_held_lock_is_busy_for_others_until_released(db_session):
    with hold("test:busy", ttl=30):
        with pytest.raises(LockBusy):
            with hold("test:busy", ttl=30, wait=0.1):
                pass
    with hold("test:busy", ttl=30):
        pass


def test_only_the_owner_renews_or_releases(db_session):
    mine, theirs = Lock(backend(), "test:owner", ttl=30), Lock(backend(), "test:owner", ttl=30)
    assert mine.acquire() and not theirs.acquire()
    assert not theirs.renew()
    theirs.release()  # not the owner: the lock stays
    assert not Lock(backend(), "test:owner", ttl=30).acquire()
    assert mine.renew()
    mine.release()
    assert theirs.acquire()
    theirs.release()


def test_an_expired_lock_goes_to_the_next_owner_and_the_old_one_cannot_take_it_back(db_session):
    old, new = Lock(backend(), "test:expiry", ttl=30), Lock(backend(), "test:expiry", ttl=30)
    assert old.acquire()
    _expire(db_session, "test:expiry")
    assert new.acquire()
    assert not old.renew()
    old.release()  # late: must not free the new owner's lock
    assert not Lock(backend(), "test:expiry", ttl=30).acquire()
    assert new.renew()
    new.release()


def test_another_thread_of_the_owner_renews_it(db_session):
    """A run's heartbeat thread renews the company lock that the run's thread took."""
    app = current_app._get_current_object()
    lock = Lock(backend(), "test:heartbeat", ttl=30)
    assert lock.acquire()
    renewed = []

    def beat() -> None:
        with app.app_context():
            renewed.append(lock.renew())

    thread = threading.Thread(target=beat)
    thread.start()
    thread.join()
    assert renewed == [True]
    lock.release()
    after = Lock(backend(), "test:heartbeat", ttl=30)
    assert after.acquire()
    after.release()
