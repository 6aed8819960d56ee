"""A thin QuickBooks Online Accounting API client: query, batch and CDC, with retries and limits.

Every request waits for a slot in the realm's rate limits and carries a timeout. Inside
the call it is retried only where a retry can fix it at once: a dropped connection, a
timeout, a 5xx or a broken body, by default once after half a second. A 429, or a fault
whose Retry-After is longer than ``policy.max_wait``, is raised at once: the run waits in
the queue (Intuit's guidance for 429 is to wait a minute), not a thread here. A 401
triggers one token refresh and one retry.
Errors are logged with Intuit's ``intuit_tid``; tokens never are.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Mapping, Sequence

import orjson
import requests

from ..integrations.qbo.oauth import MINOR_VERSION
from ..sync.errors import IntuitServerError, RequestRejected, SyncError, Throttled, TokenRejected
from ..sync.policy import RetryPolicy
from ..sync.timestamps import format_qbo_time
from .faults import classify, fault_message
from .ratelimit import LocalRateLimiter, RateLimiter

log = logging.getLogger(__name__)

# Items per batch request: Intuit's batch page says at most 10 (its limits page recommends
# up to 30), and Intuit may count each item against the realm's 10 requests a second: a
# batch of more would be refused (429) every time.
BATCH_MAX_ITEMS = 10


@dataclass(frozen=True)
class RequestEvent:
    """One HTTP request to the Accounting API, as observers (budget, metrics) see it.

    ``status`` is the HTTP status, 0 when no answer came (timeout, dropped connection);
    ``items`` is how many reads it carried (a batch's items, else 1): every data read is
    metered by Intuit, so observers count ``items`` metered calls.
    """

    realm: str
    kind: str  # the endpoint: query, batch or cdc
    status: int
    seconds: float
    items: int
    intuit_tid: str | None


RequestObserver = Callable[[RequestEvent], None]


class QboClient:
    """Talk to one realm's Accounting API (thread-safe: pages may be fetched concurrently)."""

    def __init__(self, base_url: str, realm: str, get_token: Callable[[], str],
                 refresh_token: Callable[[str], str], limiter: RateLimiter | None = None,
                 policy: RetryPolicy = RetryPolicy(retries=1, delay=0.5, backoff=2.0, max_wait=5.0),
                 timeout: tuple[float, float] = (5.0, 60.0), session: requests.Session | None = None,
                 sleep: Callable[[float], None] = time.sleep, observers: Sequence[RequestObserver] = ()) -> None:
        self.base_url = base_url.rstrip("/")
        self.realm = realm
        self._get_token = get_token
        self._refresh_token = refresh_token
        self.limiter = limiter or LocalRateLimiter()
        self.policy = policy
        self.timeout = timeout
        self.session = session or requests.Session()
        self._sleep = sleep
        self._lock = threading.Lock()
        self.requests_sent = 0
        self._observers = tuple(observers)

    # -- API -------------------------------------------------------------------
    def query(self, statement: str) -> dict[str, Any]:
        """Run a query statement; return the whole body (``QueryResponse`` and ``time``)."""
        return self._call("POST", "query", data=statement.encode(),
                          headers={"Content-Type": "application/text"})

    def batch_query(self, statements: Mapping[str, str]) -> dict[str, dict[str, Any] | SyncError]:
        """Run up to BATCH_MAX_ITEMS query statements in one batch request, keyed by their batch id.

        Each id maps to its ``QueryResponse`` or to the error of its own fault (an item
        Intuit did not answer is an IntuitServerError): a bad item spoils no other. The
        request as a whole is retried and raises like ``query``. One HTTP request, though
        Intuit's per-realm limits count every item: it takes a slot of the limiter per item.
        """
        return self.batch_query_at(statements)[0]

    def batch_query_at(self, statements: Mapping[str, str]) -> tuple[dict[str, dict[str, Any] | SyncError], Any]:
        """``batch_query``, with Intuit's clock of the answer (its ``time`` field, as sent)."""
        if not statements:
            return {}, None
        if len(statements) > BATCH_MAX_ITEMS:
            raise ValueError(f"A batch holds at most {BATCH_MAX_ITEMS} items, not {len(statements)}")
        payload = {"BatchItemRequest": [{"bId": bid, "Query": text} for bid, text in statements.items()]}
        body = self._call("POST", "batch", data=orjson.dumps(payload), headers={"Content-Type": "application/json"},
                          weight=len(statements))
        answers = {str(item.get("bId")): item for item in body.get("BatchItemResponse") or []
                   if isinstance(item, dict)}
        results: dict[str, dict[str, Any] | SyncError] = {}
        for bid in statements:
            item = answers.get(bid)
            if item is None:
                results[bid] = IntuitServerError(f"Intuit's batch answer has no item {bid!r}")
            elif item.get("Fault"):
                results[bid] = RequestRejected(f"Intuit rejected the query: {fault_message(orjson.dumps(item).decode())}")
            else:
                results[bid] = item.get("QueryResponse") or {}
        return results, body.get("time")

    def cdc(self, entities: list[str], changed_since: datetime) -> dict[str, Any]:
        """Return objects of ``entities`` changed at or after ``changed_since`` (30 days at most)."""
        return self._call("GET", "cdc", params={"entities": ",".join(entities),
                                                "changedSince": format_qbo_time(changed_since)})

    # -- transport ---------------------------------------------------------------
    def _call(self, method: str, path: str, *, params: dict[str, str] | None = None,
              data: bytes | None = None, headers: dict[str, str] | None = None, weight: int = 1) -> dict[str, Any]:
        url = f"{self.base_url}/v3/company/{self.realm}/{path}"
        params = {**(params or {}), "minorversion": MINOR_VERSION}
        token = self._get_token()
        refreshed = False
        attempt = 0
        while True:
            error, body = self._send(method, url, params, data, headers, token, weight)
            if error is None:
                return body
            if isinstance(error, TokenRejected) and not refreshed:
                # An access token can die early (revoked, clock drift): one refresh, one retry.
                refreshed = True
                token = self._refresh_token(token)
                continue
            attempt += 1
            self._log_error(method, path, error, attempt)
            if (not error.retryable or isinstance(error, Throttled) or attempt > self.policy.retries
                    or (error.retry_after or 0) > self.policy.max_wait):
                raise error
            self._sleep(self.policy.wait(attempt, error.retry_after))

    def _send(self, method: str, url: str, params: dict[str, str], data: bytes | None,
              headers: dict[str, str] | None, token: str, weight: int = 1) -> tuple[SyncError | None, Any]:
        all_headers = {"Accept": "application/json", "Authorization": f"Bearer {token}", **(headers or {})}
        # One concurrency slot; the windows stamped with every item a batch carries, at once.
        with self.limiter.slot(self.realm, weight):
            with self._lock:
                self.requests_sent += 1
            started = time.perf_counter()
            try:
                response = self.session.request(method, url, params=params, data=data, headers=all_headers,
                                                timeout=self.timeout)
            except requests.Timeout:
                self._notify(url, 0, started, weight, None)
                return IntuitServerError(f"Intuit did not answer within {self.timeout[1]:.0f} s"), None
            except requests.ConnectionError as exc:
                self._notify(url, 0, started, weight, None)
                return IntuitServerError(f"Could not reach Intuit at {self.base_url}: {type(exc).__name__}"), None
        self._notify(url, response.status_code, started, weight, response.headers.get("intuit_tid"))
        if not 200 <= response.status_code < 300:  # a page's text is only decoded when it is a fault
            return classify(response.status_code, response.text, response.headers), None
        try:
            # orjson: a 1,000-record page parses several times faster than with json (and holds the GIL less).
            body = orjson.loads(response.content)
        except (ValueError, json.JSONDecodeError):
            return IntuitServerError(
                f"Intuit sent an unreadable answer (HTTP {response.status_code}, "
                f"{response.headers.get('Content-Type', 'no content type')}, {len(response.content)} bytes)",
                intuit_tid=response.headers.get("intuit_tid")), None
        if not isinstance(body, dict):
            return IntuitServerError("Intuit sent an answer that is not a JSON object",
                                     intuit_tid=response.headers.get("intuit_tid")), None
        if body.get("Fault"):
            fault = classify(400, response.text, response.headers)
            return fault, None
        return None, body

    def _notify(self, url: str, status: int, started: float, items: int, intuit_tid: str | None) -> None:
        """Tell every observer about one request; an observer's fault never fails a sync."""
        if not self._observers:
            return
        event = RequestEvent(self.realm, url.rsplit("/", 1)[-1], status, time.perf_counter() - started, items,
                             intuit_tid)
        for observe in self._observers:
            try:
                observe(event)
            except Exception:  # noqa: BLE001 - counting must not break the sync it counts
                log.exception("A request observer failed for realm %s", self.realm)

    def _log_error(self, method: str, path: str, error: SyncError, attempt: int) -> None:
        log.warning("QBO %s %s for realm %s failed (attempt %d, %s, intuit_tid=%s): %s",
                    method, path, self.realm, attempt, error.kind, error.intuit_tid, error.message,
                    extra={"intuit_tid": error.intuit_tid, "realm": self.realm})
