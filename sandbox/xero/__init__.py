"""Simulate Xero's OAuth 2.0 (identity, connections) and Accounting API locally."""
from __future__ import annotations

from .config import XeroConfig
from .mount import mount, xero_urls
from .simulator import XeroError, XeroSimulator

__all__ = ["XeroSimulator", "XeroConfig", "XeroError", "mount", "xero_urls"]
