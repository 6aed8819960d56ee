"""Run a Huey consumer for an app: the one place a worker process is started from."""
from __future__ import annotations

import ctypes
import logging
import os
import threading

from flask import Flask
from huey.consumer_options import ConsumerConfig

from ..extensions import db
from ..queue import app_huey
from ..services import metrics
from ..services.sync_client import option
from ..services.sync_schedule import reap_expired_runs

M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)

log = logging.getLogger(__name__)


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas before the consumer starts its threads.

    By default each thread that allocates may get an arena of its own (up to 8 per core),
    and an arena keeps its high-water mark. With pages parsed in four fetch threads the
    worker's peak RSS grew with the length of a backfill (1.26x at 10x the records);
    with two arenas it stays at 1.16x, at the same speed. MALLOC_ARENA_MAX, when set,
    is left to glibc.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return
    libc.mallopt(M_ARENA_MAX, arenas)


class Reaper(threading.Thread):
    """Re-queue the runs of dead workers: once as the worker starts, then every half lease
    but at least every 5 s.

    Huey's scheduler fires at most once a minute, so a dead run used to wait for its lease
    plus up to a minute; now it is resumed within its lease plus 5 s of its last heartbeat
    (two indexed queries a pass). Every consumer runs one: reaping is a compare-and-set,
    so many reapers re-queue a run once.
    """

    def __init__(self, app: Flask) -> None:
        super().__init__(name="reaper", daemon=True)
        self.app = app
        with app.app_context():
            self.every = max(1.0, min(option("SYNC_LEASE_SECONDS") / 2, 5.0))
        self.stopped = threading.Event()

    def run(self) -> None:
        while True:
            with self.app.app_context():
                try:
                    reap_expired_runs()
                except Exception:  # the database may be restarting: try again next time
                    log.exception("Reaping expired sync runs failed")
                    db.session.rollback()
                finally:
                    db.session.remove()
            if self.stopped.wait(self.every):
                return


def run_consumer(app: Flask, workers: int, periodic: bool) -> None:
    """Consume ``app``'s queue with ``workers`` threads until stopped (Ctrl-C: gracefully)."""
    huey = app_huey(app)
    limit_malloc_arenas()
    Reaper(app).start()
    config = ConsumerConfig(workers=workers, worker_type="thread", periodic=periodic,
                            check_worker_health=True, scheduler_interval=1)
    config.validate()  # logging is already configured by the app (one line per record)
    consumer = huey.create_consumer(**config.values)
    metrics.announce_worker(workers)
    log.info("Worker started: %d threads, backend %s, scheduler %s.", workers, type(huey).__name__,
             "on" if periodic else "off")
    consumer.run()
