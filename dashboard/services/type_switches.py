"""Which object types a company syncs: an operator's switch per type, a default for new ones.

A switched-off type keeps its rows and its ``sync_state`` (with ``enabled`` false) and is
left out of every run; switched on again, it carries on where it stood (a type never
backfilled backfills by itself). A type without a ``sync_state`` row yet follows
``SYNC_OBJECT_TYPES``, written down for every type when a company first connects.
"""
from __future__ import annotations

from typing import Iterable, Sequence

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..config import ConfigError
from ..extensions import db
from ..models import SyncState
from ..sync.specs import SPECS, ordered


class UnknownObjectType(ValueError):
    """A name that is no registered object type."""


def check_names(names: Iterable[str]) -> list[str]:
    """Return the names in sync order; raise UnknownObjectType naming the unknown ones and the known."""
    names = [n.strip().lower() for n in names if n.strip()]
    unknown = sorted(set(names) - SPECS.keys())
    if unknown:
        raise UnknownObjectType(f"Unknown object type(s) {', '.join(unknown)}; known: {', '.join(SPECS)}")
    return [spec.name for spec in ordered(names)]


def check_default(names: Sequence[str] | None) -> None:
    """Refuse a ``SYNC_OBJECT_TYPES`` that names an unknown type (at start-up)."""
    try:
        if names is not None:
            check_names(names)
    except UnknownObjectType as exc:
        raise ConfigError(f"SYNC_OBJECT_TYPES: {exc}") from None


def default_types() -> list[str]:
    """Return the types new connections sync (``SYNC_OBJECT_TYPES``; all when unset)."""
    names = current_app.config["SETTINGS"].sync_object_types
    return list(SPECS) if names is None else check_names(names)


def seed_states(session: Session, company_source_id: str) -> None:
    """Write down a new company's switches: every type, on as ``SYNC_OBJECT_TYPES`` says."""
    on = set(default_types())
    session.add_all([SyncState(company_source_id=company_source_id, object_type=name, enabled=name in on)
                     for name in SPECS])


def switches(company_source_id: str) -> dict[str, bool]:
    """Return every registered type with whether the company syncs it, in sync order."""
    stored = dict(db.session.execute(select(SyncState.object_type, SyncState.enabled).where(
        SyncState.company_source_id == company_source_id)).all())
    on = set(default_types())
    return {name: stored.get(name, name in on) for name in SPECS}


def enabled_types(company_source_id: str, wanted: Sequence[str] | None = None) -> list[str]:
    """Return the types to sync, in sync order: ``wanted`` (all when None) less those switched off."""
    on = [name for name, enabled in switches(company_source_id).items() if enabled]
    return on if wanted is None else [name for name in on if name in set(wanted)]


def set_enabled(company_source_id: str, object_type: str, enabled: bool) -> SyncState:
    """Switch a type on or off for a company (committed); UnknownObjectType for a bad name."""
    (name,) = check_names([object_type])
    state = db.session.execute(select(SyncState).where(
        SyncState.company_source_id == company_source_id, SyncState.object_type == name)).scalar_one_or_none()
    if state is None:
        state = SyncState(company_source_id=company_source_id, object_type=name)
        db.session.add(state)
    state.enabled = enabled
    db.session.commit()
    return state
