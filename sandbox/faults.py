"""Decide which requests get injected faults, by probability or schedule."""
from __future__ import annotations

import itertools
import random
import threading
from dataclasses import asdict, dataclass
from typing import Any

FAULT_KINDS = ("429", "500", "503", "truncated", "non_json", "slow", "revoke_token")
_ids = itertools.count(1)


@dataclass
class FaultRule:
    """Describe one injected fault.

    Exactly one trigger applies: `nth` (the nth matching request after the rule
    was added), `probability` (each matching request, optionally at most `count`
    times), or `count` alone (the next `count` matching requests).
    """

    kind: str
    realm: str | None = None
    target: str = "api"  # "api" (/v3) or "oauth" (token endpoint)
    probability: float | None = None
    nth: int | None = None
    count: int | None = None
    delay: float = 2.0  # for "slow"
    status: int | None = None  # for "truncated"/"non_json": HTTP status to send (default 200)
    id: int = 0
    seen: int = 0
    fired: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return asdict(self)


class FaultInjector:
    """Hold fault rules and pick the one (if any) that fires for a request."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.lock = threading.Lock()
        self.rules: list[FaultRule] = []

    def add(self, kind: str, **options: Any) -> FaultRule:
        """Add a rule; with no trigger given it fires on the next request only."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        rule = FaultRule(kind=kind, **options)
        if rule.nth is None and rule.probability is None and rule.count is None:
            rule.count = 1
        rule.id = next(_ids)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove all rules."""
        with self.lock:
            self.rules.clear()

    def list(self) -> list[dict[str, Any]]:
        """Describe active rules."""
        with self.lock:
            return [r.to_dict() for r in self.rules]

    def pick(self, realm: str | None, target: str = "api") -> FaultRule | None:
        """Count this request against every matching rule; return the first that fires."""
        chosen = None
        with self.lock:
            for rule in list(self.rules):
                if rule.target != target or (rule.realm is not None and rule.realm != realm):
                    continue
                rule.seen += 1
                if rule.nth is not None:
                    fire = rule.seen == rule.nth
                    done = rule.seen >= rule.nth
                elif rule.probability is not None:
                    fire = self.rng.random() < rule.probability
                    done = False
                else:
                    fire, done = True, False
                if fire and chosen is None:
                    rule.fired += 1
                    chosen = rule
                if rule.count is not None and rule.fired >= rule.count:
                    done = True
                if done:
                    self.rules.remove(rule)
        return chosen
