"""Serve the Accounting API subset under /xero/api/api.xro/2.0 behind Xero's gateway.

Gateway order: bearer token (401), ``Xero-Tenant-Id`` connected for the token's user
(403), limits (429), injected faults, scope (401 AuthorizationUnsuccessful), then the
resource. Every answer past the tenant and resource checks carries the remaining-quota headers.
Reads only: writes go through the control API (``XeroSimulator.create/update/delete``).
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, request

from . import render as R
from .context import xero_sim
from .dates import parse_if_modified_since
from .limits import Admission
from .oauth_routes import unauthorized
from .query import QueryError, TooManyIds, list_records
from .resources import Resource, allows, resource

if TYPE_CHECKING:
    from .simulator import XeroSimulator

bp = Blueprint("xero_api", __name__)
BASE = "/xero/api/api.xro/2.0"


@bp.get(f"{BASE}/<name>")
@bp.get(f"{BASE}/<name>/<rec_id>")
def read(name: str, rec_id: str | None = None) -> Response:
    """List a collection or read one record."""
    sim = xero_sim()
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    grant, reason = sim.oauth.grant_for_access(token)
    if grant is None:
        return unauthorized(reason, sim.oauth.expiry_of(token))
    tenant = request.headers.get("Xero-Tenant-Id", "").strip()
    if tenant not in sim.organisations or not sim.oauth.is_connected(grant.user, tenant):
        return R.problem(403, "AuthenticationUnsuccessful")
    res = resource(name)
    if res is None:
        return R.text(R.NOT_FOUND, 404)
    adm = sim.limits.admit(tenant, res.name)
    if not adm.admitted:
        return _with_quota(R.throttled(adm.problem, adm.retry_after), adm)
    status = 500
    try:
        resp = _serve(sim, adm, res, grant.scopes, rec_id)
        status = resp.status_code
        return _with_quota(resp, adm)
    finally:
        sim.limits.finish(adm, status)


def _with_quota(resp: Response, adm: Admission) -> Response:
    resp.headers.update(adm.headers)
    return resp


def _serve(sim: "XeroSimulator", adm: Admission, res: Resource, scopes: set[str], rec_id: str | None) -> Response:
    rule = sim.faults.pick(adm.tenant, res.name) or sim.faults.pick(adm.tenant, "api")
    delay = sim.config.latency + (rule.delay if rule is not None and rule.kind == "slow" else 0.0)
    if delay > 0:
        time.sleep(delay)  # never under a lock: concurrent calls overlap as at Xero
    if rule is not None and rule.kind != "slow":
        if rule.kind == "401":
            return R.problem(401, "TokenExpired: token expired (injected)")
        if rule.kind == "500":
            return R.text("An error occurred in Xero. Check the API Status page for current service status.", 500)
        return R.text(R.MAINTENANCE if rule.kind == "maintenance" else R.OFFLINE, 503)
    if not allows(res, scopes, write=False):
        return R.problem(401, "AuthorizationUnsuccessful")
    wants_json = "application/json" in request.headers.get("Accept", "")
    org = sim.organisations[adm.tenant]
    now_ms = int(sim.now() * 1000)
    with sim.lock:
        if rec_id is not None:
            rec = org.tables[res.name].get(rec_id) or _by_number(org.tables[res.name].values(), res, rec_id)
            if rec is None:
                return R.text(R.NOT_FOUND, 404)
            return R.answer(R.envelope(res.name, [rec.data], now_ms, sim.config.app_name), wants_json)
        args = {k.lower(): v for k, v in request.args.items()}
        ims = _ims(request.headers.get("If-Modified-Since"))
        try:
            rows, pagination = list_records(org, res, args, ims, sim.config.default_page_size,
                                            sim.config.max_page_size, sim.config.max_ids)
        except QueryError as exc:
            return R.validation_error(str(exc))
        except TooManyIds:
            return R.text(R.NOT_FOUND, 404)
        return R.answer(R.envelope(res.name, rows, now_ms, sim.config.app_name, pagination), wants_json)


def _by_number(rows: Any, res: Resource, number: str) -> Any:
    if not res.number_field:
        return None
    return next((r for r in rows if r.data.get(res.number_field) == number), None)


def _ims(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return parse_if_modified_since(header)
    except ValueError:
        return None  # an unreadable header is ignored: the full list comes back [I]
