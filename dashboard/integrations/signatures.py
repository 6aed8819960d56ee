"""Webhook signatures of the ledgers: base64(HMAC-SHA256(key, raw body)), compared in constant time.

Intuit (``intuit-signature``, keyed by the verifier token) and Xero (``x-xero-signature``,
keyed by the webhook key) sign the same way.
"""
from __future__ import annotations

import base64
import hashlib
import hmac


def hmac_sha256_b64_valid(body: bytes, signature: str | None, key: str) -> bool:
    """Tell whether ``signature`` is base64(HMAC-SHA256(key, body)); no key or signature is invalid."""
    if not signature or not key:
        return False
    expected = base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode())
