"""The audit trail's page, and ``note``: how the other views put an action on record."""
from __future__ import annotations

from datetime import date
from typing import Optional

from flask import Blueprint, render_template, request
from flask_login import current_user

from ..services import audit

bp = Blueprint("audit", __name__)


@bp.app_context_processor
def _audit_actions():
    return {"audit_actions": audit.ACTIONS}


def note(action: str, company_source_id: Optional[str] = None, *, object_type: Optional[str] = None,
         detail: Optional[str] = None, outcome: str = "ok", actor: Optional[str] = None) -> None:
    """Record an action of the signed-in operator (or ``actor``), from the request's address."""
    who = actor or (current_user.username if current_user.is_authenticated else "anonymous")
    audit.record(action, who, company_source_id=company_source_id, object_type=object_type, outcome=outcome,
                 detail=detail, remote_addr=request.remote_addr)


def _day(name: str, errors: list[str]) -> Optional[date]:
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors.append(f"“{raw}” is not a date: use YYYY-MM-DD.")
        return None


@bp.get("/audit")
def index():
    """Every recorded action, newest first, narrowed by company, action, operator and days."""
    errors: list[str] = []
    action = request.args.get("action", "").strip() or None
    if action and action not in audit.ACTIONS:
        errors.append(f"Unknown action “{action}”.")
        action = None
    before = request.args.get("before", "").strip()
    filters = audit.AuditFilter(
        company=request.args.get("company", "").strip() or None, action=action,
        actor=request.args.get("actor", "").strip() or None, since=_day("since", errors),
        until=_day("until", errors), before_id=int(before) if before.isdigit() else None)
    page = audit.search(filters)
    return render_template("audit/index.html", page=page, filters=filters, errors=errors), 400 if errors else 200
