"""Build Xero-shaped answers: the JSON/XML envelope and the error bodies."""
from __future__ import annotations

import json
import uuid
from typing import Any
from xml.sax.saxutils import escape

from flask import Response

from .dates import dotnet, escape_dates, iso, ms_of

NOT_FOUND = "The resource you're looking for cannot be found"
OFFLINE = "The Organisation is offline"
MAINTENANCE = "The Xero API is currently offline for maintenance"


def envelope(key: str, items: list[dict[str, Any]], now_ms: int, provider: str,
             pagination: dict[str, int] | None = None) -> dict[str, Any]:
    """Wrap records as Xero does; ``Id`` is also the Xero-Correlation-Id header."""
    body: dict[str, Any] = {"Id": str(uuid.uuid4()), "Status": "OK", "ProviderName": provider,
                            "DateTimeUTC": dotnet(now_ms, offset=False)}
    if pagination is not None:
        body["pagination"] = pagination
    body["Warnings"] = []
    body[key] = items
    return body


def json_bytes(obj: Any) -> bytes:
    """Serialise compactly with the .NET dates' slashes escaped."""
    return escape_dates(json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))


def answer(body: dict[str, Any], wants_json: bool, status: int = 200) -> Response:
    """Answer JSON when asked for it, else XML (Xero's default)."""
    if wants_json:
        resp = Response(json_bytes(body), status=status, content_type="application/json; charset=utf-8")
    else:
        resp = Response(to_xml(body).encode("utf-8"), status=status, content_type="text/xml; charset=utf-8")
    resp.headers["Xero-Correlation-Id"] = str(body.get("Id") or uuid.uuid4())
    return resp


def _singular(name: str) -> str:
    if name.endswith("ies"):
        return name[:-3] + "y"
    if name.endswith("sses") or name.endswith("xes"):  # Addresses -> Address
        return name[:-2]
    return name[:-1] if name.endswith("s") else name


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and (ms := ms_of(value)) is not None:
        return iso(ms)
    return escape(str(value))


def _xml(name: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return f"<{name}>" + "".join(_xml(k, v) for k, v in value.items()) + f"</{name}>"
    if isinstance(value, list):
        child = _singular(name)
        return f"<{name}>" + "".join(_xml(child, v) for v in value) + f"</{name}>"
    return f"<{name}>{_xml_value(value)}</{name}>"


def to_xml(body: dict[str, Any]) -> str:
    """Render the envelope as Xero's XML ``<Response>`` (elements only; lists by singular names)."""
    inner = "".join(_xml(k, v) for k, v in body.items() if k != "pagination")
    return ('<Response xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema">' + inner + "</Response>")


def problem(status: int, detail: str) -> Response:
    """Return the identity layer's problem JSON (401/403), in the casing seen in traffic."""
    title = {401: "Unauthorized", 403: "Forbidden"}.get(status, "Error")
    body = {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4()),
            "Extensions": {}}
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def validation_error(message: str, number: int = 10, kind: str = "ValidationException") -> Response:
    """Return 400 with Xero's API exception body."""
    body = {"ErrorNumber": number, "Type": kind, "Message": message}
    return Response(json.dumps(body), status=400, content_type="application/json; charset=utf-8")


def text(message: str, status: int) -> Response:
    """Return a plain-text error (404 not found, 503 offline/maintenance, 500)."""
    return Response(message, status=status, content_type="text/plain; charset=utf-8")


def throttled(problem_name: str, retry_after: int) -> Response:
    """Return 429 with Retry-After and X-Rate-Limit-Problem (the body is unspecified: empty)."""
    resp = Response(b"", status=429, content_type="text/plain; charset=utf-8")
    resp.headers["Retry-After"] = str(retry_after)
    resp.headers["X-Rate-Limit-Problem"] = problem_name
    return resp
