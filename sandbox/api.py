"""Serve Intuit's Accounting API paths behind a simulated gateway."""
from __future__ import annotations

import json
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Callable

from flask import Blueprint, Response, current_app, request

from . import responses as R
from .engine import execute
from .entities import BY_NAME
from .querylang import QueryError, parse
from .simulator import ObjectNotFound, SandboxError, is_name_list
from .clock import parse_timestamp

if TYPE_CHECKING:
    from .simulator import Simulator
    from .store import Company

bp = Blueprint("qbo_api", __name__)
_DEFAULT_TZ = -480  # used for `time` when a realm is unknown


def _sim() -> "Simulator":
    return current_app.extensions["sandbox"]


def _time(sim: "Simulator", company: "Company | None") -> str:
    return R.time_now(sim.now(), company.offset_minutes if company else _DEFAULT_TZ)


def _asked() -> str:
    """What a request asks for, for the request log: a query's statement (GET or POST), CDC's entities."""
    if request.path.endswith("/query"):
        return (request.args.get("query") if request.method == "GET" else request.get_data(as_text=True)) or ""
    return request.args.get("entities") or ""


def _gate(realm: str, kind: str, handler: Callable[["Company"], Response], weight: int = 1) -> Response:
    """Apply limits, latency, faults and authentication around a handler."""
    sim = _sim()
    company = sim.companies.get(realm)
    ticket = sim.limits.admit(realm, kind, request.path, weight, sim.now(), _asked()[:500])
    if not ticket.admitted:
        with sim.lock:
            as_xml = sim.throttle_rng.random() < sim.config.throttle_xml_probability
        sim.limits.finish(ticket, 429)
        return R.throttle(_time(sim, company), as_xml)
    status, outcome = 500, None
    try:
        rule = sim.faults.pick(realm, "api")
        delay = sim.config.latency + (rule.delay if rule is not None and rule.kind == "slow" else 0.0)
        if delay > 0:
            time.sleep(delay)  # never under a lock: concurrent requests overlap like on Intuit
        if rule is not None:
            outcome = "fault:" + rule.kind
        if rule is not None and rule.kind == "429":
            resp = R.throttle(_time(sim, company), False)
        elif rule is not None and rule.kind == "500":
            resp = R.server_error(_time(sim, company))
        elif rule is not None and rule.kind == "503":
            resp = R.unavailable()
        else:
            token = _bearer()
            if rule is not None and rule.kind == "revoke_token" and token:
                sim.oauth.expire_access(token=token)
            resp = _authenticate(sim, realm, token, company)
            if resp is None:
                assert company is not None
                try:
                    resp = handler(company)
                except ObjectNotFound as exc:
                    resp = R.fault([(exc.code, "Object Not Found", str(exc))], "ValidationFault", _time(sim, company))
                except SandboxError as exc:
                    resp = R.fault([(exc.code, "Request has invalid or unsupported property", str(exc))],
                                   "ValidationFault", _time(sim, company), exc.status)
            if rule is not None and rule.kind in ("truncated", "non_json") and resp.status_code == 200:
                resp = _mangle(resp, rule.kind, rule.status or 200)
        status = resp.status_code
        if outcome is None and status == 401:
            outcome = "unauthorized"
        return resp
    finally:
        sim.limits.finish(ticket, status, outcome)


def _mangle(resp: Response, kind: str, status: int) -> Response:
    if kind == "truncated":
        body = resp.get_data()
        # A body cut mid-stream with a matching length: the client sees invalid JSON.
        return Response(body[: max(1, len(body) // 2)], status=status, content_type=resp.content_type)
    html = "<!DOCTYPE html><html><head><title>QuickBooks</title></head><body><p>We're sorry, " \
           "something went wrong.</p></body></html>"
    return Response(html, status=status, content_type="text/html;charset=UTF-8")


def _bearer() -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def _authenticate(sim: "Simulator", realm: str, token: str | None, company: "Company | None") -> Response | None:
    if not token:
        return R.auth_failure("Authorization header missing or malformed", sim.now())
    grant, reason = sim.oauth.grant_for_access(token)
    if grant is None:
        return R.auth_failure(reason, sim.now())
    if grant.realm != realm or company is None:
        # A token for another company: Intuit answers with an authorization fault [I].
        return R.fault([("3100", "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                         "The application is not authorized for this company")], "AUTHORIZATION",
                       _time(sim, company), 403)
    return None


# ---- query ----------------------------------------------------------------------
def query_parts(sim: "Simulator", company: "Company", text: str) -> list[bytes]:
    """Run a statement and return the QueryResponse object as pieces to join.

    A page is its records' pre-rendered JSON with commas between them; the caller
    joins the pieces with the envelope's once, so a 1 MB body is copied once, not at
    every concatenation.
    """
    q = parse(text)
    with sim.lock:
        res = execute(company, q, sim.config.default_max_results, sim.config.max_results_cap)
        rendered = [r.json() for r in res.rows] if res.rows is not None else None
    if res.count is not None:
        return [b'{"totalCount":%d}' % res.count]
    if not rendered:
        return [b"{}"]
    parts = [b'{"' + res.entity.encode() + b'":[']
    for body in rendered:
        parts += (body, b",")
    parts[-1] = b'],"startPosition":%d,"maxResults":%d}' % (res.start, len(rendered))
    return parts


def query_body(sim: "Simulator", company: "Company", text: str) -> bytes:
    """Run a statement and return the QueryResponse object as bytes."""
    return b"".join(query_parts(sim, company, text))


def _envelope(key: bytes, inner: bytes | list[bytes], time_str: str) -> Response:
    parts = inner if isinstance(inner, list) else [inner]
    return R.json_response(b"".join([b'{"' + key + b'":', *parts, b',"time":"' + time_str.encode() + b'"}']))


def _query_fault(sim: "Simulator", company: "Company", exc: QueryError) -> Response:
    return R.fault([(exc.code, exc.message, exc.detail)], "ValidationFault", _time(sim, company))


@bp.route("/v3/company/<realm>/query", methods=["GET", "POST"])
def query(realm: str) -> Response:
    """Answer SELECT statements (GET ?query= or POST application/text)."""
    text = request.args.get("query") if request.method == "GET" else request.get_data(as_text=True)

    def handle(company: "Company") -> Response:
        sim = _sim()
        try:
            inner = query_parts(sim, company, text or "")
        except QueryError as exc:
            return _query_fault(sim, company, exc)
        return _envelope(b"QueryResponse", inner, _time(sim, company))

    return _gate(realm, "query", handle)


# ---- batch ----------------------------------------------------------------------
@bp.route("/v3/company/<realm>/batch", methods=["POST"])
def batch(realm: str) -> Response:
    """Run BatchItemRequest Query items; each item counts toward the realm limits."""
    try:
        items = json.loads(request.get_data() or b"{}").get("BatchItemRequest")
    except (ValueError, AttributeError):
        items = None

    def handle(company: "Company") -> Response:
        sim = _sim()
        if not isinstance(items, list) or not items:
            return R.fault([("2010", "Request has invalid or unsupported property",
                             "BatchItemRequest is required")], "ValidationFault", _time(sim, company))
        if len(items) > sim.config.batch_max_items:
            return R.fault([("1002", "Batch size limit exceeded",
                             f"Max {sim.config.batch_max_items} items per batch")], "ValidationFault",
                           _time(sim, company))
        out = []
        for item in items:
            bid = json.dumps(str(item.get("bId", "")) if isinstance(item, dict) else "").encode()
            stmt = item.get("Query") if isinstance(item, dict) else None
            if not isinstance(stmt, str):
                err = {"Fault": {"Error": [{"Message": "Operation not supported", "Detail":
                                            "The simulator's batch endpoint runs Query items only",
                                            "code": "4000", "element": ""}], "type": "ValidationFault"}}
                out.append(json.dumps(err)[:-1].encode() + b',"bId":' + bid + b"}")
                continue
            try:
                out.append(b'{"QueryResponse":' + query_body(sim, company, stmt) + b',"bId":' + bid + b"}")
            except QueryError as exc:
                err = {"Fault": {"Error": [{"Message": exc.message, "Detail": exc.detail, "code": exc.code,
                                            "element": ""}], "type": "ValidationFault"}}
                out.append(json.dumps(err)[:-1].encode() + b',"bId":' + bid + b"}")
        return _envelope(b"BatchItemResponse", b"[" + b",".join(out) + b"]", _time(sim, company))

    weight = len(items) if isinstance(items, list) and items else 1
    return _gate(realm, "batch", handle, weight)


# ---- CDC ------------------------------------------------------------------------
@bp.route("/v3/company/<realm>/cdc", methods=["GET"])
def cdc(realm: str) -> Response:
    """Return objects changed since `changedSince`, with tombstones, capped at 1,000."""

    def handle(company: "Company") -> Response:
        sim = _sim()
        entities_arg = request.args.get("entities", "")
        since_arg = request.args.get("changedSince", "")
        t = _time(sim, company)
        if not entities_arg or not since_arg:
            return R.fault([("2010", "Request has invalid or unsupported property",
                             "entities and changedSince are required")], "ValidationFault", t)
        try:
            since = parse_timestamp(since_arg, company.offset_minutes)
        except ValueError:
            return R.fault([("2010", "Request has invalid or unsupported property",
                             f"Invalid changedSince: {since_arg}")], "ValidationFault", t)
        if since < sim.now() - sim.config.cdc_lookback_days * 86400:
            # Intuit documents the 30-day look-back but not the error; a ValidationFault is likely [I].
            return R.fault([("2010", "Request has invalid or unsupported property",
                             f"changedSince must be within the last {sim.config.cdc_lookback_days} days")],
                           "ValidationFault", t)
        names = []
        for raw in entities_arg.split(","):
            for e in company.tables:
                if e.lower() == raw.strip().lower() and e not in names:
                    names.append(e)
        uncovered = [e for e in names if e in BY_NAME and not BY_NAME[e].cdc]
        if uncovered:
            # Intuit documents that CDC does not cover these but not the answer; a
            # ValidationFault 2010 naming them is our assumption.
            return R.fault([("2010", "Request has invalid or unsupported property",
                             f"Change Data Capture is not supported for {', '.join(uncovered)}")],
                           "ValidationFault", t)
        # Entities we do not simulate are ignored (they simply have no changes).
        # The 1,000-object cap applies to the whole response, not per entity: Intuit's
        # wording ("1000 objects per response") reads that way, and it is the stricter case.
        budget = sim.config.cdc_max_objects
        groups = []
        with sim.lock:
            for e in names:
                table = company.tables[e]
                lst = table.index("lastupdatedtime", False, False)
                # Objects changed at or after changedSince (inclusive: clients de-duplicate).
                lo = bisect_left(lst, (since,))
                live = [table.records[i].json() for _, i in lst[lo: lo + budget]]
                budget -= len(live)
                dead = sorted((w, i) for i, w in table.deleted.items() if w >= since)[: max(0, budget)]
                budget -= len(dead)
                stubs = [json.dumps({"domain": "QBO", "status": "Deleted", "Id": str(i), "MetaData": {
                    "LastUpdatedTime": _fmt(w, company.offset_minutes)}}, separators=(",", ":")).encode()
                    for w, i in dead]
                objs = live + stubs
                if objs:
                    groups.append(b'{"' + e.encode() + b'":[' + b",".join(objs) +
                                  b'],"startPosition":1,"maxResults":%d,"totalCount":%d}' % (len(objs), len(objs)))
        inner = b",".join(groups) if groups else b"{}"
        return _envelope(b"CDCResponse", b'[{"QueryResponse":[' + inner + b"]}]", t)

    return _gate(realm, "cdc", handle)


def _fmt(epoch: int, tz: int) -> str:
    from .clock import format_seconds
    return format_seconds(epoch, tz)


# ---- CompanyInfo ----------------------------------------------------------------------
def company_info(company: "Company") -> dict[str, Any]:
    """Build Intuit's CompanyInfo entity (Id "1") for a simulated company.

    Only the fields a client plausibly reads are filled; the rest of Intuit's entity
    (addresses, NameValue preferences, ...) is left out. The company "started" when its
    oldest record was created, so MetaData is deterministic under the seed.
    """
    oldest = [t.index("createtime", False, False)[:1] for t in company.tables.values()]
    created = min((lst[0][0] for lst in oldest if lst), default=0)
    stamp = _fmt(created, company.offset_minutes)
    return {
        "CompanyName": company.name, "LegalName": company.name, "Country": company.country,
        "SupportedLanguages": "en", "FiscalYearStartMonth": "January",
        "CompanyStartDate": stamp[:10], "Email": {"Address": "noreply@quickbooks.example"},
        "domain": "QBO", "sparse": False, "Id": "1", "SyncToken": "0",
        "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp},
    }


@bp.route("/v3/company/<realm>/companyinfo/<info_id>", methods=["GET"])
def read_company_info(realm: str, info_id: str) -> Response:
    """Intuit's CompanyInfo read; the path repeats the realm id (more specific than read_one)."""

    def handle(company: "Company") -> Response:
        sim = _sim()
        if info_id != company.realm_id:
            # Intuit does not document this case; an Object Not Found fault is our assumption.
            raise ObjectNotFound("CompanyInfo", info_id)
        with sim.lock:
            body = company_info(company)
        return R.json_response({"CompanyInfo": body, "time": _time(sim, company)})

    # Same gate as every read: limits, latency, faults, bearer auth, 403 for another realm.
    return _gate(realm, "read", handle)


# ---- single entities ---------------------------------------------------------------
def _entity_for_path(company: "Company", segment: str) -> str | None:
    """Map a REST path segment (Intuit's lower-case entity name, e.g. ``journalentry``) to a served entity."""
    for e in company.tables:
        if e.lower() == segment.lower():
            return e
    return None


@bp.route("/v3/company/<realm>/<entity>/<rec_id>", methods=["GET"])
def read_one(realm: str, entity: str, rec_id: str) -> Response:
    """Return one record of any served entity by Id."""

    def handle(company: "Company") -> Response:
        sim = _sim()
        name = _entity_for_path(company, entity)
        if name is None or not rec_id.isdigit():
            return R.fault([("500", "Unsupported Operation", f"Operation read {entity} is not supported")],
                           "ValidationFault", _time(sim, company))
        with sim.lock:
            rec = company.tables[name].records.get(int(rec_id))
            body = rec.json() if rec else None
        if body is None:
            raise ObjectNotFound(name, rec_id)
        return _envelope(name.encode(), body, _time(sim, company))

    return _gate(realm, "read", handle)


@bp.route("/v3/company/<realm>/<entity>", methods=["POST"])
def write(realm: str, entity: str) -> Response:
    """Create, sparse-update, or (transactions) delete via Intuit's write paths.

    A name list has no delete (400, code 500): it is made inactive by an update with
    ``Active: false``.
    """
    operation = request.args.get("operation", "")

    def handle(company: "Company") -> Response:
        sim = _sim()
        t = _time(sim, company)
        name = _entity_for_path(company, entity)
        if name is None:
            return R.fault([("500", "Unsupported Operation", f"Operation {entity} is not supported")],
                           "ValidationFault", t)
        try:
            body: dict[str, Any] = json.loads(request.get_data() or b"{}")
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            return R.fault([("2010", "Request has invalid or unsupported property", "Invalid JSON body")],
                           "ValidationFault", t)
        rid = body.get("Id")
        if rid is not None:
            current = sim.get(company.realm_id, name, rid)
            if str(body.get("SyncToken")) != current["SyncToken"]:
                return R.fault([("5010", "Stale Object Error", f"Stale Object Error : You and another user were "
                                 f"working on the same thing. {name} Id={rid}")], "ValidationFault", t)
        if operation == "delete":
            if rid is None or is_name_list(name, company.tables[name]):
                return R.fault([("500", "Unsupported Operation", "Operation delete is not supported")],
                               "ValidationFault", t)
            return R.json_response({name: sim.delete_record(company.realm_id, name, rid), "time": t})
        fields = {k: v for k, v in body.items() if k not in ("Id", "SyncToken", "sparse", "domain", "MetaData")}
        if rid is not None:
            data = sim.update_record(company.realm_id, name, rid, **fields)
        else:
            data = sim.create_record(company.realm_id, name, **fields)
        return R.json_response({name: data, "time": t})

    return _gate(realm, "write", handle)
