"""The pure sync core: entity specs, query building, row mapping, cursor and retry policy.

Standard library only; every decision takes ``now`` (and other inputs) as parameters,
so tests drive it with plain values.
"""

from . import objects  # noqa: F401  registers QuickBooks' object types
