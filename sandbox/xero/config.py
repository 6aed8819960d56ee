"""Hold every tunable of the Xero simulator in one mutable dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..config import SandboxConfig

DEFAULT_REDIRECT_URIS = [
    "http://localhost:3000/v1/oauth/callback/xero",
    "http://127.0.0.1:3000/v1/oauth/callback/xero",
]


@dataclass
class XeroConfig:
    """Configure the Xero app registration, tokens, limits, paging and webhooks."""

    # The app as registered in Xero's developer portal.
    client_id: str = "xero-sandbox-client-id"
    client_secret: str = "xero-sandbox-client-secret"
    app_name: str = "Xero sandbox app"
    redirect_uris: list[str] = field(default_factory=lambda: list(DEFAULT_REDIRECT_URIS))
    # Apps created on or after 2 March 2026 get granular scopes only; broad ones fail at authorize.
    granular_scopes_only: bool = True
    access_token_ttl: int = 1800
    refresh_token_ttl: int = 60 * 86400  # unused refresh tokens expire after 60 days
    refresh_grace: float = 1800.0  # a rotated-away refresh token may be retried for 30 minutes
    code_ttl: int = 300  # undocumented by Xero; short and single-use [I]

    # Limits: per tenant (per app) and per app. Windows are fixed and start at a tenant's first call.
    rate_limits_enabled: bool = True
    per_minute: int = 60
    minute_window: float = 60.0
    per_day: int = 5000  # 1,000 on Xero's Starter tier
    day_window: float = 86400.0
    max_concurrent: int = 5
    app_per_minute: int = 10000

    # API behaviour.
    seed: int = 1
    latency: float = 0.0
    clock_offset: float = 0.0
    default_page_size: int = 100
    max_page_size: int = 1000
    max_ids: int = 50  # longer IDs= lists answer 404 (a URL-length limit at Xero)

    # Webhooks.
    webhook_url: str | None = None
    webhook_key: str | None = None
    webhook_require_intent: bool = True  # deliveries start only after intent to receive passed
    webhook_batch_delay: float = 0.05
    webhook_retries: int = 2
    webhook_retry_delay: float = 0.2
    webhook_timeout: float = 3.0

    # The same strict update as the Intuit simulator's: unknown keys fail loudly.
    update = SandboxConfig.update

    def public(self) -> dict[str, Any]:
        """Return the config without secrets, for the admin API."""
        data = asdict(self)
        data.pop("client_secret", None)
        data.pop("webhook_key", None)
        return data
