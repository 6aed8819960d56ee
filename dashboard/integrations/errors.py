"""Errors of the integrations edge; messages are for people and never hold a token."""
from __future__ import annotations


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


class ReconnectRequired(Exception):
    """The grant is dead (invalid_grant / revoked / disconnected): a person must connect
    the company again. Syncs stop instead of retrying. The message is for people."""

    def __init__(self, message: str, company_source_id: str | None = None) -> None:
        super().__init__(message)
        self.company_source_id = company_source_id


class TokenRefreshFailed(Exception):
    """A token could not be refreshed for a passing reason (the provider is down, the
    token lock was held too long): retry later. The message is for people."""
