"""Expose the control API as JSON endpoints under /_sandbox/ for other processes.

These endpoints are unauthenticated on purpose: the simulator is a local test
tool bound to loopback, and browser tests and benchmarks drive it over HTTP.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import Blueprint, Response, current_app, jsonify, request

from .simulator import ObjectNotFound, SandboxError

if TYPE_CHECKING:
    from .simulator import Simulator

bp = Blueprint("sandbox_admin", __name__, url_prefix="/_sandbox")


def _sim() -> "Simulator":
    return current_app.extensions["sandbox"]


def _body() -> dict[str, Any]:
    data = request.get_json(silent=True, force=True)
    return data if isinstance(data, dict) else {}


@bp.errorhandler(SandboxError)
def _sandbox_error(exc: SandboxError) -> tuple[Response, int]:
    if isinstance(exc, ObjectNotFound):
        # Same shape as the API so tests can assert Intuit's 610 answer.
        return jsonify({"Fault": {"Error": [{"Message": "Object Not Found", "Detail": str(exc), "code": exc.code,
                                             "element": ""}], "type": "ValidationFault"}}), exc.status
    return jsonify({"error": str(exc), "code": exc.code}), exc.status


@bp.errorhandler(KeyError)
@bp.errorhandler(ValueError)
@bp.errorhandler(TypeError)
def _bad_request(exc: Exception) -> tuple[Response, int]:
    return jsonify({"error": str(exc)}), 400


@bp.get("/health")
def health() -> Response:
    """Report liveness."""
    return jsonify({"ok": True, "realms": _sim().realms()})


@bp.get("/companies")
def companies() -> Response:
    """List companies with record counts."""
    return jsonify(_sim().company_list())


@bp.post("/generate")
def generate() -> Response:
    """Regenerate data: {seed, companies, customers, invoices, tie_size, giant_tie, breadth, ties, transaction_factor,
    counts, journal_lines}."""
    b = _body()
    keys = ("seed", "companies", "customers", "invoices", "tie_size", "giant_tie", "anchor", "breadth", "ties",
            "transaction_factor", "counts", "journal_lines")
    realms = _sim().generate(**{k: b[k] for k in keys if k in b})
    return jsonify({"realms": realms, "companies": _sim().company_list()})


@bp.route("/config", methods=["GET", "POST"])
def config() -> Response:
    """Read or change configuration (limits, latency, clock_offset, refresh_grace, webhooks...)."""
    if request.method == "POST":
        _sim().configure(**_body())
    return jsonify(_sim().config.public())


@bp.post("/clock")
def clock() -> Response:
    """Skew the clock: {offset_seconds} sets, {advance_seconds} adds."""
    b, sim = _body(), _sim()
    if "offset_seconds" in b:
        sim.set_clock_offset(float(b["offset_seconds"]))
    if "advance_seconds" in b:
        sim.advance_clock(float(b["advance_seconds"]))
    return jsonify({"offset_seconds": sim.clock.offset, "now": sim.now()})


@bp.get("/stats/<realm>")
def stats(realm: str) -> Response:
    """Return request statistics of a realm (add ?log=1 for every request)."""
    sim = _sim()
    out = sim.stats(realm)
    if request.args.get("log"):
        out["log"] = sim.request_log(realm)
    return jsonify(out)


@bp.post("/stats/reset")
def stats_reset() -> Response:
    """Forget request logs: {realm} or all."""
    _sim().reset_stats(_body().get("realm"))
    return jsonify({"ok": True})


@bp.get("/records/<realm>/<entity>")
def records(realm: str, entity: str) -> Response:
    """Return the source of truth: objects (include_inactive=1 default) and deleted Ids."""
    sim = _sim()
    inc = request.args.get("include_inactive", "1") not in ("0", "false")
    return jsonify({"records": sim.records(realm, entity, include_inactive=inc),
                    "deleted_ids": sim.deleted_ids(realm, entity)})


@bp.get("/counts/<realm>")
def counts(realm: str) -> Response:
    """Live records per entity (?include_inactive=0 counts active ones only)."""
    inc = request.args.get("include_inactive", "1") not in ("0", "false")
    return jsonify(_sim().entity_counts(realm, include_inactive=inc))


@bp.post("/records/<realm>/<entity>")
def create(realm: str, entity: str) -> Response:
    """Create a record of any entity from Intuit-shaped fields (invoice: CustomerRef.value or customer_id)."""
    sim, b = _sim(), _body()
    if entity.lower() == "invoice" and "customer_id" in b:
        b["CustomerRef"] = {"value": str(b.pop("customer_id"))}
    return jsonify(sim.create_record(realm, entity, **b))


@bp.post("/records/<realm>/<entity>/<rec_id>")
def update(realm: str, entity: str, rec_id: str) -> Response:
    """Sparse-update a record of any entity."""
    return jsonify(_sim().update_record(realm, entity, rec_id, **_body()))


@bp.post("/records/<realm>/<entity>/<rec_id>/deactivate")
def deactivate(realm: str, entity: str, rec_id: str) -> Response:
    """Make a name-list record inactive (a transaction → 400 code 500)."""
    return jsonify(_sim().deactivate_record(realm, entity, rec_id))


@bp.delete("/records/<realm>/<entity>/<rec_id>")
def delete(realm: str, entity: str, rec_id: str) -> Response:
    """Hard-delete a transaction (second delete → 400 code 610; a name list → 400 code 500)."""
    return jsonify(_sim().delete_record(realm, entity, rec_id))


@bp.post("/merge/<realm>")
def merge(realm: str) -> Response:
    """Merge customer {merged_id} into {survivor_id}; return the survivor."""
    b = _body()
    return jsonify(_sim().merge_customers(realm, b["survivor_id"], b["merged_id"]))


@bp.post("/tie/<realm>/<entity>")
def tie(realm: str, entity: str) -> Response:
    """Create {count} generated records sharing one timestamp (now); return their Ids."""
    return jsonify({"ids": _sim().create_tied_records(realm, entity, int(_body().get("count", 1)))})


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults() -> Response:
    """List, add ({kind, realm, probability, nth, count, delay, status, target}) or clear fault rules."""
    sim = _sim()
    if request.method == "POST":
        b = _body()
        kind = b.pop("kind")
        return jsonify(sim.inject_fault(str(kind), **b).to_dict())
    if request.method == "DELETE":
        sim.clear_faults()
    return jsonify(sim.faults.list())


@bp.get("/authorize")
def authorize() -> Response:
    """Complete consent without a browser: ?realm=&state=&redirect_uri= → {redirect_url}."""
    a = request.args
    realm = a.get("realm") or _sim().realms()[0]
    url = _sim().authorize(realm, a.get("state", ""), a.get("redirect_uri") or None, a.get("client_id") or None,
                           a.get("scope") or "com.intuit.quickbooks.accounting")
    return jsonify({"redirect_url": url})


@bp.post("/oauth/expire")
def expire() -> Response:
    """Expire access tokens now: {realm} or all."""
    return jsonify({"expired": _sim().expire_access_tokens(_body().get("realm"))})


@bp.post("/oauth/revoke")
def revoke() -> Response:
    """Revoke every grant of {realm}."""
    return jsonify({"revoked": _sim().revoke_grant(_body()["realm"])})


@bp.post("/oauth/hard-expiry")
def hard_expiry() -> Response:
    """Move the 5-year cap of {realm}'s grants to {seconds} from now (e.g. 20 days, to see the warning)."""
    b = _body()
    return jsonify({"grants": _sim().set_hard_expiry(str(b["realm"]), float(b["seconds"]))})


@bp.get("/oauth/stats")
def oauth_stats() -> Response:
    """Count token-endpoint requests (?realm=)."""
    return jsonify(_sim().token_requests(request.args.get("realm")))


@bp.post("/webhooks/config")
def webhooks_config() -> Response:
    """Set {url, verifier, enabled, format}."""
    b = _body()
    _sim().configure_webhooks(b.get("url"), b.get("verifier"), b.get("enabled"), b.get("format"))
    return jsonify(_sim().config.public())


@bp.post("/webhooks/send")
def webhooks_send() -> Response:
    """Send {payload} (or {raw}: exact string) now; return the delivery record."""
    b = _body()
    payload = b["raw"].encode() if "raw" in b else b["payload"]
    return jsonify(_sim().send_webhook(payload, b.get("url")))


@bp.get("/webhooks/deliveries")
def webhooks_deliveries() -> Response:
    """Return the delivery log (waits for queued events first)."""
    _sim().wait_webhooks(float(request.args.get("wait", "2")))
    return jsonify(_sim().webhook_deliveries())
