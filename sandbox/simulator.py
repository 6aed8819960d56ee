"""Hold all simulator state and expose the Python control API for tests."""
from __future__ import annotations

import copy
import json
import random
import threading
from typing import Any
from urllib.parse import urlencode

from . import breadth as breadth_data
from . import generator
from .entities import BY_NAME, ENTITIES, EntityDef, ref_ids, ref_objects
from .clock import SimClock, format_seconds
from .config import SandboxConfig
from .faults import FaultInjector, FaultRule
from .limits import RateLimiter
from .oauth import OAuthState
from .store import Company, EntityTable, Record
from .webhooks import Event, WebhookDispatcher

DEFAULT_SCOPE = "com.intuit.quickbooks.accounting"


class SandboxError(Exception):
    """Report a control-API misuse, or an Intuit fault (code 610 etc.)."""

    def __init__(self, message: str, code: str = "2000", status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


class ObjectNotFound(SandboxError):
    """Mirror Intuit's 610 Object Not Found."""

    def __init__(self, entity: str, rec_id: Any) -> None:
        super().__init__(f"Object Not Found: Something you're trying to use has been made inactive or deleted. "
                         f"{entity} Id={rec_id}", "610", 400)


class Simulator:
    """Simulate Intuit's OAuth server and Accounting API for a set of companies."""

    def __init__(self, *, companies: int = 2, customers: int = 50, invoices: int = 100, tie_size: int = 300,
                 giant_tie: bool = False, anchor: float | None = None, breadth: int = 0,
                 ties: dict[str, int] | None = None, transaction_factor: int = 1, **config: Any) -> None:
        self.config = SandboxConfig()
        self.config.update(**config)
        self.clock = SimClock(self.config.clock_offset)
        self.lock = threading.RLock()
        self.rng = random.Random(self.config.seed)
        self.oauth = OAuthState(self.config, self.clock)
        self.limits = RateLimiter(self.config, clock=self.clock.monotonic)
        self.faults = FaultInjector(random.Random(self.config.seed + 1))
        self.throttle_rng = random.Random(self.config.seed + 2)
        self.webhooks = WebhookDispatcher(self.config)
        self.companies: dict[str, Company] = {}
        self.added_entities: dict[str, bool] = {}  # entity -> has_active (see add_entity)
        self.generate(companies=companies, customers=customers, invoices=invoices, tie_size=tie_size,
                      giant_tie=giant_tie, anchor=anchor, breadth=breadth, ties=ties,
                      transaction_factor=transaction_factor)

    # ---- data -----------------------------------------------------------------
    def generate(self, *, seed: int | None = None, companies: int = 2, customers: int = 50, invoices: int = 100,
                 tie_size: int = 300, giant_tie: bool = False, anchor: float | None = None, breadth: int = 0,
                 ties: dict[str, int] | None = None, transaction_factor: int = 1,
                 counts: dict[str, int] | None = None, journal_lines: int = 2) -> list[str]:
        """Replace all companies with freshly generated ones; return realm ids.

        The anchor defaults to midnight UTC of the simulated day so a seed gives
        identical data all day long. ``breadth`` adds that many records of each of the
        other 26 entities (transactions × ``transaction_factor``) with valid references;
        ``ties`` ({"Item": 1100}) makes that many records of an entity share one timestamp;
        ``counts`` ({"Payment": 25000}) and ``journal_lines`` skew the mix (see ``breadth.fill``).
        """
        if seed is not None:
            self.config.seed = seed
        rng = random.Random(self.config.seed)
        if anchor is None:
            anchor = self.clock.now() // 86400 * 86400
        made = generator.generate(rng, anchor, companies, customers, invoices, tie_size, giant_tie)
        if breadth or ties or counts:
            for company in made:
                breadth_data.fill(company, anchor, self.config.seed, breadth, ties, transaction_factor, counts,
                                  journal_lines)
        for company in made:
            # Intuit's servers do not spend the client's CPU: render every record's JSON
            # once, up front (about 6 µs a record), instead of on the first page that holds it.
            for table in company.tables.values():
                table.prerender()
        with self.lock:
            self.companies = {c.realm_id: c for c in made}
            for entity, has_active in self.added_entities.items():
                for company in made:
                    company.tables[entity] = EntityTable(entity, has_active)
        return list(self.companies)

    def realms(self) -> list[str]:
        """Return realm ids in creation order."""
        return list(self.companies)

    def company(self, realm: str) -> Company:
        """Return a company or raise SandboxError."""
        c = self.companies.get(realm)
        if c is None:
            raise SandboxError(f"unknown realm {realm}", status=404)
        return c

    def company_list(self) -> list[dict[str, Any]]:
        """Describe all companies."""
        with self.lock:
            return [c.summary() for c in self.companies.values()]

    def add_entity(self, entity: str, has_active: bool = False) -> None:
        """Serve another entity in every company (empty), queryable by Id and MetaData times, in CDC too.

        For a client's new object type; its records come from ``create_record``.
        """
        with self.lock:
            self.added_entities[entity] = has_active
            for company in self.companies.values():
                company.tables.setdefault(entity, EntityTable(entity, has_active))

    def records(self, realm: str, entity: str, include_inactive: bool = True) -> list[dict[str, Any]]:
        """Return the source-of-truth objects of an entity, ordered by Id."""
        with self.lock:
            company = self.company(realm)
            table = company.tables[_entity(entity, company)]
            return [copy.deepcopy(r.data) for _, r in sorted(table.records.items())
                    if include_inactive or r.active]

    def deleted_ids(self, realm: str, entity: str = "Invoice") -> list[str]:
        """Return the Ids of hard-deleted records (CDC tombstones)."""
        with self.lock:
            company = self.company(realm)
            return [str(i) for i in sorted(company.tables[_entity(entity, company)].deleted)]

    def get(self, realm: str, entity: str, rec_id: Any) -> dict[str, Any]:
        """Return one record or raise ObjectNotFound."""
        with self.lock:
            company = self.company(realm)
            rec = company.tables[_entity(entity, company)].records.get(int(rec_id))
            if rec is None:
                raise ObjectNotFound(entity, rec_id)
            return copy.deepcopy(rec.data)

    # ---- mutations ------------------------------------------------------------
    def _stamp(self, rec_time: int | None = None) -> int:
        now = int(self.clock.now())
        return max(now, rec_time or 0)

    def _notify(self, realm: str, entity: str, rec_id: int, op: str, when: float) -> None:
        self.webhooks.notify(Event(realm, entity, str(rec_id), op, when))

    def create_customer(self, realm: str, **fields: Any) -> dict[str, Any]:
        """Create a customer (DisplayName required) and return it."""
        if not fields.get("DisplayName"):
            raise SandboxError("DisplayName is required", "2020")
        with self.lock:
            company = self.company(realm)
            table = company.tables["Customer"]
            rec_id = table.next_id
            now = self._stamp()
            meta = {"CreateTime": format_seconds(now, company.offset_minutes),
                    "LastUpdatedTime": format_seconds(now, company.offset_minutes)}
            data = generator.customer_data(rec_id, {**fields, "SyncToken": "0", "MetaData": meta}, company)
            rec = Record("Customer", rec_id, data, now, now, bool(data.get("Active", True)))
            table.put(rec)
            out = copy.deepcopy(data)
        self._notify(realm, "Customer", rec_id, "Create", now)
        return out

    def create_record(self, realm: str, entity: str, **fields: Any) -> dict[str, Any]:
        """Create a record of any entity from Intuit-shaped fields (Id, SyncToken, MetaData are set).

        References the entity declares (``entities.py``) must name existing records
        (else ObjectNotFound, code 610); name lists start active. Customer and Invoice
        go through ``create_customer`` / ``create_invoice`` (CustomerRef.value names the customer).
        """
        with self.lock:
            company = self.company(realm)
            name = _entity(entity, company)
        if name == "Customer":
            return self.create_customer(realm, **fields)
        if name == "Invoice":
            ref = (fields.pop("CustomerRef", None) or {}).get("value")
            lines = [ln for ln in fields.pop("Line", None) or [] if ln.get("DetailType") != "SubTotalLineDetail"]
            return self.create_invoice(realm, ref, lines or None, **fields)
        with self.lock:
            table = company.tables[name]
            _check_refs(company, name, fields)
            rec_id = table.next_id
            now = self._stamp()
            stamp = format_seconds(now, company.offset_minutes)
            data = {"domain": "QBO", "sparse": False, **fields, "Id": str(rec_id), "SyncToken": "0",
                    "MetaData": {"CreateTime": stamp, "LastUpdatedTime": stamp}}
            if table.has_active:
                data.setdefault("Active", True)
            table.put(Record(table.entity, rec_id, data, now, now, bool(data.get("Active", True))))
            out = copy.deepcopy(data)
        self._notify(realm, table.entity, rec_id, "Create", now)
        return out

    def update_record(self, realm: str, entity: str, rec_id: Any, **fields: Any) -> dict[str, Any]:
        """Sparse-update a record of any entity: bump SyncToken and LastUpdatedTime (references checked)."""
        with self.lock:
            company = self.company(realm)
            name = _entity(entity, company)
        if name == "Invoice":
            # Unchecked, as before: the classic invoices name fixed item ids the default data has no Items for.
            return self.update_invoice(realm, rec_id, **fields)
        with self.lock:
            _check_refs(company, name, fields)
        return self._update(realm, name, _int_id(name, rec_id), fields)

    def delete_record(self, realm: str, entity: str, rec_id: Any) -> dict[str, Any]:
        """Hard-delete a transaction, leaving a CDC tombstone; a name list → SandboxError code 500."""
        with self.lock:
            company = self.company(realm)
            name = _entity(entity, company)
            table = company.tables[name]
            if is_name_list(name, table):
                # Intuit has no delete for name lists; they are made inactive instead.
                raise SandboxError(f"Operation delete is not supported for {name}: make it inactive", "500")
            rid = _int_id(name, rec_id)
            if rid not in table.records:
                raise ObjectNotFound(name, rec_id)
            now = self._stamp(table.records[rid].updated_time)
            table.remove(rid, now)
        self._notify(realm, name, rid, "Delete", now)
        return {"status": "Deleted", "domain": "QBO", "Id": str(rec_id)}

    def deactivate_record(self, realm: str, entity: str, rec_id: Any) -> dict[str, Any]:
        """Make a name-list record inactive (its only 'delete'; the webhook says Delete). Others → SandboxError."""
        with self.lock:
            company = self.company(realm)
            name = _entity(entity, company)
            if not company.tables[name].has_active:
                raise SandboxError(f"{name} has no Active field to clear", "500")
        return self._update(realm, name, _int_id(name, rec_id), {"Active": False}, op="Delete")

    def merge_customers(self, realm: str, survivor_id: Any, merged_id: Any) -> dict[str, Any]:
        """Merge one customer into another, as QuickBooks' UI does (the API has no merge).

        The merged-away customer becomes inactive with a zero balance; every record that
        references it (CustomerRef of sales and time activities, journal entry lines)
        moves to the survivor with a new SyncToken; the survivor takes over the balance.
        Webhooks: ``Merge`` on the survivor with ``deletedId``, ``Update`` for each moved record.
        """
        survivor, merged = _int_id("Customer", survivor_id), _int_id("Customer", merged_id)
        if survivor == merged:
            raise SandboxError("a customer cannot be merged into itself")
        moved: list[tuple[str, int]] = []
        with self.lock:
            company = self.company(realm)
            customers = company.tables["Customer"]
            keep, gone = customers.records.get(survivor), customers.records.get(merged)
            if keep is None or not keep.active:
                raise ObjectNotFound("Customer", survivor_id)
            if gone is None:
                raise ObjectNotFound("Customer", merged_id)
            now = self._stamp(max(keep.updated_time, gone.updated_time))
            new_ref = {"value": str(survivor), "name": keep.data.get("DisplayName", "")}
            for spec in ENTITIES:
                refs = spec.refs_to("Customer")
                if not refs or spec.name == "Customer":
                    continue
                table = company.tables[spec.name]
                for rec in list(table.records.values()):
                    if not any(str(merged) in ref_ids(rec.data, r) for r in refs):
                        continue
                    data = copy.deepcopy(rec.data)
                    for r in refs:
                        for obj in ref_objects(data, r):
                            if str(obj[r.key]) == str(merged):
                                obj.update(new_ref)
                    self._rewrite(company, table, rec, data, now)
                    moved.append((spec.name, rec.id))
            balance = float(keep.data.get("Balance", 0)) + float(gone.data.get("Balance", 0))
            kept = {**copy.deepcopy(keep.data), "Balance": round(balance, 2), "BalanceWithJobs": round(balance, 2)}
            self._rewrite(company, customers, keep, kept, now)
            self._rewrite(company, customers, gone,
                          {**copy.deepcopy(gone.data), "Active": False, "Balance": 0, "BalanceWithJobs": 0}, now)
            out = copy.deepcopy(customers.records[survivor].data)
        self.webhooks.notify(Event(realm, "Customer", str(survivor), "Merge", now, deleted_id=str(merged)))
        for name, rid in moved:
            self._notify(realm, name, rid, "Update", now)
        return out

    def _rewrite(self, company: Company, table: EntityTable, old: Record, data: dict[str, Any], now: int) -> None:
        """Store a new version of a record: SyncToken + 1, LastUpdatedTime = now."""
        data["SyncToken"] = str(int(data.get("SyncToken", "0")) + 1)
        data["MetaData"] = {"CreateTime": old.data["MetaData"]["CreateTime"],
                            "LastUpdatedTime": format_seconds(now, company.offset_minutes)}
        table.put(Record(table.entity, old.id, data, old.create_time, now, bool(data.get("Active", True))))

    def create_tied_records(self, realm: str, entity: str, count: int) -> list[str]:
        """Create ``count`` generated records of an entity that all share one CreateTime and
        LastUpdatedTime (now), with valid references; return their Ids.

        For testing a client's cursor across a tie wider than a page after the backfill.
        Customer and Invoice are not offered (create them one by one at a frozen clock).
        """
        with self.lock:
            company = self.company(realm)
            name = _entity(entity, company)
            if name not in breadth_data.MAKERS:
                raise SandboxError(f"no generator for {name}")
            table = company.tables[name]
            now = self._stamp()
            ctx = breadth_data.new_context(company, f"tied:{self.config.seed}:{realm}:{name}:{table.next_id}")
            made = []
            for k in range(count):
                rec_id = table.next_id + k
                made.append(breadth_data.build(company, name, breadth_data.make_fields(ctx, name, rec_id),
                                               rec_id, now, now, 0))
                ctx.made.append(made[-1])
            for rec in made:
                table.put(rec)
        for rec in made:
            self._notify(realm, name, rec.id, "Create", now)
        return [str(rec.id) for rec in made]

    def entity_counts(self, realm: str, include_inactive: bool = True) -> dict[str, int]:
        """Count the live records of every entity of a company (inactive ones too unless asked)."""
        with self.lock:
            company = self.company(realm)
            return {e: (len(t.records) if include_inactive else sum(1 for r in t.records.values() if r.active))
                    for e, t in company.tables.items()}

    def update_customer(self, realm: str, rec_id: Any, **fields: Any) -> dict[str, Any]:
        """Apply a sparse update, bump SyncToken and LastUpdatedTime."""
        return self._update(realm, "Customer", int(rec_id), fields)

    def deactivate_customer(self, realm: str, rec_id: Any) -> dict[str, Any]:
        """Make a customer inactive (Intuit's only customer 'delete')."""
        return self._update(realm, "Customer", int(rec_id), {"Active": False}, op="Delete")

    def create_invoice(self, realm: str, customer_id: Any, lines: list[dict[str, Any]] | None = None,
                       **fields: Any) -> dict[str, Any]:
        """Create an invoice for an existing customer."""
        with self.lock:
            company = self.company(realm)
            cid = str(customer_id)
            cust = company.tables["Customer"].records.get(int(cid)) if cid.isdigit() else None
            if cust is None:
                raise ObjectNotFound("Customer", customer_id)
            table = company.tables["Invoice"]
            rec_id = table.next_id
            now = self._stamp()
            lines = lines or [{"Description": "Services", "SalesItemLineDetail": {
                "ItemRef": {"value": "1", "name": "Services"}, "Qty": 1, "UnitPrice": 100.0}}]
            data = generator.invoice_data(rec_id, company, cust, lines, now, now, extra=fields)
            table.put(Record("Invoice", rec_id, data, now, now, True))
            out = copy.deepcopy(data)
        self._notify(realm, "Invoice", rec_id, "Create", now)
        return out

    def update_invoice(self, realm: str, rec_id: Any, **fields: Any) -> dict[str, Any]:
        """Apply a sparse update to an invoice (Line replaces all lines)."""
        if "Line" in fields:
            lines = [ln for ln in fields["Line"] if ln.get("DetailType") != "SubTotalLineDetail"]
            fields["Line"], total = generator.invoice_lines(lines)
            fields.setdefault("TotalAmt", total)
            fields.setdefault("Balance", total)
        return self._update(realm, "Invoice", int(rec_id), fields)

    def _update(self, realm: str, entity: str, rec_id: int, fields: dict[str, Any], op: str = "Update") -> dict[str, Any]:
        with self.lock:
            company = self.company(realm)
            table = company.tables[entity]
            old = table.records.get(rec_id)
            if old is None:
                raise ObjectNotFound(entity, rec_id)
            data = copy.deepcopy(old.data)
            for key in ("Id", "SyncToken", "MetaData", "domain"):
                fields.pop(key, None)
            data.update(fields)
            now = self._stamp(old.updated_time)
            data["SyncToken"] = str(int(data.get("SyncToken", "0")) + 1)
            data["MetaData"] = {"CreateTime": old.data["MetaData"]["CreateTime"],
                                "LastUpdatedTime": format_seconds(now, company.offset_minutes)}
            if entity == "Customer" and "DisplayName" in fields:
                data["FullyQualifiedName"] = fields["DisplayName"]
            active = bool(data.get("Active", True))
            table.put(Record(entity, rec_id, data, old.create_time, now, active))
            out = copy.deepcopy(data)
        self._notify(realm, entity, rec_id, op, now)
        return out

    def delete_invoice(self, realm: str, rec_id: Any) -> dict[str, Any]:
        """Hard-delete an invoice, leaving a CDC tombstone; again → ObjectNotFound (610)."""
        return self.delete_record(realm, "Invoice", rec_id)

    # ---- limits, faults, clock ----------------------------------------------------
    def stats(self, realm: str) -> dict[str, Any]:
        """Return request counts, window maxima, peak concurrency and throttles."""
        return self.limits.stats(realm)

    def request_log(self, realm: str) -> list[dict[str, Any]]:
        """Return every API request of a realm with time, kind, path and outcome."""
        return self.limits.log(realm)

    def reset_stats(self, realm: str | None = None) -> None:
        """Forget request logs and limit windows (and OAuth counters when realm is None)."""
        self.limits.reset(realm)
        if realm is None:
            self.oauth.reset_stats()

    def configure(self, **changes: Any) -> None:
        """Change config at run time (limits, latency, grace, webhooks, ...)."""
        with self.lock:
            self.config.update(**changes)
            if "clock_offset" in changes:
                self.clock.set_offset(changes["clock_offset"])

    def set_latency(self, seconds: float) -> None:
        """Delay every API response by this many seconds."""
        self.configure(latency=seconds)

    def set_clock_offset(self, seconds: float) -> None:
        """Skew the simulated clock against real time."""
        self.configure(clock_offset=seconds)

    def advance_clock(self, seconds: float) -> None:
        """Move the simulated clock forward."""
        with self.lock:
            self.clock.advance(seconds)
            self.config.clock_offset = self.clock.offset

    def now(self) -> float:
        """Return simulated epoch seconds."""
        return self.clock.now()

    def inject_fault(self, kind: str, **options: Any) -> FaultRule:
        """Add a fault rule (see FaultRule) and return it."""
        return self.faults.add(kind, **options)

    def clear_faults(self) -> None:
        """Remove all fault rules."""
        self.faults.clear()

    # ---- OAuth control ------------------------------------------------------------
    def authorize(self, realm: str, state: str, redirect_uri: str | None = None, client_id: str | None = None,
                  scope: str = DEFAULT_SCOPE) -> str:
        """Complete the consent step without a browser; return the redirect URL."""
        client_id = client_id or self.config.client_id
        redirect_uri = redirect_uri or self.config.redirect_uris[0]
        if client_id != self.config.client_id:
            raise SandboxError("unknown client_id")
        if redirect_uri not in self.config.redirect_uris:
            raise SandboxError("redirect_uri is not registered")
        self.company(realm)
        code = self.oauth.issue_code(client_id, redirect_uri, realm, scope)
        sep = "&" if "?" in redirect_uri else "?"
        return redirect_uri + sep + urlencode({"code": code, "state": state, "realmId": realm})

    def issue_tokens(self, realm: str, include_hard_expiry: bool = False) -> dict[str, Any]:
        """Shortcut for tests: authorize and exchange a code, return the token JSON."""
        from urllib.parse import parse_qs, urlsplit
        url = self.authorize(realm, "test-state")
        code = parse_qs(urlsplit(url).query)["code"][0]
        grant, access = self.oauth.exchange_code(self.config.client_id, code, self.config.redirect_uris[0])
        return {**self.oauth.token_response(grant, access, include_hard_expiry), "realmId": realm}

    def expire_access_tokens(self, realm: str | None = None) -> int:
        """Expire access tokens now; refresh tokens keep working."""
        return self.oauth.expire_access(realm)

    def revoke_grant(self, realm: str) -> int:
        """Revoke every grant of a realm (tokens die; refresh → invalid_grant)."""
        return self.oauth.revoke_realm(realm)

    def set_hard_expiry(self, realm: str, seconds: float) -> int:
        """Bring the 5-year cap of a realm's grants to ``seconds`` from now; return the grants moved."""
        return self.oauth.set_hard_expiry(realm, seconds)

    def set_refresh_grace(self, seconds: float) -> None:
        """Set how long a superseded refresh token still works (0 = strict)."""
        self.configure(refresh_grace=seconds)

    def token_requests(self, realm: str | None = None) -> dict[str, Any]:
        """Count token-endpoint requests per realm and per grant."""
        return self.oauth.stats(realm)

    # ---- webhooks ----------------------------------------------------------------
    def configure_webhooks(self, url: str | None = None, verifier: str | None = None, enabled: bool | None = None,
                           fmt: str | None = None) -> None:
        """Set the webhook URL, verifier token, on/off switch and payload format."""
        changes: dict[str, Any] = {}
        if url is not None:
            changes["webhook_url"] = url
        if verifier is not None:
            changes["webhook_verifier"] = verifier
        if enabled is not None:
            changes["webhook_enabled"] = enabled
        if fmt is not None:
            if fmt not in ("legacy", "cloudevents"):
                raise SandboxError("format must be 'legacy' or 'cloudevents'")
            changes["webhook_format"] = fmt
        self.configure(**changes)

    def send_webhook(self, payload: Any, url: str | None = None) -> dict[str, Any]:
        """Post a payload now (synchronously), signed; return the delivery record."""
        return self.webhooks.send(payload, url=url)

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Return the delivery log."""
        with self.webhooks.lock:
            return list(self.webhooks.deliveries)

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until queued notifications have been delivered."""
        return self.webhooks.wait_idle(timeout)

    def close(self) -> None:
        """Stop background threads."""
        self.webhooks.stop()


def is_name_list(entity: str, table: EntityTable) -> bool:
    """Name lists are never hard-deleted (an added entity is one when it has Active)."""
    spec = BY_NAME.get(entity)
    return spec.name_list if spec is not None else table.has_active


def _int_id(entity: str, rec_id: Any) -> int:
    text = str(rec_id)
    if not text.isdigit():
        raise ObjectNotFound(entity, rec_id)
    return int(text)


def _check_refs(company: Company, entity: str, fields: dict[str, Any]) -> None:
    """Refuse references (declared in entities.py) to records that do not exist: Intuit's 610."""
    spec: EntityDef | None = BY_NAME.get(entity)
    for ref in spec.refs if spec else ():
        for value in ref_ids(fields, ref):
            target = company.tables[ref.target].records
            if not value.isdigit() or int(value) not in target:
                raise ObjectNotFound(ref.target, value)


def _entity(name: str, company: Company) -> str:
    for e in company.tables:
        if e.lower() == name.lower():
            return e
    raise SandboxError(f"unknown entity {name}", status=404)


def dumps(obj: Any) -> str:
    """Serialise for the admin API."""
    return json.dumps(obj, ensure_ascii=False)
