"""The integration registry: every OAuth integration joins it when the app starts.

Adding a provider means one package that subclasses ``OAuthIntegration`` and calls
``register`` on import, plus its name in ``BUILTIN``.
"""
from __future__ import annotations

import importlib
from typing import Any

from .base import OAuthClientConfig, OAuthIntegration, TokenSet
from .errors import UnknownIntegration

__all__ = ["OAuthClientConfig", "OAuthIntegration", "TokenSet", "UnknownIntegration", "register",
           "get_integration", "names", "init_app"]

# Packages under dashboard.integrations that hold an integration.
BUILTIN = ("qbo",)

_registry: dict[str, type[OAuthIntegration]] = {}


def register(cls: type[OAuthIntegration]) -> type[OAuthIntegration]:
    """Add an integration class under its ``name`` (usable as a class decorator)."""
    existing = _registry.get(cls.name)
    if existing is not None and existing is not cls:
        raise ValueError(f"integration name {cls.name!r} is taken by {existing.__qualname__}")
    _registry[cls.name] = cls
    return cls


def load_builtin() -> None:
    """Import the built-in integrations so they register themselves."""
    for package in BUILTIN:
        importlib.import_module(f"{__name__}.{package}")


def names() -> list[str]:
    """Return the registered integration names."""
    load_builtin()
    return sorted(_registry)


def get_integration(name: str, settings: Any) -> OAuthIntegration:
    """Build the integration called ``name`` from the settings, or raise UnknownIntegration."""
    load_builtin()
    cls = _registry.get(name)
    if cls is None:
        raise UnknownIntegration(name)
    return cls.from_settings(settings)


def init_app(app: Any) -> None:
    """Load every integration at start-up (a broken one fails the start, not a request)."""
    load_builtin()
    app.extensions["integrations"] = dict(_registry)
