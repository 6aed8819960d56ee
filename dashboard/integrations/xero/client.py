"""A thin Xero Accounting API client for one organisation (tenant): pages, limits, retries.

The same policy as QuickBooks' ``QboClient``: every request waits for a slot in the
tenant's limits (the shared limiter of ``dashboard.qbo.ratelimit``, built by the caller
with ``limit_values``: this package may not import ``dashboard.qbo``, which imports it)
and carries a timeout. Inside the call a request is retried only where that can fix it at
once: a dropped connection, a timeout, a 5xx, by default once after half a second. A 429
is raised at once (``XeroThrottled``, ``DayLimitReached``): the run waits in the queue, not
a thread here. A 401 ``TokenExpired`` triggers one token refresh and one retry.
Errors are logged with Xero's correlation id; tokens never are.
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Mapping, Protocol, Sequence

import orjson
import requests

from ...sync.errors import LedgerServerError, SyncError, Throttled, TokenRejected
from ...sync.policy import RetryPolicy
from .dates import if_modified_since
from .faults import CORRELATION_HEADER, classify
from .resources import resource

log = logging.getLogger(__name__)

API_PATH = "/api.xro/2.0"
MAX_PAGE_SIZE = 1000  # Xero's cap on paged endpoints since July 2024


class SlotLimiter(Protocol):
    """What the client needs of ``dashboard.qbo.ratelimit``'s limiters."""

    def slot(self, realm: str, weight: int = 1) -> contextlib.AbstractContextManager[None]: ...


def limit_values(tuning: Mapping[str, float]) -> dict[str, float]:
    """Keyword arguments of ``dashboard.qbo.ratelimit.Limits`` for Xero's per-tenant limits.

    Xero has no per-second limit, so the second window admits a whole minute's worth;
    the minute window is padded like Intuit's (a request admitted here reaches Xero a
    little later). The daily limit is not a window here: ``X-DayLimit-Remaining`` reports it.
    """
    per_minute = int(tuning.get("XERO_LIMIT_PER_MINUTE", 60))
    return {"per_minute": per_minute, "per_second": per_minute,
            "concurrent": int(tuning.get("XERO_LIMIT_CONCURRENT", 5)), "minute_window": 61.0}


@dataclass(frozen=True)
class RequestEvent:
    """One HTTP request to the Accounting API, as observers (budget, metrics) see it.

    Field names match ``dashboard.qbo.client.RequestEvent`` so one observer counts both
    ledgers: ``realm`` holds the tenant id, ``intuit_tid`` Xero's correlation id. The
    remaining-quota fields are Xero's headers (None when absent, e.g. no answer).
    """

    realm: str
    kind: str  # the resource: Contacts, Invoices, ...
    status: int  # 0 when no answer came
    seconds: float
    items: int
    intuit_tid: str | None
    day_remaining: int | None = None
    minute_remaining: int | None = None


RequestObserver = Callable[[RequestEvent], None]


@dataclass(frozen=True)
class Page:
    """One answer of a list endpoint: its records (Xero's JSON as sent) and paging facts."""

    records: list[dict[str, Any]]
    page: int | None  # None for an unpaged read (everything in one answer)
    page_size: int | None
    page_count: int | None = None
    item_count: int | None = None
    correlation_id: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def is_last(self) -> bool:
        """True when no later page can hold records (Xero's pagination, else a short page)."""
        if self.page is None:
            return True
        if self.page_count is not None:
            return self.page >= self.page_count
        return len(self.records) < (self.page_size or 100)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class XeroClient:
    """Talk to one tenant's Accounting API (thread-safe: pages may be fetched concurrently)."""

    def __init__(self, base_url: str, tenant_id: str, get_token: Callable[[], str],
                 refresh_token: Callable[[str], str], limiter: SlotLimiter,
                 policy: RetryPolicy = RetryPolicy(retries=1, delay=0.5, backoff=2.0, max_wait=5.0),
                 timeout: tuple[float, float] = (5.0, 60.0), session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, observers: Sequence[RequestObserver] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        self.tenant_id = tenant_id
        self._get_token = get_token
        self._refresh_token = refresh_token
        self.limiter = limiter
        self.policy = policy
        self.timeout = timeout
        self.session = session or requests.Session()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.requests_sent = 0
        self._observers = tuple(observers)

    # -- API -------------------------------------------------------------------
    def get_page(self, name: str, *, page: int | None = None, page_size: int | None = None,
             modified_since: datetime | None = None, include_archived: bool = True,
             params: Mapping[str, str] | None = None) -> Page:
        """Read one page of a resource (or all of an unpaged one).

        ``page`` is 1-based and only sent to paged resources (without it Xero returns every
        record without line items). ``modified_since`` becomes ``If-Modified-Since`` at
        second precision, only for resources that honour it. ``include_archived`` asks for
        ARCHIVED records too (on by default: a sync must see archiving).
        """
        res = resource(name)
        query: dict[str, str] = dict(params or {})
        if res.paged and page is not None:
            if page < 1:
                raise ValueError("Xero pages start at 1")
            query["page"] = str(page)
            if page_size is not None:
                query["pageSize"] = str(max(1, min(int(page_size), MAX_PAGE_SIZE)))
        if res.archived_param and include_archived:
            query["includeArchived"] = "true"
        headers = {}
        if modified_since is not None and res.modified_since:
            headers["If-Modified-Since"] = if_modified_since(modified_since)
        body, cid = self._call(name, query, headers)
        records = body.get(name)
        if not isinstance(records, list):
            raise LedgerServerError(f"Xero's answer for {name} has no {name} list", intuit_tid=cid)
        paging = body.get("pagination") if isinstance(body.get("pagination"), Mapping) else {}
        sent_page = int(query["page"]) if "page" in query else None
        return Page(records=[r for r in records if isinstance(r, dict)], page=sent_page,
                    page_size=paging.get("pageSize") or (int(query.get("pageSize", 100)) if sent_page else None),
                    page_count=paging.get("pageCount"), item_count=paging.get("itemCount"),
                    correlation_id=cid, raw=body)

    # -- transport ---------------------------------------------------------------
    def _call(self, name: str, params: dict[str, str], headers: dict[str, str]) -> tuple[dict[str, Any], str | None]:
        url = f"{self.base_url}{API_PATH}/{name}"
        token = self._get_token()
        refreshed = False
        attempt = 0
        while True:
            error, body, cid = self._send(name, url, params, headers, token)
            if error is None:
                return body, cid
            if isinstance(error, TokenRejected) and not refreshed:
                # An access token can die early (30-minute life, clock drift): one refresh, one retry.
                refreshed = True
                token = self._refresh_token(token)
                continue
            attempt += 1
            self._log_error(name, error, attempt)
            if (not error.retryable or isinstance(error, Throttled) or attempt > self.policy.retries
                    or (error.retry_after or 0) > self.policy.max_wait):
                raise error
            self._sleep(self.policy.wait(attempt, error.retry_after))

    def _send(self, name: str, url: str, params: dict[str, str], headers: dict[str, str],
              token: str) -> tuple[SyncError | None, Any, str | None]:
        all_headers = {"Accept": "application/json", "Authorization": f"Bearer {token}",
                       "Xero-Tenant-Id": self.tenant_id, **headers}
        with self.limiter.slot(self.tenant_id):
            with self._lock:
                self.requests_sent += 1
            started = time.perf_counter()
            try:
                response = self.session.get(url, params=params, headers=all_headers, timeout=self.timeout)
            except requests.Timeout:
                self._notify(name, 0, started, None, {})
                return LedgerServerError(f"Xero did not answer within {self.timeout[1]:.0f} s"), None, None
            except requests.ConnectionError as exc:
                self._notify(name, 0, started, None, {})
                return LedgerServerError(f"Could not reach Xero at {self.base_url}: {type(exc).__name__}"), None, None
        cid = response.headers.get(CORRELATION_HEADER)
        self._notify(name, response.status_code, started, cid, response.headers)
        if not 200 <= response.status_code < 300:  # only a fault's text is decoded
            return classify(response.status_code, response.text, response.headers), None, cid
        try:
            body = orjson.loads(response.content)
        except ValueError:
            # XML (a missing Accept header somewhere in between) or a broken body.
            return LedgerServerError(
                f"Xero sent an unreadable answer (HTTP {response.status_code}, "
                f"{response.headers.get('Content-Type', 'no content type')}, {len(response.content)} bytes)",
                intuit_tid=cid), None, cid
        if not isinstance(body, dict):
            return LedgerServerError("Xero sent an answer that is not a JSON object", intuit_tid=cid), None, cid
        return None, body, cid

    def _notify(self, name: str, status: int, started: float, cid: str | None, headers: Mapping[str, str]) -> None:
        """Tell every observer about one request; an observer's fault never fails a sync."""
        if not self._observers:
            return
        event = RequestEvent(self.tenant_id, name, status, time.perf_counter() - started, 1, cid,
                             _int_header(headers, "X-DayLimit-Remaining"),
                             _int_header(headers, "X-MinLimit-Remaining"))
        for observe in self._observers:
            try:
                observe(event)
            except Exception:  # noqa: BLE001 - counting must not break the sync it counts
                log.exception("A request observer failed for Xero tenant %s", self.tenant_id)

    def _log_error(self, name: str, error: SyncError, attempt: int) -> None:
        log.warning("Xero GET %s for tenant %s failed (attempt %d, %s, correlation id %s): %s",
                    name, self.tenant_id, attempt, error.kind, error.intuit_tid, error.message,
                    extra={"xero_correlation_id": error.intuit_tid, "tenant": self.tenant_id})
