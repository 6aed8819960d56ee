"""The Intuit edge: the Accounting API client, fault mapping, retries and the rate limiter.

It knows HTTP and Redis, not the database: tokens come from two callables.
"""
from .client import QboClient  # noqa: F401
