"""The Alerts page: open problems, where alerts go, and deliveries that failed."""
from __future__ import annotations

from flask import Blueprint, render_template

from ..models import utcnow
from ..services.alerts.overview import alerts_page

bp = Blueprint("alerts", __name__)


@bp.get("/alerts")
def index():
    return render_template("alerts/index.html", page=alerts_page(utcnow()))
