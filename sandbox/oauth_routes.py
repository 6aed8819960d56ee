"""Serve Intuit's OAuth paths: consent page, token, revoke, discovery."""
from __future__ import annotations

import base64
import binascii
import json
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlencode

from flask import Blueprint, Response, current_app, redirect, request

from . import responses as R
from .oauth import OAuthError

if TYPE_CHECKING:
    from .simulator import Simulator

bp = Blueprint("qbo_oauth", __name__)
HARD_EXPIRY_HEADER = "x-include-refresh-token-hard-expires-in"


def _sim() -> "Simulator":
    return current_app.extensions["sandbox"]


def _redirect(uri: str, params: dict[str, str]) -> Response:
    sep = "&" if "?" in uri else "?"
    return redirect(uri + sep + urlencode(params), code=302)


def _error_page(message: str, status: int = 400) -> Response:
    # Never redirect to an unregistered URI (open-redirect protection); show a page instead.
    html = (f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Connection error</title></head>"
            f"<body><main><h1>We couldn't connect your app</h1><p role=\"alert\">{escape(message)}</p>"
            f"</main></body></html>")
    return Response(html, status=status, content_type="text/html;charset=utf-8")


_STYLE = ("body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
          "fieldset{border:1px solid #8d9096;border-radius:6px;padding:1rem}label{display:block;padding:.4rem 0}"
          "button{font-size:1rem;padding:.5rem 1.2rem;margin:1rem .5rem 0 0;border-radius:4px;border:1px solid #2ca01c}"
          "button[value=connect]{background:#2ca01c;color:#fff}button:focus{outline:3px solid #0077c5}"
          ".hint{color:#393a3d;font-size:.9rem}")


@bp.route("/connect/oauth2", methods=["GET", "POST"])
def authorize() -> Response:
    """Show the consent screen (GET) and redirect with a code or access_denied (POST)."""
    sim = _sim()
    src = request.values
    client_id, redirect_uri = src.get("client_id", ""), src.get("redirect_uri", "")
    state, scope, response_type = src.get("state", ""), src.get("scope", ""), src.get("response_type", "")
    if client_id != sim.config.client_id:
        return _error_page("Unknown client_id.")
    if redirect_uri not in sim.config.redirect_uris:
        return _error_page("The redirect_uri does not match any URI registered for this app.")
    if not state:
        return _error_page("The state parameter is required.")
    if response_type != "code":
        return _redirect(redirect_uri, {"error": "unsupported_response_type", "state": state})
    if not scope.strip():
        return _redirect(redirect_uri, {"error": "invalid_scope", "state": state})
    if request.method == "POST":
        if src.get("action") != "connect":
            return _redirect(redirect_uri, {"error": "access_denied", "state": state})
        realm = src.get("realmId", "")
        if realm not in sim.companies:
            return _error_page("Choose a company to connect.")
        code = sim.oauth.issue_code(client_id, redirect_uri, realm, scope)
        return _redirect(redirect_uri, {"code": code, "state": state, "realmId": realm})
    companies = sim.company_list()
    options = "".join(
        f'<label><input type="radio" name="realmId" value="{escape(c["realmId"])}"'
        f'{" checked" if i == 0 else ""}> {escape(c["name"])} <span class="hint">(Company ID {escape(c["realmId"])})'
        f"</span></label>" for i, c in enumerate(companies))
    hidden = "".join(f'<input type="hidden" name="{k}" value="{escape(v)}">' for k, v in
                     (("client_id", client_id), ("redirect_uri", redirect_uri), ("state", state),
                      ("scope", scope), ("response_type", response_type)))
    html = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Connect to QuickBooks (sandbox)</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>Connect your app to QuickBooks</h1>"
            f'<p>The app <strong>{escape(client_id)}</strong> wants to access your QuickBooks company data '
            f"(scope: {escape(scope)}).</p>"
            f'<form method="post" action="/connect/oauth2">{hidden}'
            f'<fieldset><legend>Choose a company</legend>{options}</fieldset>'
            f'<button type="submit" name="action" value="connect">Connect</button>'
            f'<button type="submit" name="action" value="cancel">Cancel</button>'
            f'</form><p class="hint">This is the local Intuit simulator; no Intuit account is used.</p>'
            f"</main></body></html>")
    resp = Response(html, content_type="text/html;charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache, no-store"
    return resp


def _client_credentials() -> tuple[str | None, str | None]:
    """Read client credentials from HTTP Basic, falling back to the form body."""
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        cid, sep, secret = raw.partition(":")
        if not sep:
            return None, None
        return unquote(cid), unquote(secret)
    return request.form.get("client_id"), request.form.get("client_secret")


def _oauth_json(body: dict, status: int = 200) -> Response:
    resp = Response(json.dumps(body), status=status, content_type="application/json;charset=utf-8")
    resp.headers["Cache-Control"] = "no-cache, no-store"
    resp.headers["Pragma"] = "no-cache"
    return resp


@bp.route("/oauth2/v1/tokens/bearer", methods=["POST"])
def token() -> Response:
    """Exchange a code or refresh token for tokens."""
    sim = _sim()
    rule = sim.faults.pick(None, "oauth")
    if rule is not None:
        if rule.kind == "slow":
            import time
            time.sleep(rule.delay)
        elif rule.kind == "503":
            return R.unavailable()
        elif rule.kind in ("500", "429", "truncated", "non_json"):
            return _oauth_json({"error": "server_error"}, 500 if rule.kind != "429" else 429)
    try:
        client_id = sim.oauth.check_client(*_client_credentials())
        grant_type = request.form.get("grant_type")
        if grant_type == "authorization_code":
            grant, access = sim.oauth.exchange_code(client_id, request.form.get("code"),
                                                    request.form.get("redirect_uri"))
        elif grant_type == "refresh_token":
            grant, access = sim.oauth.refresh(client_id, request.form.get("refresh_token"))
        elif not grant_type:
            raise OAuthError("invalid_request")
        else:
            raise OAuthError("unsupported_grant_type")
    except OAuthError as exc:
        return _oauth_json(exc.body(), exc.status)
    asks_hard_expiry = request.headers.get(HARD_EXPIRY_HEADER, "").strip().lower() == "true"
    return _oauth_json(sim.oauth.token_response(grant, access, include_hard_expiry=asks_hard_expiry))


@bp.route("/v2/oauth2/tokens/revoke", methods=["POST"])
def revoke() -> Response:
    """Revoke the grant owning a refresh or access token."""
    sim = _sim()
    try:
        sim.oauth.check_client(*_client_credentials())
    except OAuthError as exc:
        return _oauth_json(exc.body(), exc.status)
    body = request.get_json(silent=True, force=True) or {}
    tok = body.get("token") if isinstance(body, dict) else None
    tok = tok or request.form.get("token")
    if not tok:
        return _oauth_json({"error": "invalid_request"}, 400)
    # Intuit answers 200 whether or not the token was still live (idempotent disconnect) [I].
    sim.oauth.revoke_token(tok)
    return Response(b"", status=200, content_type="application/json;charset=utf-8")


@bp.route("/.well-known/openid_sandbox_configuration")
@bp.route("/.well-known/openid_configuration")
def discovery() -> Response:
    """Serve a discovery document pointing at this host."""
    base = request.host_url.rstrip("/")
    return _oauth_json({
        "issuer": "https://oauth.platform.intuit.com/op/v1",
        "authorization_endpoint": f"{base}/connect/oauth2",
        "token_endpoint": f"{base}/oauth2/v1/tokens/bearer",
        "userinfo_endpoint": f"{base}/v1/openid_connect/userinfo",
        "revocation_endpoint": f"{base}/v2/oauth2/tokens/revoke",
        "jwks_uri": f"{base}/op/v1/jwks",
        "response_types_supported": ["code"], "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "email", "profile", "address", "phone"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
    })
