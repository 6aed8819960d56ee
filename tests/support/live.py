"""Shared pieces for tests that run the real thing: the app pointed at a simulator, a consumer."""
from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import Iterator

from dashboard.queue import app_huey

# Short waits: retries inside a page fetch, leases. Production defaults are much longer.
FAST_KNOBS = {"QBO_HTTP_RETRY_DELAY": 0.01, "QBO_HTTP_MAX_WAIT": 0.05, "QBO_HTTP_RETRIES": 3, "QBO_THROTTLE_WAIT": 0.2,
              "SYNC_LEASE_SECONDS": 10, "SYNC_OVERLAP_SECONDS": 300}


@contextlib.contextmanager
def pointed_at_simulator(app, url: str) -> Iterator[None]:
    """Point the app's Intuit URLs at a simulator and shorten its waits; restore afterwards."""
    saved_settings, saved = app.config["SETTINGS"], {k: app.config.get(k) for k in FAST_KNOBS}
    app.config["SETTINGS"] = dataclasses.replace(
        saved_settings, qbo_api_base_url=url, qbo_token_url=f"{url}/oauth2/v1/tokens/bearer",
        qbo_authorize_url=f"{url}/connect/oauth2", qbo_revoke_url=f"{url}/v2/oauth2/tokens/revoke")
    app.config.update(FAST_KNOBS)
    try:
        yield
    finally:
        app.config["SETTINGS"] = saved_settings
        app.config.update(saved)


@contextlib.contextmanager
def running_consumer(app, workers: int = 2):
    """A real Huey consumer of ``app``'s queue in this process (threads; scheduler off, so
    nothing polls); its tasks run in ``app``'s context."""
    consumer = app_huey(app).create_consumer(workers=workers, worker_type="thread", periodic=False,
                                          scheduler_interval=1)
    consumer._set_signal_handlers = lambda: None  # pytest owns the process's signals
    consumer.start()
    try:
        yield consumer
    finally:
        consumer.stop(graceful=True)


@contextlib.contextmanager
def served_over_http(wsgi_app) -> Iterator[str]:
    """Serve a WSGI app on a free loopback port in a thread; yield its base URL."""
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="test-http", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
