"""The dashboard lists object types from the entity specs, read at each request, not at import."""
from __future__ import annotations

import re

import pytest

from dashboard.extensions import db
from dashboard.models import RunStatus, SyncStatus
from dashboard.services.overview_models import (
    in_words, object_type_label, object_types, object_types_in_words,
)
from dashboard.sync import specs
from tests.dashboard import factories as make
from tests.support.widget import widget_type

HX = {"HX-Request": "true", "HX-Target": "company-status"}


def text(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def widget(app):
    """Register the throw-away widget type after every module is imported."""
    with app.app_context(), widget_type() as model:
        yield model


def test_object_types_are_read_from_the_specs_when_asked(widget):
    assert object_types() == tuple((s.name, s.label) for s in specs.ordered(["customer", "invoice", "widget"]))
    assert ("widget", "Widgets") in object_types()
    assert object_types_in_words() == in_words([label for _name, label in object_types()])
    assert "widgets" in object_types_in_words()
    assert object_type_label("widget") == "Widgets"
    assert object_type_label("gadget") == "gadget"  # a run of a type no spec declares any more


@pytest.mark.parametrize("labels, words", [
    ((), ""), (("Customers",), "customers"), (("Customers", "Invoices"), "customers and invoices"),
    (("Customers", "Invoices", "Payments"), "customers, invoices and payments"),
    (("A", "B", "C", "D"), "a, b, c and d"),
    (("A", "B", "C", "D", "E", "F"), "a, b, c and 3 other object types"),
])
def test_object_types_in_words(labels, words):
    assert in_words(list(labels)) == words


def test_a_spec_registered_later_gets_its_row_count_summary_history_and_retry(signed_in, app, widget):
    with app.app_context():
        make.company("100", "Acme")
        make.healthy("100")
        make.sync_state("100", "widget", SyncStatus.FAILED, error_message="widgets broke", attempts=2,
                        records_synced=3)
        db.session.add_all([widget(company_source_id="100", source_id=str(i), sync_token=0, raw_data={},
                                   is_deleted=False) for i in range(3)])
        db.session.commit()
        make.run("100", object_type="widget", status=RunStatus.FAILED)

    page = text(signed_in.get("/companies/100"))
    # Its spec declares no group: it is listed under "Other types", after the declared groups.
    group = re.search(r'<section class="object-group" aria-labelledby="group-other">.*?</section>', page, re.S)
    assert group and '<h2 id="group-other">Other types</h2>' in group.group(0)
    assert page.index('id="group-other"') > page.index('id="group-banking"')
    row = re.search(r'<tr id="object-widget" class="object object-failed">.*?</tr>', group.group(0), re.S)
    assert row and '<th scope="row">Widgets</th>' in row.group(0)
    assert '<td class="num">3</td>' in row.group(0) and "widgets broke" in row.group(0)
    assert 'name="object_type" value="widget"' in row.group(0) and "Retry widgets" in row.group(0)
    assert "Incremental · widgets" in page  # the run history names it too

    listing = text(signed_in.get("/"))
    assert 'title="Failed: Widgets"' in listing and "Widgets: widgets broke" in listing

    retried = signed_in.post("/companies/100/retry", data={"object_type": "widget"},
                             headers={**HX, "X-CSRFToken": signed_in.csrf})
    assert retried.status_code == 200 and "Retry of widgets queued." in text(retried)


def test_texts_that_name_every_object_type_name_a_registered_one(signed_in, app, widget):
    words = in_words([label for _name, label in object_types()])
    assert "widgets" in words
    assert f"start syncing its {words}." in text(signed_in.get("/"))
    with app.app_context():
        make.company("100", "Acme")
    confirm = text(signed_in.get("/companies/100/full-resync"))
    assert f"Every record ({words}) is downloaded again" in confirm
