"""Find the Xero simulator of the current Flask app (made on first use when not given)."""
from __future__ import annotations

import threading

from flask import current_app

from .simulator import XeroSimulator

_LOCK = threading.Lock()


def xero_sim() -> XeroSimulator:
    """Return ``app.extensions["xero"]``, creating a default one on first use.

    Lazy, so an app serving only Intuit's paths (most QBO tests) never generates Xero data.
    """
    ext = current_app.extensions
    sim = ext.get("xero")
    if sim is None:
        with _LOCK:
            sim = ext.get("xero")
            if sim is None:
                sim = ext["xero"] = XeroSimulator(**ext.get("xero_config", {}))
    return sim
