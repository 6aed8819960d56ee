"""Map Intuit's answers (status, headers, body) to the sync error vocabulary."""
from __future__ import annotations

import json
import re
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from typing import Mapping

from ..sync.errors import (
    IntuitServerError, ReconnectRequired, RequestRejected, SyncError, Throttled, TokenRejected,
)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Read a Retry-After header: seconds, or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())


def fault_message(body: str) -> str:
    """Extract Intuit's fault text from a JSON or XML body (XML comes with some 429s)."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, Mapping):
        fault = data.get("Fault") or data.get("fault") or {}
        errors = fault.get("Error") or fault.get("error") or []
        if errors and isinstance(errors[0], Mapping):
            first = errors[0]
            parts = [first.get("Message") or first.get("message"), first.get("Detail") or first.get("detail")]
            code = first.get("code")
            text = "; ".join(str(p) for p in parts if p)
            return f"{text} (code {code})" if code else text
        if data.get("error"):
            return str(data.get("error_description") or data["error"])
    match = re.search(r"<Message>(.*?)</Message>.*?(?:<Detail>(.*?)</Detail>)?", body or "", re.S)
    if match:
        return "; ".join(p for p in match.groups() if p)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body or "")).strip()[:200]


def classify(status: int, body: str, headers: Mapping[str, str] | None = None,
             now: datetime | None = None) -> SyncError | None:
    """Return the error an answer means (None for a usable 200)."""
    headers = headers or {}
    tid = headers.get("intuit_tid")
    if 200 <= status < 300:
        return None
    message = fault_message(body)
    if status == 429:
        return Throttled(f"Intuit throttled the requests (HTTP 429): {message}", intuit_tid=tid,
                         retry_after=retry_after_seconds(headers.get("Retry-After"), now))
    if status == 401:
        return TokenRejected(f"Intuit refused the access token (HTTP 401): {message}", intuit_tid=tid)
    if status == 403:
        return ReconnectRequired(f"Intuit denied access to this company (HTTP 403): {message}. "
                                 "Reconnect it to grant access again.", intuit_tid=tid)
    if status >= 500:
        return IntuitServerError(f"Intuit failed (HTTP {status}): {message or 'no details'}", intuit_tid=tid,
                                 retry_after=retry_after_seconds(headers.get("Retry-After"), now))
    return RequestRejected(f"Intuit rejected the request (HTTP {status}): {message}", intuit_tid=tid)
