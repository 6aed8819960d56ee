"""Huey tasks: wiring only, a few lines each that call a service.

Importing this package declares every task on the Huey instance (the worker does).
"""
from . import sync, tokens, webhooks  # noqa: F401
