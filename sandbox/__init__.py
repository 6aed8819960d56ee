"""Simulate Intuit's QuickBooks Online OAuth server and Accounting API locally."""
from __future__ import annotations

from .app import create_app
from .config import SandboxConfig
from .serve import serve
from .simulator import ObjectNotFound, SandboxError, Simulator
from .xero import XeroSimulator

__all__ = ["create_app", "serve", "Simulator", "SandboxConfig", "SandboxError", "ObjectNotFound", "XeroSimulator"]
