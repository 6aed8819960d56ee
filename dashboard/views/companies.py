"""Companies pages (the operator dashboard): the list, one company, and its actions.

Every page works without JavaScript; with htmx, the same endpoints answer with the
fragment the page includes. Actions are POSTs: htmx gets the updated status component
plus the flash message (out of band), a plain form gets a redirect (Post/Redirect/Get).
"""
from __future__ import annotations

from typing import Optional
from urllib.parse import quote

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.routing import BuildError

from ..extensions import htmx
from ..models import ConnectionState, RunKind, utcnow
from ..services import audit, connections, parity, sync_jobs, type_switches
from .audit import note
from ..services.overview import company_detail, companies_page
from ..services.overview_models import (
    STATE_FILTERS, CompaniesQuery, CompanyDetail, ObjectStatus, OverviewError, all_object_types,
    object_types_in_words,
)
from . import formatting

bp = Blueprint("companies", __name__)

LIST_TARGET = "companies-list"
STATUS_TARGET = "company-status"


@bp.app_template_filter("ago")
def _ago(moment):
    return formatting.relative_time(moment, utcnow())


bp.add_app_template_filter(formatting.utc_text, "utc")
bp.add_app_template_filter(formatting.duration_text, "duration")
bp.add_app_template_filter(formatting.number_text, "number")
bp.add_app_template_global(formatting.connection_badge_html, "connection_badge_html")
bp.add_app_template_global(formatting.object_badge_html, "object_badge_html")
bp.add_app_template_global(formatting.state_counts_html, "state_counts_html")
bp.add_app_template_global(formatting.state_counts_text, "state_counts_text")
bp.add_app_template_global(object_types_in_words, "object_types_in_words")


@bp.app_template_global("when_html")
def _when_html(moment, empty="—"):
    return formatting.when_html(moment, utcnow(), empty)


@bp.app_template_global("next_sync_html")
def _next_sync_html(expected):
    return formatting.next_sync_html(expected, utcnow())


@bp.app_template_global("company_url_builder")
def _company_url_builder():
    """Return a function realm -> URL of the company page, built from one ``url_for``.

    The list links every row; one ``url_for`` per row costs more than the rest of the row.
    The realm is quoted exactly as the URL converter quotes it.
    """
    marker = "__realm__"
    prefix = url_for("companies.detail", realm=marker)
    head, _, tail = prefix.rpartition(marker)
    return lambda realm: f"{head}{quote(str(realm), safe=_PATH_SAFE)}{tail}"


_PATH_SAFE = "!$&'()*+,/:;=@"  # werkzeug's BaseConverter.to_url


@bp.app_context_processor
def _dashboard_links():
    return {"connect_url": _url_or_none("oauth.authorize", integration="qbo"),
            "reconnect_url": lambda realm: _url_or_none("oauth.reconnect", realm=realm),
            "STATE_FILTERS": STATE_FILTERS}


def _url_or_none(endpoint: str, **values) -> Optional[str]:
    """Link to another area's endpoint, or None while that area is not installed."""
    try:
        return url_for(endpoint, **values)
    except BuildError:
        return None


def _wants(target: str) -> bool:
    """Whether this is an htmx request for the fragment with this id (not a history restore)."""
    return bool(htmx) and htmx.target == target and not htmx.history_restore_request


# --- pages ---------------------------------------------------------------------------------

@bp.get("/")
def index():
    try:
        query = CompaniesQuery.from_args(request.args)
    except OverviewError as exc:
        abort(400, str(exc))
    page = companies_page(query, utcnow())
    if _wants(LIST_TARGET):
        return render_template("companies/_list_update.html", page=page)
    return render_template("companies/index.html", page=page)


@bp.get("/companies/<realm>")
def detail(realm: str):
    return render_template("companies/detail.html", company=_detail_or_404(realm), activity=audit.for_company(realm))


@bp.get("/companies/<realm>/status")
def status(realm: str):
    """Return the live status component (htmx polls it while something is busy)."""
    company = _detail_or_404(realm)
    if not htmx:
        return redirect(url_for(".detail", realm=realm))
    return render_template("companies/_company_update.html", company=company, with_flashes=False)


def _detail_or_404(realm: str) -> CompanyDetail:
    company = company_detail(realm, utcnow())
    if company is None:
        abort(404, f"No company with realm {realm!r}. It may have been removed; go back to the companies list.")
    return company


# --- actions -------------------------------------------------------------------------------

@bp.post("/companies/<realm>/resync")
def resync(realm: str):
    _detail_or_404(realm)
    return _queue(realm, RunKind.INCREMENTAL, "Resync")


@bp.route("/companies/<realm>/full-resync", methods=["GET", "POST"])
def full_resync(realm: str):
    company = _detail_or_404(realm)
    if not _confirmed():
        return _confirmation(company, "full_resync")
    return _queue(realm, RunKind.FULL_RESYNC, "Full resync")


@bp.post("/companies/<realm>/retry")
def retry(realm: str):
    _detail_or_404(realm)
    object_type = request.form.get("object_type", "")
    labels = dict(all_object_types())
    if object_type not in labels:
        return _refuse(realm, f"Cannot retry {object_type!r}: choose one of {', '.join(labels)}.", 400)
    try:
        _run, created = sync_jobs.retry_failed(realm, object_type)
    except sync_jobs.SyncRequestError as exc:
        return _refuse(realm, str(exc), 409)
    note("retry", realm, object_type=object_type, detail="queued" if created else "joined the sync already queued")
    if created:
        flash(f"Retry of {labels[object_type].lower()} queued.", "success")
    else:
        flash(f"A sync of {labels[object_type].lower()} is already queued.", "warning")
    return _after_action(realm)


@bp.post("/companies/<realm>/object-types/<object_type>")
def switch_object_type(realm: str, object_type: str):
    """Switch one object type on or off for this company (``enabled=on|off``).

    On: a sync of that type is queued, so it backfills (or catches up) by itself. Off: it
    is left out of every run; its rows stay.
    """
    company = _detail_or_404(realm)
    o = _object_or_none(company, object_type)
    value = request.form.get("enabled", "")
    if o is None:
        return _refuse(realm, _unknown_type(object_type), 400)
    if value not in ("on", "off"):
        return _refuse(realm, f"Cannot switch {o.label.lower()} to {value!r}: send enabled=on or enabled=off.", 400)
    name = o.label.lower()
    if (value == "on") == o.enabled:
        flash(f"Syncing {name} is already {value}.", "warning")
        return _after_action(realm)
    type_switches.set_enabled(realm, object_type, value == "on")
    note(f"switch_{value}", realm, object_type=object_type)
    if value == "off":
        flash(f"{o.label} switched off: no sync reads them any more. The {o.record_count:,} {name} stored are kept.",
              "success")
    elif company.summary.connection_state is ConnectionState.CONNECTED:
        try:
            sync_jobs.request_sync(realm, kind=sync_jobs.resume_kind(realm), trigger="operator",
                                   object_type=object_type)
        except sync_jobs.SyncRequestError as exc:  # disconnected meanwhile: the switch stands
            flash(f"{o.label} switched on; no sync could be queued yet: {exc}", "warning")
        else:
            flash(f"{o.label} switched on: a sync of {name} is queued to bring them up to date.", "success")
    else:
        flash(f"{o.label} switched on: they sync once the company is connected again.", "success")
    return _after_action(realm)


@bp.route("/companies/<realm>/object-types/<object_type>/full-resync", methods=["GET", "POST"])
def full_resync_object_type(realm: str, object_type: str):
    """Re-download every record of one object type (after a confirmation, like the full resync)."""
    company = _detail_or_404(realm)
    o = _object_or_none(company, object_type)
    if o is None:
        return _refuse(realm, _unknown_type(object_type), 400)
    if not o.enabled:
        return _refuse(realm, f"{o.label} are switched off for this company: switch them on first.", 409)
    if not _confirmed():
        return _confirmation(company, "object_type_full_resync", target=o)
    try:
        _run, created = sync_jobs.request_sync(realm, kind=RunKind.FULL_RESYNC, trigger="operator",
                                               object_type=object_type)
    except sync_jobs.SyncRequestError as exc:
        return _refuse(realm, str(exc), 409)
    note("type_full_resync", realm, object_type=object_type,
         detail="queued" if created else "added to the sync already queued or running")
    if created:
        flash(f"Full resync of {o.label.lower()} queued.", "success")
    else:
        flash(f"A sync of this company is already queued or running: the full resync of {o.label.lower()} "
              "is added to it.", "warning")
    return _after_action(realm)


def _object_or_none(company: CompanyDetail, object_type: str) -> Optional[ObjectStatus]:
    return next((o for o in company.summary.objects if o.object_type == object_type), None)


def _unknown_type(object_type: str) -> str:
    return f"Unknown object type {object_type!r}: use one of {', '.join(name for name, _ in all_object_types())}."


@bp.post("/companies/<realm>/parity-check")
def parity_check(realm: str):
    """Ask for a parity check of every synced type: the company's next successful sync makes it.

    A sync is queued for it, or the one already queued or running takes the request.
    """
    _detail_or_404(realm)
    try:
        _run, created = parity.request_check(realm)
    except sync_jobs.SyncRequestError as exc:
        return _refuse(realm, f"Cannot check parity: {exc}.", 409)
    note("parity_check", realm, detail="queued" if created else "requested from the sync already queued or running")
    if created:
        flash("Parity check queued: it runs after the next sync of this company.", "success")
    else:
        flash("Parity check requested: it runs when the sync already queued or running for this company ends.",
              "success")
    return _after_action(realm)


@bp.route("/companies/<realm>/disconnect", methods=["GET", "POST"])
def disconnect(realm: str):
    company = _detail_or_404(realm)
    if not _confirmed():
        return _confirmation(company, "disconnect")
    if company.summary.connection_state is ConnectionState.DISCONNECTED:
        flash(f"{company.summary.display_name} is already disconnected.", "warning")
    else:
        try:
            connections.disconnect(realm)
        except connections.CompanyNotFound as exc:
            return _refuse(realm, str(exc), 404)
        note("disconnect", realm)
        flash(f"{company.summary.display_name} is disconnected. Its synced data is kept.", "success")
    return _after_action(realm)


def _queue(realm: str, kind: RunKind, label: str):
    try:
        _run, created = sync_jobs.request_sync(realm, kind=kind, trigger="operator")
    except sync_jobs.SyncRequestError as exc:
        return _refuse(realm, str(exc), 409)
    note("full_resync" if kind is RunKind.FULL_RESYNC else "resync", realm,
         detail="queued" if created else "a sync was already queued or running")
    if created:
        flash(f"{label} queued.", "success")
    else:
        flash("Nothing new was queued: a sync of this company is already queued or running.", "warning")
    return _after_action(realm)


def _confirmed() -> bool:
    return request.method == "POST" and request.form.get("confirm") == "yes"


def _confirmation(company: CompanyDetail, action: str, target: Optional[ObjectStatus] = None):
    """Show the confirmation step (the no-JavaScript path; htmx sends confirm=yes)."""
    # A submitted confirmation form without its box ticked is an error, not a first visit.
    error = None
    if request.method == "POST" and request.form.get("step") == "confirm":
        error = "Tick the box to confirm, or cancel."
    return render_template("companies/confirm.html", company=company, action=action, target=target,
                           error=error), 400 if error else 200


def _after_action(realm: str):
    if htmx:
        return render_template("companies/_company_update.html", company=_detail_or_404(realm),
                               with_flashes=True, activity=audit.for_company(realm))
    return redirect(url_for(".detail", realm=realm))


def _refuse(realm: str, message: str, code: int):
    """Answer a refused action with its reason and change nothing.

    htmx swaps the message into the flash area (app.js lets these error answers swap);
    without JavaScript the error page explains it.
    """
    if not htmx:
        abort(code, message)
    flash(message, "error")
    return render_template("_flashes.html"), code, {"HX-Retarget": "#flashes", "HX-Reswap": "innerHTML"}
