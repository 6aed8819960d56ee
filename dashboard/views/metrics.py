"""``GET /metrics``: Prometheus' text format, for the holder of METRICS_TOKEN only."""
from __future__ import annotations

import hmac

from flask import Blueprint, Response, abort, current_app, request

from ..services import metrics

bp = Blueprint("metrics", __name__)


def bearer_token(header: str) -> str | None:
    """Return the token of an ``Authorization: Bearer <token>`` header, or None."""
    scheme, _, token = header.strip().partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@bp.get("/metrics")
def scrape():
    expected = current_app.config["SETTINGS"].metrics_token
    if not expected:  # no token configured: as if there were no such page
        abort(404)
    given = bearer_token(request.headers.get("Authorization", ""))
    # Compared in constant time, as bytes: the time taken tells nothing about the token.
    if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
        return Response("A valid 'Authorization: Bearer <METRICS_TOKEN>' header is required.\n", status=401,
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'}, mimetype="text/plain")
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)
