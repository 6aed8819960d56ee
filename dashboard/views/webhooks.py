"""``POST /v1/webhooks/<integration>``: Intuit's signed notifications (public, no CSRF:
the HMAC signature protects it). Answers fast; the work happens in the worker."""
from __future__ import annotations

import logging

from flask import Blueprint, current_app, jsonify, request

from ..extensions import csrf
from ..services import webhooks
from ..services.work_queue import work_queue

bp = Blueprint("webhooks", __name__, url_prefix="/v1/webhooks")
log = logging.getLogger(__name__)

# Intuit's deliveries are small (ids, no field values); anything bigger is not from Intuit.
DEFAULT_MAX_BODY = 256 * 1024


@csrf.exempt
@bp.post("/<integration>")
def receive(integration: str):
    limit = current_app.config.get("WEBHOOK_MAX_BODY", DEFAULT_MAX_BODY)
    if request.content_length is not None and request.content_length > limit:
        return _answer("too_large", f"The body exceeds {limit} bytes.", 413)
    body = _read_at_most(limit + 1)  # never more than the limit, even when chunked
    if len(body) > limit:
        return _answer("too_large", f"The body exceeds {limit} bytes.", 413)
    try:
        accepted = webhooks.receive(integration, body, request.headers.get("intuit-signature"))
    except webhooks.WebhookRejected as exc:
        return _answer("rejected", str(exc), exc.status)
    if not accepted.duplicate:
        _queue_drain()
    return jsonify(status="accepted", duplicate=accepted.duplicate), 200


def _read_at_most(size: int) -> bytes:
    chunks, total = [], 0
    while total < size:
        chunk = request.stream.read(min(65536, size - total))
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _queue_drain() -> None:
    """Ask the worker to drain the inbox now; the periodic drain covers a failure here."""
    try:
        work_queue().drain_webhooks()
    except Exception as exc:  # the delivery is stored: answering 200 is right
        log.warning("Could not queue the webhook drain (%s); the periodic drain will", type(exc).__name__)


def _answer(error: str, message: str, status: int):
    return jsonify(error=error, message=message), status
