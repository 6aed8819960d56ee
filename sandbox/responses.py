"""Build Intuit-shaped bodies: faults, 401s, throttles, query pages."""
from __future__ import annotations

import json
import time
import uuid
from typing import Any

from flask import Response

from .clock import format_millis


def new_tid() -> str:
    """Return an intuit_tid value like Intuit's (`1-<8 hex>-<24 hex>`)."""
    u = uuid.uuid4().hex
    return f"1-{int(time.time()):08x}-{u[:24]}"


def json_response(body: bytes | str | dict[str, Any], status: int = 200) -> Response:
    """Wrap JSON in a response with Intuit's content type."""
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode("utf-8")
    return Response(body, status=status, content_type="application/json;charset=UTF-8")


def fault(errors: list[tuple[str, str, str]], ftype: str, time_str: str, status: int = 400) -> Response:
    """Return the standard `Fault` envelope; errors are (code, message, detail)."""
    body = {"Fault": {"Error": [{"Message": m, "Detail": d, "code": c, "element": ""} for c, m, d in errors],
                      "type": ftype}, "time": time_str}
    return json_response(body, status)


def auth_failure(detail: str, sim_now: float) -> Response:
    """Return 401 with the lower-case `fault` body (reference 7.3 variant 1)."""
    body = {
        "warnings": None, "intuitObject": None,
        "fault": {"error": [{"message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                             "detail": detail, "code": "3200", "element": None}], "type": "AUTHENTICATION"},
        "report": None, "queryResponse": [], "batchItemResponse": [], "attachableResponse": [],
        "syncErrorResponse": None, "requestId": None, "time": int(sim_now * 1000), "status": None,
        "cdcresponse": [],
    }
    return json_response(body, 401)


THROTTLE_MESSAGE = "message=ThrottleExceeded; errorCode=003001; statusCode=429"
THROTTLE_DETAIL = "The request limit was reached. Try again later"


def throttle(time_str: str, as_xml: bool) -> Response:
    """Return Intuit's 429 ThrottleExceeded fault, as JSON or (sometimes) XML."""
    if as_xml:
        xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               f'<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time_str}">'
               f'<Fault type="SERVICE"><Error code="3001"><Message>{THROTTLE_MESSAGE}</Message>'
               f'<Detail>{THROTTLE_DETAIL}</Detail></Error></Fault></IntuitResponse>')
        return Response(xml.encode(), status=429, content_type="application/xml")
    return fault([("3001", THROTTLE_MESSAGE, THROTTLE_DETAIL)], "SERVICE", time_str, 429)


def server_error(time_str: str) -> Response:
    """Return a 500 SystemFault like Intuit's InternalServerError."""
    return fault([("3100", "message=InternalServerError; errorCode=003100; statusCode=500",
                   "An internal error occurred. Please try again later")], "SystemFault", time_str, 500)


def unavailable() -> Response:
    """Return a 503 with a plain HTML gateway page, as Intuit's edge does."""
    html = ("<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
            "<center><h1>503 Service Temporarily Unavailable</h1></center></body></html>")
    return Response(html, status=503, content_type="text/html")


def time_now(sim_now: float, offset_minutes: int) -> str:
    """Format the top-level `time` field."""
    return format_millis(sim_now, offset_minutes)
