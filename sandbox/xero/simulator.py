"""Hold the Xero simulator's state and expose its Python control API."""
from __future__ import annotations

import copy
import random
import threading
import uuid
from typing import Any
from urllib.parse import urlencode

from ..clock import SimClock
from ..faults import FaultInjector, FaultRule
from . import generator
from .config import XeroConfig
from .dates import dotnet
from .limits import XeroLimiter
from .oauth import DEFAULT_USER, XeroOAuth
from .resources import RESOURCES, Resource, resource
from .store import Organisation
from .webhooks import XeroWebhooks

# Fault kinds Xero's gateway shows: "503" answers "The Organisation is offline".
XERO_FAULT_KINDS = ("500", "503", "maintenance", "401", "slow")
DEFAULT_SCOPE = ("offline_access openid profile email accounting.contacts.read accounting.settings.read "
                 "accounting.invoices.read accounting.payments.read accounting.banktransactions.read "
                 "accounting.manualjournals.read")
API_ROOT = "https://api.xero.com/api.xro/2.0"


class XeroError(Exception):
    """A control-API misuse (unknown tenant, resource or record)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class XeroFaults(FaultInjector):
    """The Intuit simulator's fault rules, with Xero's kinds; ``target`` is a resource name,
    ``"api"`` (every Accounting call), ``"connections"`` or ``"token"``."""

    def add(self, kind: str, **options: Any) -> FaultRule:
        """Add a rule (see FaultRule: nth / probability / count)."""
        if kind not in XERO_FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {XERO_FAULT_KINDS}")
        rule = super().add("500", **options)  # the base validates Intuit's kinds; the rule takes ours
        rule.kind = kind
        return rule


class XeroSimulator:
    """Simulate Xero's identity server and Accounting API for generated organisations."""

    def __init__(self, *, organisations: int = 2, contacts: int = 50, invoices: int = 100, breadth: int = 10,
                 **config: Any) -> None:
        self.config = XeroConfig()
        self.config.update(**config)
        self.clock = SimClock(self.config.clock_offset)
        self.lock = threading.RLock()
        self.oauth = XeroOAuth(self.config, self.clock)
        self.limits = XeroLimiter(self.config, self.clock.monotonic)
        self.faults = XeroFaults(random.Random(self.config.seed + 1))
        self.webhooks = XeroWebhooks(self.config, random.Random(self.config.seed + 2))
        self.organisations: dict[str, Organisation] = {}
        self.generate(organisations=organisations, contacts=contacts, invoices=invoices, breadth=breadth)

    # ---- data -------------------------------------------------------------------
    def generate(self, *, seed: int | None = None, organisations: int = 2, contacts: int = 50, invoices: int = 100,
                 breadth: int = 10, anchor: float | None = None) -> list[str]:
        """Replace all organisations with generated ones (deterministic by seed for a simulated day)."""
        if seed is not None:
            self.config.seed = seed
        if anchor is None:
            anchor = self.clock.now() // 86400 * 86400
        made = generator.generate(random.Random(self.config.seed), anchor, organisations, contacts, invoices, breadth)
        with self.lock:
            self.organisations = {o.tenant_id: o for o in made}
        return list(self.organisations)

    def tenants(self) -> list[str]:
        """Return tenant ids in creation order."""
        return list(self.organisations)

    def organisation(self, tenant: str) -> Organisation:
        """Return an organisation or raise XeroError (404)."""
        org = self.organisations.get(tenant)
        if org is None:
            raise XeroError(f"unknown tenant {tenant}", 404)
        return org

    def organisation_list(self) -> list[dict[str, Any]]:
        """Describe every organisation with record counts."""
        with self.lock:
            return [o.summary() for o in self.organisations.values()]

    def records(self, tenant: str, name: str) -> list[dict[str, Any]]:
        """Return the source of truth: every record (archived, voided, deleted too), full."""
        res = self._resource(name)
        with self.lock:
            rows = sorted(self.organisation(tenant).tables[res.name].values(), key=lambda r: r.seq)
            return [copy.deepcopy(r.data) for r in rows]

    def get(self, tenant: str, name: str, rec_id: str) -> dict[str, Any]:
        """Return one record or raise XeroError (404)."""
        res = self._resource(name)
        with self.lock:
            rec = self.organisation(tenant).tables[res.name].get(rec_id)
            if rec is None:
                raise XeroError(f"{res.name} {rec_id} not found", 404)
            return copy.deepcopy(rec.data)

    def create(self, tenant: str, name: str, **fields: Any) -> dict[str, Any]:
        """Create a record from Xero-shaped fields (the id is drawn unless given); webhook CREATE."""
        res = self._resource(name)
        with self.lock:
            org = self.organisation(tenant)
            now_ms = self._now_ms()
            data = dict(fields)
            data.setdefault(res.id_field, str(uuid.uuid4()))
            if res.status_field:
                data.setdefault(res.status_field, "ACTIVE" if res.name in ("Contacts", "Accounts") else "AUTHORISED")
            if res.has_updated:
                data["UpdatedDateUTC"] = dotnet(now_ms)
            org.put(res.name, str(data[res.id_field]), data, now_ms)
        self._notify(tenant, res, data, "CREATE")
        return copy.deepcopy(data)

    def update(self, tenant: str, name: str, rec_id: str, bump: bool = True, **fields: Any) -> dict[str, Any]:
        """Change fields; ``bump=False`` keeps UpdatedDateUTC (as Xero does for SentToContact,
        DueDate or contact balances), so an If-Modified-Since reader cannot see the change."""
        res = self._resource(name)
        with self.lock:
            org = self.organisation(tenant)
            old = org.tables[res.name].get(rec_id)
            if old is None:
                raise XeroError(f"{res.name} {rec_id} not found", 404)
            data = {**copy.deepcopy(old.data), **fields}
            updated = self._now_ms() if bump else old.updated_ms
            if res.has_updated:
                data["UpdatedDateUTC"] = dotnet(updated)
            org.put(res.name, rec_id, data, updated)
        self._notify(tenant, res, data, "UPDATE")
        return copy.deepcopy(data)

    def archive_contact(self, tenant: str, contact_id: str) -> dict[str, Any]:
        """Archive a contact (hidden from lists without includeArchived=true; webhook UPDATE)."""
        return self.update(tenant, "Contacts", contact_id, ContactStatus="ARCHIVED")

    def void_invoice(self, tenant: str, invoice_id: str) -> dict[str, Any]:
        """Void an invoice: it stays listed with Status VOIDED."""
        return self.update(tenant, "Invoices", invoice_id, Status="VOIDED", AmountDue=0.0)

    def delete_invoice(self, tenant: str, invoice_id: str) -> dict[str, Any]:
        """Delete an invoice: it stays listed with Status DELETED."""
        return self.update(tenant, "Invoices", invoice_id, Status="DELETED", AmountDue=0.0)

    def delete(self, tenant: str, name: str, rec_id: str) -> dict[str, Any]:
        """Delete a record: Items vanish (no tombstone); others get Status DELETED."""
        res = self._resource(name)
        if not res.hard_delete:
            if not res.status_field:
                raise XeroError(f"{res.name} cannot be deleted")
            return self.update(tenant, res.name, rec_id, **{res.status_field: "DELETED"})
        with self.lock:
            rec = self.organisation(tenant).tables[res.name].pop(rec_id, None)
        if rec is None:
            raise XeroError(f"{res.name} {rec_id} not found", 404)
        return copy.deepcopy(rec.data)

    def _resource(self, name: str) -> Resource:
        res = resource(name)
        if res is None:
            raise XeroError(f"unknown resource {name}; expected one of {[r.name for r in RESOURCES]}", 404)
        return res

    def _notify(self, tenant: str, res: Resource, data: dict[str, Any], event_type: str) -> None:
        if res.webhook_category is None:
            return
        rec_id = str(data[res.id_field])
        extra = ({"Type": data.get("Type"), "Status": data.get("Status")}
                 if res.webhook_category == "CREDITNOTE" else None)
        self.webhooks.notify(res.webhook_category, event_type, tenant, rec_id, f"{API_ROOT}/{res.name}/{rec_id}",
                             self.now(), extra)

    # ---- OAuth control --------------------------------------------------------------
    def authorize(self, tenants: list[str] | None = None, state: str = "test-state", redirect_uri: str | None = None,
                  scope: str = DEFAULT_SCOPE, user: str = DEFAULT_USER) -> str:
        """Complete consent without a browser (all tenants by default); return the redirect URL."""
        redirect_uri = redirect_uri or self.config.redirect_uris[0]
        if redirect_uri not in self.config.redirect_uris:
            raise XeroError("redirect_uri is not registered")
        chosen = [self.organisation(t) for t in (tenants or self.tenants())]
        consent = self.oauth.consent(self.config.client_id, redirect_uri, scope,
                                     [(o.tenant_id, o.name) for o in chosen], user)
        sep = "&" if "?" in redirect_uri else "?"
        return redirect_uri + sep + urlencode({"code": consent.code, "scope": scope, "state": state})

    def issue_tokens(self, tenants: list[str] | None = None, scope: str = DEFAULT_SCOPE,
                     user: str = DEFAULT_USER) -> dict[str, Any]:
        """Shortcut for tests: consent and exchange the code; return the token JSON."""
        from urllib.parse import parse_qs, urlsplit
        url = self.authorize(tenants, scope=scope, user=user)
        code = parse_qs(urlsplit(url).query)["code"][0]
        grant, access = self.oauth.exchange_code(self.config.client_id, code, self.config.redirect_uris[0], None, True)
        return self.oauth.token_response(grant, access)

    def connections(self, user: str = DEFAULT_USER) -> list[dict[str, Any]]:
        """Return a user's connections as GET /connections renders them."""
        return [c.to_json() for c in self.oauth.list_connections(user)]

    def expire_access_tokens(self) -> int:
        """Expire every access token now; refresh keeps working."""
        return self.oauth.expire_access()

    def token_requests(self) -> dict[str, Any]:
        """Count token-endpoint requests per grant."""
        return self.oauth.stats()

    # ---- limits, faults, clock ----------------------------------------------------------
    def stats(self, tenant: str) -> dict[str, Any]:
        """Return a tenant's calls per endpoint and status, and the throttled ones."""
        return self.limits.stats(tenant)

    def reset_stats(self, tenant: str | None = None) -> None:
        """Forget counts and limit windows (and token counters when tenant is None)."""
        self.limits.reset(tenant)
        if tenant is None:
            self.oauth.reset_stats()

    def configure(self, **changes: Any) -> None:
        """Change config at run time; a new webhook URL or key needs intent to receive again."""
        with self.lock:
            self.config.update(**changes)
            if "clock_offset" in changes:
                self.clock.set_offset(changes["clock_offset"])
            if {"webhook_url", "webhook_key"} & set(changes):
                self.webhooks.reset_subscription()

    def advance_clock(self, seconds: float) -> None:
        """Move the simulated clock forward (tokens expire, limit windows roll)."""
        with self.lock:
            self.clock.advance(seconds)
            self.config.clock_offset = self.clock.offset

    def now(self) -> float:
        """Return simulated epoch seconds."""
        return self.clock.now()

    def _now_ms(self) -> int:
        return int(self.clock.now() * 1000)

    def inject_fault(self, kind: str, **options: Any) -> FaultRule:
        """Add a fault rule: kind in XERO_FAULT_KINDS; tenant as ``realm``; ``target`` a resource or "api"."""
        if "tenant" in options:
            options["realm"] = options.pop("tenant")
        return self.faults.add(kind, **options)

    def clear_faults(self) -> None:
        """Remove all fault rules."""
        self.faults.clear()

    # ---- webhooks -------------------------------------------------------------------
    def configure_webhooks(self, url: str | None = None, key: str | None = None) -> None:
        """Set the delivery URL and webhook key (the subscription then needs intent to receive)."""
        changes = {k: v for k, v in (("webhook_url", url), ("webhook_key", key)) if v is not None}
        self.configure(**changes)

    def intent_to_receive(self) -> dict[str, Any]:
        """Run Xero's intent-to-receive check against the URL; events flow only after it passed."""
        return self.webhooks.intent_to_receive()

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        """Return the delivery log."""
        with self.webhooks.lock:
            return list(self.webhooks.deliveries)

    def wait_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until queued events have been delivered."""
        return self.webhooks.wait_idle(timeout)

    def close(self) -> None:
        """Stop background threads."""
        self.webhooks.stop()
