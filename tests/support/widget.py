"""A throw-away object type, "widget" (it links to customers): its spec, model and table only.

What a migration would do, the context manager does: the table is created in the test
database and dropped after, and the model and spec are removed, leaving nothing behind.
"""
from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Iterator, Mapping, Optional

from flask import current_app
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, registry

from dashboard.extensions import db
from dashboard.models import Base, SourceRecordMixin
from dashboard.sync.specs import EntitySpec, Row, registered, source_fields


def widget_row(obj: Mapping[str, Any]) -> Row:
    """Map a QuickBooks-shaped Widget to a ``widget`` row (its customer is linked by CustomerRef)."""
    row = source_fields(obj, "Widget")
    ref = obj.get("CustomerRef") or {}
    row.update(name=obj.get("Name"), customer_source_id=ref.get("value"))
    return row


WIDGET = EntitySpec(name="widget", entity="Widget", table="widget", to_row=widget_row,
                    links=(("customer_source_id", "customer_id", "customer"),))


@contextlib.contextmanager
def widget_type() -> Iterator[type]:
    """Register the widget type (inside an app context); yield its model."""
    # Its own registry on the application's metadata, so the mapping can be disposed of
    # afterwards (a class left on Base's registry would clash with a second definition).
    models = registry(metadata=Base.metadata)

    @models.mapped
    class Widget(SourceRecordMixin):
        __tablename__ = "widget"
        __table_args__ = (UniqueConstraint("company_source_id", "source_id"),)

        company_source_id: Mapped[str] = mapped_column(
            ForeignKey("company.source_id", ondelete="CASCADE"), nullable=False)
        customer_id: Mapped[Optional[int]] = mapped_column(ForeignKey("customer.id", ondelete="SET NULL"))
        customer_source_id: Mapped[Optional[str]] = mapped_column(String(64))
        name: Mapped[Optional[str]] = mapped_column(String(200))

    table = Widget.__table__
    table.create(db.engine)
    # New connections sync widgets too (the test settings name the types they sync).
    settings = current_app.config["SETTINGS"]
    if settings.sync_object_types is not None:
        current_app.config["SETTINGS"] = dataclasses.replace(
            settings, sync_object_types=(*settings.sync_object_types, "widget"))
    try:
        with registered(WIDGET):
            yield Widget
    finally:
        current_app.config["SETTINGS"] = settings
        db.session.remove()
        table.drop(db.engine)
        Base.metadata.remove(table)
        models.dispose()
