"""Map Xero's answers (status, headers, body) to the sync error vocabulary.

Xero's error bodies come as problem JSON (401/403, field case varies), validation JSON
(400), or plain text (404, 503 "The Organisation is offline"): the status decides, the
body only adds words. The ``Xero-Correlation-Id`` travels where Intuit's ``intuit_tid`` does.
"""
from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any, Mapping

from ...sync.errors import (
    LedgerServerError, ReconnectRequired, RequestRejected, SyncError, Throttled, TokenRejected,
)
from ..retry_after import retry_after_seconds

CORRELATION_HEADER = "Xero-Correlation-Id"


class XeroThrottled(Throttled):
    """Xero answered 429; ``problem`` is its ``X-Rate-Limit-Problem`` (minute, day, concurrent, ...)."""

    def __init__(self, message: str, problem: str | None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.problem = problem


class DayLimitReached(XeroThrottled):
    """The organisation's daily call limit is spent: waiting minutes will not help, only
    Retry-After (often many hours)."""


def _field(data: Mapping[str, Any], name: str) -> Any:
    """Read a problem-JSON field whatever its case (docs say ``title``, traffic ``Title``)."""
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == name.lower():
            return value
    return None


def error_text(body: str) -> str:
    """Extract a person-readable reason from a problem, validation or plain-text body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        detail = _field(data, "Detail") or _field(data, "Message") or _field(data, "Title")
        elements = _field(data, "Elements") or []
        errors = [e.get("Message") for el in elements if isinstance(el, Mapping)
                  for e in el.get("ValidationErrors") or [] if isinstance(e, Mapping) and e.get("Message")]
        parts = [str(detail)] if detail else []
        return "; ".join(parts + [str(e) for e in errors[:3]])
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body or "")).strip()[:200]


def classify(status: int, body: str, headers: Mapping[str, str] | None = None,
             now: datetime | None = None) -> SyncError | None:
    """Return the error an answer means (None for a 2xx)."""
    if 200 <= status < 300:
        return None
    headers = headers or {}
    cid = headers.get(CORRELATION_HEADER)
    text = error_text(body)
    retry_after = retry_after_seconds(headers.get("Retry-After"), now)
    if status == 429:
        problem = (headers.get("X-Rate-Limit-Problem") or "").strip().lower() or None
        wait = f"; Xero asks to wait {retry_after:.0f} s" if retry_after is not None else ""
        if problem and problem.startswith("day"):
            return DayLimitReached(
                f"Xero's daily call limit for this organisation is spent (HTTP 429, day){wait}; "
                "syncing resumes when Xero's day rolls over", problem, intuit_tid=cid, retry_after=retry_after)
        return XeroThrottled(f"Xero throttled the requests (HTTP 429, {problem or 'no limit named'}){wait}",
                             problem, intuit_tid=cid, retry_after=retry_after)
    if status == 401:
        if "AuthorizationUnsuccessful" in text:
            # The token works but lacks this endpoint's scope: only a new consent adds scopes.
            return ReconnectRequired(f"Xero refused the request for lack of a scope (HTTP 401: {text}). "
                                     "Connect the organisation again to grant it.", intuit_tid=cid)
        return TokenRejected(f"Xero refused the access token (HTTP 401): {text or 'no details'}", intuit_tid=cid)
    if status == 403:
        return ReconnectRequired(f"Xero denied access to this organisation (HTTP 403: {text or 'no details'}): "
                                 "it was disconnected or the user lost access. Reconnect it.", intuit_tid=cid)
    if status >= 500:
        return LedgerServerError(f"Xero failed (HTTP {status}): {text or 'no details'}", intuit_tid=cid,
                                 retry_after=retry_after)
    return RequestRejected(f"Xero rejected the request (HTTP {status}): {text or 'no details'}", intuit_tid=cid)
