"""A child process of the refresh-herd test: its own app, one token request."""
from __future__ import annotations


def ask_for_token(env: dict, realm: str, barrier, results) -> None:
    """Create the app from ``env``, wait for the others, ask for a token, report it."""
    import os

    os.environ.update(env)
    from dashboard import create_app
    from dashboard.services.tokens import get_access_token

    app = create_app({"TESTING": True}, environ=env)
    with app.app_context():
        from dashboard.extensions import db

        db.engine.connect().close()  # connect before the start line, not after it
        barrier.wait(timeout=60)
        try:
            results.put(("ok", get_access_token(realm)))
        except Exception as exc:  # reported to the parent, which fails the test
            results.put(("error", f"{type(exc).__name__}: {exc}"))
