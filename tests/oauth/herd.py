"""A child process of the refresh tests: its own app, one token request.

The herd test starts several at once behind a barrier; the crash and pause tests start
one, stop or kill it mid-refresh, and read what it reports (if it lives to report).
"""
from __future__ import annotations


def ask_for_token(env: dict, realm: str, barrier, results) -> None:
    """Create the app from ``env``, wait for the others (if ``barrier``), ask for a token,
    report ``("ok", token)`` or ``("error", "Type: message")``."""
    import os

    os.environ.update(env)
    from dashboard import create_app
    from dashboard.services.tokens import get_access_token

    app = create_app({"TESTING": True}, environ=env)
    with app.app_context():
        from dashboard.extensions import db

        db.engine.connect().close()  # connect before the start line, not after it
        if barrier is not None:
            barrier.wait(timeout=60)
        try:
            results.put(("ok", get_access_token(realm)))
        except Exception as exc:  # reported to the parent, which fails the test
            results.put(("error", f"{type(exc).__name__}: {exc}"))
