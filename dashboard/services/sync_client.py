"""Build the QBO client for a company: configured URL, shared rate limiter, vault tokens."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable

from flask import current_app

from ..qbo.client import QboClient, RequestObserver
from ..redis_client import redis_client
from ..qbo.ratelimit import Limits, LocalRateLimiter, RateLimiter, RedisRateLimiter
from ..sync.policy import RetryPolicy
from . import budget, metrics
from . import tokens as token_service

# The embedded backend runs one worker process: its limiter lives in that process.
_local_limiter: LocalRateLimiter | None = None
_limiter_guard = threading.Lock()


def option(name: str, cast: Callable[[Any], Any] = float) -> Any:
    """Read a tuning knob: ``config.TUNING`` holds its default and validation; tests
    override it in the app's config."""
    return cast(current_app.config[name])


def limits() -> Limits:
    return Limits(per_minute=option("QBO_LIMIT_PER_MINUTE", int),
                  per_second=option("QBO_LIMIT_PER_SECOND", int),
                  concurrent=option("QBO_LIMIT_CONCURRENT", int))


def rate_limiter() -> RateLimiter:
    """Redis windows shared by every worker when REDIS_URL is set; in-process otherwise."""
    global _local_limiter
    settings = current_app.config["SETTINGS"]
    if settings.redis_url:
        return RedisRateLimiter(redis_client(settings.redis_url), prefix=settings.redis_key("limits", ""),
                                limits=limits())
    with _limiter_guard:
        if _local_limiter is None or _local_limiter.limits != limits():
            _local_limiter = LocalRateLimiter(limits())
        return _local_limiter


class VaultTokens:
    """Access tokens from the token vault, usable from fetch threads (each gets an app context)."""

    REUSE_SECONDS = 240  # the vault promises 5 more minutes of validity per token

    def __init__(self, app, realm: str) -> None:
        self.app, self.realm = app, realm
        self._token: str | None = None
        self._fetched = 0.0
        self._lock = threading.Lock()

    def get(self) -> str:
        with self._lock:
            if self._token and time.monotonic() - self._fetched < self.REUSE_SECONDS:
                return self._token
            self._token = self._call("get_access_token")
            self._fetched = time.monotonic()
            return self._token

    def refresh(self, stale: str) -> str:
        with self._lock:
            self._token = self._call("force_refresh", stale)
            self._fetched = time.monotonic()
            return self._token

    def _call(self, name: str, *args: str) -> str:
        # The token service raises the sync vocabulary itself: nothing to translate here.
        with self.app.app_context():
            return getattr(token_service, name)(self.realm, *args)


def request_observers() -> tuple[RequestObserver, ...]:
    """Who hears of every request to Intuit (each observer must be cheap and never raise on purpose)."""
    return (budget.call_counter(), metrics.request_observed)


def build_client(realm: str) -> QboClient:
    """Return a client for ``realm`` with the configured base URL, limits and retry policy."""
    settings = current_app.config["SETTINGS"]
    app = current_app._get_current_object()
    tokens = VaultTokens(app, realm)
    policy = RetryPolicy(retries=option("QBO_HTTP_RETRIES", int), delay=option("QBO_HTTP_RETRY_DELAY"),
                         backoff=2.0, max_wait=option("QBO_HTTP_MAX_WAIT"))
    return QboClient(settings.qbo_api_base_url, realm, tokens.get, tokens.refresh, limiter=metrics.TimedLimiter(rate_limiter()),
                     policy=policy, timeout=(5.0, option("QBO_HTTP_TIMEOUT")), observers=request_observers())
