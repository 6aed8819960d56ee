"""QuickBooks Online: the first integration."""
from .oauth import QuickBooksIntegration

__all__ = ["QuickBooksIntegration"]
