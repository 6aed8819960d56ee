"""Sign-in and sign-out pages."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_htmx.responses import HTMXResponseClientRedirect
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from ..extensions import htmx
from ..services.operators import authenticate
from .audit import note

bp = Blueprint("auth", __name__)


class SignInForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)],
                           render_kw={"autocomplete": "username", "autofocus": True})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)],
                             render_kw={"autocomplete": "current-password"})


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths: an open redirect would aid phishing."""
    if not target:
        return url_for("companies.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("companies.index")
    return target


def redirect_to_sign_in():
    """Send an anonymous visitor to sign-in and back to where they were.

    An htmx request (a poll after the session expired) gets a client redirect of the
    whole page, never a sign-in form swapped into a fragment.
    """
    if htmx:
        back = htmx.current_url or request.referrer or ""
        parts = urlsplit(back)
        page = (parts.path + (f"?{parts.query}" if parts.query else "")) if parts.path else None
        return HTMXResponseClientRedirect(url_for("auth.sign_in", next=page))
    if request.method == "GET":
        flash("Please sign in to continue.", "info")
        return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
    return redirect(url_for("auth.sign_in"))


@bp.route("/sign-in", methods=["GET", "POST"])
def sign_in():
    if current_user.is_authenticated:
        return redirect(_safe_next(request.args.get("next")))
    form = SignInForm()
    status = 200
    if form.validate_on_submit():
        result = authenticate(form.username.data, form.password.data, request.remote_addr)
        if result.operator is None:
            note("sign_in_failed", actor=form.username.data.strip(), outcome="refused",
                 detail="too many failed sign-ins: throttled" if result.throttled else "wrong username or password")
        if result.throttled:
            minutes = max(1, round(result.retry_after / 60))
            flash(f"Too many failed sign-ins. Try again in about {minutes} minute"
                  f"{'s' if minutes != 1 else ''}.", "error")
            status = 429
        elif result.operator is None:
            flash("Wrong username or password.", "error")
            status = 401
        else:
            login_user(result.operator)
            note("sign_in")
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "POST":
        status = 400
    return render_template("auth/sign_in.html", form=form), status


@bp.post("/sign-out")
def sign_out():
    if current_user.is_authenticated:
        note("sign_out")
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.sign_in"))
