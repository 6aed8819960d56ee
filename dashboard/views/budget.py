"""The API budget: its page, the pause banner on every page, a company's pace on its page."""
from __future__ import annotations

import logging

from flask import Blueprint, render_template
from flask_login import current_user

from ..models import utcnow
from ..services import budget

log = logging.getLogger(__name__)

bp = Blueprint("budget", __name__)


@bp.get("/budget")
def index():
    return render_template("budget/index.html", overview=budget.overview(utcnow()))


@bp.app_template_global("budget_pause")
def _budget_pause():
    """Return the month's snapshot while scheduled syncs are paused, else None (base.html's banner).

    A function, not a context value: only full pages (base.html) pay for it, not the
    fragments htmx polls.
    """
    if not current_user.is_authenticated:
        return None
    try:
        snap = budget.snapshot()
    except Exception:  # noqa: BLE001 - an error page (database down) must still render
        log.warning("Could not read the API budget for the banner", exc_info=True)
        return None
    return snap if snap.paused else None


@bp.app_template_global("company_pace")
def _company_pace(last_webhook_at):
    return budget.company_pace(last_webhook_at, utcnow())
