"""Hold every tunable of the simulator in one mutable dataclass."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

DEFAULT_REDIRECT_URIS = [
    "http://localhost:3000/v1/oauth/callback/qbo",
    "http://127.0.0.1:3000/v1/oauth/callback/qbo",
]


@dataclass
class SandboxConfig:
    """Configure OAuth, limits, faults, clock and webhooks of one simulator."""

    # OAuth client registration (one app, like a developer-portal key set).
    client_id: str = "sandbox-client-id"
    client_secret: str = "sandbox-client-secret"
    redirect_uris: list[str] = field(default_factory=lambda: list(DEFAULT_REDIRECT_URIS))
    access_token_ttl: int = 3600
    # Intuit documents a rolling 100-day window (its SDK samples show 8,726,400 s = 101 days).
    refresh_token_ttl: int = 100 * 86400
    # Intuit caps every grant at five years from consent (x_refresh_token_hard_expires_in).
    refresh_token_hard_ttl: int = 5 * 365 * 86400
    # Previous refresh token stays usable this long after rotation; 0 = strict single use.
    refresh_grace: float = 86400.0
    rotate_refresh_tokens: bool = True
    # Code lifetime is undocumented by Intuit; 10 minutes is the common OAuth choice.
    code_ttl: int = 600

    # Limits (per realm). Windows are configurable so tests can use short ones.
    rate_limits_enabled: bool = True
    per_minute: int = 500
    minute_window: float = 60.0
    per_second: int = 10
    second_window: float = 1.0
    max_concurrent: int = 10
    batch_per_minute: int = 40
    batch_window: float = 60.0
    batch_max_items: int = 30
    throttle_xml_probability: float = 0.3

    # Behaviour.
    seed: int = 1
    latency: float = 0.0
    clock_offset: float = 0.0
    default_max_results: int = 100
    max_results_cap: int = 1000
    cdc_lookback_days: int = 30
    cdc_max_objects: int = 1000

    # Webhooks.
    webhook_url: str | None = None
    webhook_verifier: str | None = None
    webhook_enabled: bool = True
    webhook_format: str = "legacy"  # "legacy" (eventNotifications) or "cloudevents"
    webhook_batch_delay: float = 0.05
    webhook_retries: int = 2
    webhook_retry_delay: float = 0.2
    webhook_timeout: float = 3.0

    def update(self, **changes: Any) -> None:
        """Apply changes, refusing unknown keys so typos fail loudly."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown config keys: {sorted(unknown)}")
        for key, value in changes.items():
            setattr(self, key, value)

    def public(self) -> dict[str, Any]:
        """Return the config without secrets, for the admin API."""
        data = asdict(self)
        data.pop("client_secret", None)
        data.pop("webhook_verifier", None)
        return data
