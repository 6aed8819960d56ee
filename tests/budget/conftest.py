"""Fixtures of the budget tests: a counter that starts at zero on either backend."""
from __future__ import annotations

import dataclasses

import pytest


@pytest.fixture
def fresh_budget(app):
    """Start from no metered call: Redis keys outlive the tables' per-test cleanup, and the
    embedded counter's buffer may still hold an earlier test's calls."""
    from dashboard.extensions import db
    from dashboard.models import MeteredCall
    from tests.conftest import _forget_metered_calls

    settings = app.config["SETTINGS"]
    with app.app_context():
        _forget_metered_calls(app)
        db.session.execute(MeteredCall.__table__.delete())
        db.session.commit()
    yield
    app.config["SETTINGS"] = settings


def set_budget(app, calls: int) -> None:
    """Change QBO_MONTHLY_CALL_BUDGET as a restart with a new value would."""
    app.config["SETTINGS"] = dataclasses.replace(app.config["SETTINGS"], qbo_monthly_call_budget=calls)
