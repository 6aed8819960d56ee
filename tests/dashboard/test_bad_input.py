"""No input makes a page fail: every route, swept with values the database refuses.

PostgreSQL refuses a NUL character in a string, so before the app-wide check a NUL in the
companies search (``/?q=%00``) answered 500 on that backend only; the sweep runs on both.
"""
from __future__ import annotations

import re
from urllib.parse import quote

import pytest

from tests.conftest import csrf_token_from
from tests.dashboard import factories as make

# Percent-encoded as a client sends them: a NUL inside a value, and bytes that are not
# UTF-8 (an encoded surrogate, then a lone 0xFF), which werkzeug replaces or leaves escaped.
NUL = "a%00b"
NOT_UTF8 = "%ED%A0%80%FF"
BAD = (NUL, NOT_UTF8)
REALM = "100"
# A usable value for every URL variable and for every field a view or form reads, plus a
# field no view reads. Each request puts a NUL in one of them (its value, or its name), or
# bytes that are not UTF-8 in all of them at once.
GOOD_URL_VALUES = {"realm": REALM, "integration": "qbo", "filename": "css/app.css"}
GOOD_FIELDS = {"q": "acme", "state": "connected", "page": "1", "next": "/", "realm": REALM,
               "object_type": "customer", "confirm": "yes", "step": "confirm", "username": "alice",
               "password": "wrong password", "code": "abc", "realmId": REALM, "error": "access_denied",
               "other": "x"}
URL_VARIABLE = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def _encode(fields: dict[str, str]) -> str:
    """Percent-encode ``fields``; names and values that are already encoded (BAD) stay as they are."""
    def part(text: str) -> str:
        return text if text in BAD else quote(text, safe="")
    return "&".join(f"{part(k)}={part(v)}" for k, v in fields.items())


def _paths(rule) -> list[str]:
    """The rule's path with usable URL values, then with each variable bad in turn."""
    names = URL_VARIABLE.findall(rule.rule)

    def build(values: dict[str, str]) -> str:
        return URL_VARIABLE.sub(lambda m: values[m.group(1)], rule.rule)

    good = {n: quote(GOOD_URL_VALUES.get(n, REALM), safe="/") for n in names}
    return [build(good)] + [build({**good, name: bad}) for name in names for bad in BAD]


def _field_variants(csrf: str | None) -> list[str]:
    """Encoded field sets: a NUL in each field's value, bad field names, then every value not UTF-8."""
    base = {**GOOD_FIELDS, **({"csrf_token": csrf} if csrf else {})}
    variants = [{**base, name: NUL} for name in base]
    variants += [{**base, bad: "x"} for bad in BAD]
    variants.append({**{name: NOT_UTF8 for name in GOOD_FIELDS}, **({"csrf_token": csrf} if csrf else {})})
    return [_encode(v) for v in variants]


def _requests(app, csrf: str):
    """Yield (method, path, query string, form body) for every route of the app."""
    # Signing out last, so the sweep stays signed in even if a request got through.
    rules = sorted(app.url_map.iter_rules(), key=lambda r: r.endpoint == "auth.sign_out")
    for rule in rules:
        for method in sorted(rule.methods & {"GET", "POST"}):
            paths = _paths(rule)
            form = _encode({"csrf_token": csrf}) if method == "POST" else ""
            for path in paths[1:]:
                yield method, path, "", form
            for fields in _field_variants(None):
                yield method, paths[0], fields, form
            if method == "POST":
                for fields in _field_variants(csrf):
                    yield method, paths[0], "", fields


@pytest.fixture
def acme(app):
    with app.app_context():
        make.company(REALM, "Acme")
        make.healthy(REALM)


def test_no_route_fails_on_a_value_the_database_refuses(signed_in, app, acme):
    baseline = signed_in.get("/v1/health").status_code  # 503 is its answer when a dependency is down
    failures, answered = [], 0
    for method, path, query, form in _requests(app, signed_in.csrf):
        response = signed_in.open(path, method=method, query_string=query, data=form,
                                  content_type="application/x-www-form-urlencoded" if form else None)
        response.close()
        answered += 1
        expected_5xx = path == "/v1/health" and response.status_code == baseline
        if response.status_code >= 500 and not expected_5xx:
            failures.append(f"{method} {path}?{query} [{form}] -> {response.status_code}")
    assert answered > 400  # every route, every field: nothing skipped by mistake
    assert failures == [], "\n".join(failures[:20])


@pytest.mark.parametrize("url", ["/?q=%00", "/?q=a%00b", "/?state=%00", "/?page=%00", "/?%00=1",
                                 "/companies/%00", "/companies/100%00/status", "/v1/oauth/callback/qbo?state=%00"])
def test_a_nul_character_gets_a_clear_error_page(signed_in, acme, url):
    response = signed_in.get(url)
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "cannot contain a NUL character" in html and "Back to the dashboard" in html


def test_a_nul_character_in_a_form_changes_nothing(signed_in, app, acme):
    response = signed_in.post("/companies/100/retry", data={"csrf_token": signed_in.csrf,
                                                            "object_type": "customer\x00"})
    assert response.status_code == 400 and "cannot contain a NUL character" in response.get_data(as_text=True)
    htmx = signed_in.post("/sign-in?next=/%00", headers={"HX-Request": "true", "X-CSRFToken": signed_in.csrf})
    assert htmx.status_code == 400


def test_a_nul_character_before_sign_in_gets_the_same_answer(client, operator):
    token = csrf_token_from(client.get("/sign-in").get_data(as_text=True))
    response = client.post("/sign-in", data={"username": "alice\x00", "password": "x", "csrf_token": token})
    assert response.status_code == 400
    assert "cannot contain a NUL character" in response.get_data(as_text=True)


def test_a_webhook_with_a_nul_in_its_query_gets_json(client):
    response = client.post("/v1/webhooks/qbo?x=%00", data=b"{}", content_type="application/json")
    assert response.status_code == 400 and response.json["error"] == "Bad Request"
    assert "NUL" in response.json["message"]


def test_plain_inputs_still_work(signed_in, acme):
    assert signed_in.get("/?q=Acme%20%25_%5C'").status_code == 200
    assert "Acme" in signed_in.get("/?q=acme").get_data(as_text=True)
