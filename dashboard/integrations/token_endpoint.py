"""Talking to an OAuth 2.0 token endpoint, whichever the provider: error mapping and token sets.

Shared by every integration's ``oauth.py``: Intuit and Xero answer in RFC 6749's words
(``invalid_grant`` for a dead code or refresh token), so one mapping serves both, with
the provider's name in the messages people read.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, TypeVar

import requests
from authlib.integrations.base_client import OAuthError

from .base import TokenSet
from .errors import InvalidGrant, ProviderRejected, ProviderUnavailable

T = TypeVar("T")


def call(provider: str, what: str, send: Callable[[], T]) -> T:
    """Send one request to ``provider``'s OAuth server and map its failures to our errors."""
    try:
        return send()
    except OAuthError as exc:
        if exc.error == "invalid_grant":
            raise InvalidGrant(f"{provider} refused the {what}: invalid_grant.") from None
        if exc.error in ("server_error", "temporarily_unavailable"):
            raise ProviderUnavailable(f"{provider}'s token endpoint failed the {what} ({exc.error}).") from None
        raise ProviderRejected(f"{provider} refused the {what}: {exc.error}.") from None
    except requests.HTTPError as exc:
        status = exc.response.status_code if exc.response is not None else 0
        if status >= 500 or status == 429:
            raise ProviderUnavailable(f"{provider}'s token endpoint answered HTTP {status} to the {what}.") from None
        raise ProviderRejected(f"{provider}'s token endpoint answered HTTP {status} to the {what}.") from None
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise ProviderUnavailable(f"{provider}'s OAuth server did not answer the {what} "
                                  f"({type(exc).__name__}).") from None
    except (requests.RequestException, ValueError) as exc:
        raise ProviderUnavailable(f"{provider}'s OAuth server sent an unreadable answer to the {what} "
                                  f"({type(exc).__name__}).") from None


def _seconds(value: Any) -> int | None:
    """A lifetime in seconds from a token answer (bools are not numbers here)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return int(value)
    return None


def token_set(provider: str, answer: Mapping[str, Any], now: datetime, previous_refresh_token: str | None,
              refresh_lifetime: timedelta | None = None) -> TokenSet:
    """Check a token answer and turn its relative lifetimes into UTC instants.

    ``now`` is taken before the request was sent, so the expiry errs early. A provider that
    does not say how long its refresh token lives (Xero) passes its documented
    ``refresh_lifetime``; an answer's own ``x_refresh_token_expires_in`` (Intuit) wins.
    """
    access = answer.get("access_token")
    refresh = answer.get("refresh_token") or previous_refresh_token
    expires_in = answer.get("expires_in")
    if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
        raise ProviderRejected(f"{provider}'s token answer lacks an access or refresh token.")
    if not isinstance(expires_in, (int, float)) or isinstance(expires_in, bool) or expires_in <= 0:
        raise ProviderRejected(f"{provider}'s token answer lacks a valid expires_in.")
    refresh_in = _seconds(answer.get("x_refresh_token_expires_in"))
    hard_in = _seconds(answer.get("x_refresh_token_hard_expires_in"))
    if refresh_in == 0:
        refresh_in = None
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        access_token_expires_at=now + timedelta(seconds=int(expires_in)),
        refresh_token_expires_at=(now + timedelta(seconds=refresh_in) if refresh_in is not None
                                  else (now + refresh_lifetime if refresh_lifetime else None)),
        refresh_token_hard_expires_at=now + timedelta(seconds=hard_in) if hard_in is not None else None,
    )
