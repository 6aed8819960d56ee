"""The abstract OAuth integration and the token set it hands back.

An integration is the edge to one provider's OAuth server: it builds the authorize URL,
exchanges a code, refreshes and revokes tokens, and opens an API session. It knows
nothing of Flask requests or the database; services store what it returns.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Mapping

import requests


@dataclass(frozen=True)
class TokenSet:
    """Tokens from one token-endpoint answer, with absolute UTC expiry times."""

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    access_token_expires_at: datetime
    refresh_token_expires_at: datetime | None = None
    # The grant's hard end (Intuit: 5 years after consent, whatever the refreshes); None
    # when the provider did not say.
    refresh_token_hard_expires_at: datetime | None = None

    def __repr__(self) -> str:  # tokens never reach logs through a repr
        return (f"TokenSet(access_token_expires_at={self.access_token_expires_at.isoformat()}, "
                f"refresh_token_expires_at="
                f"{self.refresh_token_expires_at.isoformat() if self.refresh_token_expires_at else None}, "
                f"refresh_token_hard_expires_at="
                f"{self.refresh_token_hard_expires_at.isoformat() if self.refresh_token_hard_expires_at else None})")


@dataclass(frozen=True)
class OAuthClientConfig:
    """Where the provider lives and who we are to it."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str
    authorize_url: str
    token_url: str
    revoke_url: str
    api_base_url: str
    # Shorter than every lock timeout around a refresh, so a hung provider cannot
    # outlive the lock that protects its refresh token.
    http_timeout: float = 10.0


class OAuthIntegration(ABC):
    """One OAuth 2.0 authorization-code provider (QuickBooks Online, Xero, ...)."""

    name: ClassVar[str]
    display_name: ClassVar[str]
    scope: ClassVar[str]

    def __init__(self, config: OAuthClientConfig) -> None:
        self.config = config

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: Any) -> "OAuthIntegration":
        """Build the integration from the app's typed settings."""

    @abstractmethod
    def authorization_url(self, state: str) -> str:
        """Return the provider URL that asks the user for consent, carrying ``state``."""

    @abstractmethod
    def account_id_from_callback(self, args: Mapping[str, str]) -> str | None:
        """Return the provider's account id (QBO: the realm) from the callback, if valid."""

    @abstractmethod
    def exchange_code(self, code: str, now: datetime) -> TokenSet:
        """Redeem an authorization code (exactly once) for tokens."""

    @abstractmethod
    def refresh(self, refresh_token: str, now: datetime) -> TokenSet:
        """Use a refresh token; the answer may carry a rotated refresh token."""

    @abstractmethod
    def revoke(self, token: str) -> None:
        """Revoke the grant that owns this (refresh or access) token."""

    @abstractmethod
    def api_session(self, access_token: str) -> requests.Session:
        """Return an HTTP session that sends ``access_token`` to the provider's API."""

    def account_name(self, account_id: str, access_token: str) -> str | None:
        """Check that a just-issued ``access_token`` opens ``account_id`` and return the
        account's display name (None when it cannot be read now).

        Raise AccountMismatch when the provider refuses the token for that account. The
        default trusts the callback and knows no name: providers override it.
        """
        return None
