"""Expose the Xero control API as JSON under /_sandbox/xero/ (unauthenticated: a loopback test tool)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from .context import xero_sim
from .simulator import XeroError

bp = Blueprint("xero_admin", __name__, url_prefix="/_sandbox/xero")


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True, force=True)
    return data if isinstance(data, dict) else {}


@bp.errorhandler(XeroError)
def _xero_error(exc: XeroError) -> tuple[Response, int]:
    return jsonify({"error": str(exc)}), exc.status


@bp.errorhandler(KeyError)
@bp.errorhandler(ValueError)
@bp.errorhandler(TypeError)
def _bad_request(exc: Exception) -> tuple[Response, int]:
    return jsonify({"error": str(exc)}), 400


@bp.get("/health")
def health() -> Response:
    """Report liveness and the tenant ids."""
    return jsonify({"ok": True, "tenants": xero_sim().tenants()})


@bp.get("/organisations")
def organisations() -> Response:
    """List organisations with record counts."""
    return jsonify(xero_sim().organisation_list())


@bp.post("/generate")
def generate() -> Response:
    """Regenerate data: {seed, organisations, contacts, invoices, breadth, anchor}."""
    b = _body()
    keys = ("seed", "organisations", "contacts", "invoices", "breadth", "anchor")
    tenants = xero_sim().generate(**{k: b[k] for k in keys if k in b})
    return jsonify({"tenants": tenants, "organisations": xero_sim().organisation_list()})


@bp.route("/config", methods=["GET", "POST"])
def config() -> Response:
    """Read or change configuration (limits, page sizes, grace, latency...)."""
    if request.method == "POST":
        xero_sim().configure(**_body())
    return jsonify(xero_sim().config.public())


@bp.post("/clock")
def clock() -> Response:
    """Move the clock: {advance_seconds}."""
    sim = xero_sim()
    sim.advance_clock(float(_body().get("advance_seconds", 0)))
    return jsonify({"offset_seconds": sim.clock.offset, "now": sim.now()})


@bp.get("/stats/<tenant>")
def stats(tenant: str) -> Response:
    """Calls of a tenant per endpoint and status, throttled ones by problem."""
    return jsonify(xero_sim().stats(tenant))


@bp.post("/stats/reset")
def stats_reset() -> Response:
    """Forget counts and windows: {tenant} or all."""
    xero_sim().reset_stats(_body().get("tenant"))
    return jsonify({"ok": True})


@bp.get("/records/<tenant>/<resource>")
def records(tenant: str, resource: str) -> Response:
    """The source of truth: every record of a collection (archived, voided, deleted too)."""
    return jsonify({"records": xero_sim().records(tenant, resource)})


@bp.post("/records/<tenant>/<resource>")
def create(tenant: str, resource: str) -> Response:
    """Create a record from Xero-shaped fields."""
    return jsonify(xero_sim().create(tenant, resource, **_body()))


@bp.post("/records/<tenant>/<resource>/<rec_id>")
def update(tenant: str, resource: str, rec_id: str) -> Response:
    """Change fields ({..., "_bump": false} keeps UpdatedDateUTC)."""
    b = _body()
    bump = bool(b.pop("_bump", True))
    return jsonify(xero_sim().update(tenant, resource, rec_id, bump=bump, **b))


@bp.delete("/records/<tenant>/<resource>/<rec_id>")
def delete(tenant: str, resource: str, rec_id: str) -> Response:
    """Delete: Items vanish, others get Status DELETED."""
    return jsonify(xero_sim().delete(tenant, resource, rec_id))


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    """List, add ({kind, tenant, target, count, nth, probability, delay}) or clear fault rules."""
    sim = xero_sim()
    if request.method == "POST":
        b = _body()
        return jsonify(sim.inject_fault(str(b.pop("kind")), **b).to_dict())
    if request.method == "DELETE":
        sim.clear_faults()
    return jsonify(sim.faults.list())


@bp.get("/authorize")
def authorize() -> Response:
    """Consent without a browser: ?tenant=…(repeatable; default all)&state=&redirect_uri=&scope= → {redirect_url}."""
    a = request.args
    kwargs = {k: a[k] for k in ("state", "redirect_uri", "scope", "user") if a.get(k)}
    return jsonify({"redirect_url": xero_sim().authorize(a.getlist("tenant") or None, **kwargs)})


@bp.get("/connections")
def connections() -> Response:
    """Connections of ?user= (default the simulated user)."""
    user = request.args.get("user")
    return jsonify(xero_sim().connections(user) if user else xero_sim().connections())


@bp.post("/oauth/expire")
def expire() -> Response:
    """Expire every access token now."""
    return jsonify({"expired": xero_sim().expire_access_tokens()})


@bp.get("/oauth/stats")
def oauth_stats() -> Response:
    """Count token-endpoint requests per grant."""
    return jsonify(xero_sim().token_requests())


@bp.post("/webhooks/config")
def webhooks_config() -> Response:
    """Set {url, key}; the subscription then needs intent to receive."""
    b = _body()
    xero_sim().configure_webhooks(b.get("url"), b.get("key"))
    return jsonify(xero_sim().config.public())


@bp.post("/webhooks/intent")
def webhooks_intent() -> Response:
    """Run the intent-to-receive check now."""
    return jsonify(xero_sim().intent_to_receive())


@bp.get("/webhooks/deliveries")
def webhooks_deliveries() -> Response:
    """The delivery log (waits ?wait= seconds for queued events first)."""
    xero_sim().wait_webhooks(float(request.args.get("wait", "2")))
    return jsonify(xero_sim().webhook_deliveries())
