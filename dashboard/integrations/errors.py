"""Errors of the integrations edge; messages are for people and never hold a token.

A dead grant is the core's ``ReconnectRequired`` (``dashboard.sync.errors``); errors that a
sync must act on subclass the core's vocabulary, so no layer translates them.
"""
from __future__ import annotations

from ..sync.errors import TokenUnavailable


class IntegrationError(Exception):
    """Something went wrong talking to an integration's OAuth server."""


class UnknownIntegration(IntegrationError, LookupError):
    """No integration is registered under this name."""

    def __init__(self, name: str) -> None:
        super().__init__(f"There is no integration called {name!r}.")
        self.name = name


class InvalidGrant(IntegrationError):
    """The provider answered ``invalid_grant``: the code or refresh token is dead."""


class ProviderUnavailable(IntegrationError):
    """The provider could not be reached or answered with a server error; try later."""


class ProviderRejected(IntegrationError):
    """The provider refused the request for a reason retrying cannot fix
    (``invalid_client``, a malformed answer): an operator must look at the configuration."""


class AccountMismatch(IntegrationError):
    """The new token does not open the account the callback names: the account id
    (QBO: ``realmId``) was tampered with or mixed up. Nothing may be stored."""


class TokenRefreshFailed(TokenUnavailable):
    """A token could not be refreshed for a passing reason (the provider is down, the
    token lock was held too long): retry later. The message is for people."""
