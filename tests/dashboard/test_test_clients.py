"""Test clients behave like separate browsers, even while a test holds a database session."""
from __future__ import annotations


def test_one_client_signing_in_does_not_sign_in_another(signed_in, db_session, app):
    assert signed_in.get("/").status_code == 200  # this request caches its operator in ``g``
    stranger = app.test_client()
    response = stranger.get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/sign-in?next=/"


def test_requests_get_their_own_database_session(signed_in, db_session):
    from dashboard.models import Company

    db_session.add(Company(source_id="100", name="Uncommitted"))
    db_session.flush()
    # A request is another connection: it must not see what the test has not committed.
    assert "Uncommitted" not in signed_in.get("/").get_data(as_text=True)
    db_session.commit()
    assert "Uncommitted" in signed_in.get("/").get_data(as_text=True)
