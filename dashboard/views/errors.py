"""Error pages a person can act on (JSON for API paths)."""
from __future__ import annotations

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

HINTS = {
    400: "The request was not understood. Go back, reload the page and try again.",
    403: "You are not allowed to do that.",
    404: "There is nothing at this address. Check the link, or go back to the companies list.",
    405: "That action is not available here.",
    413: "The request is too large.",
    429: "Too many requests. Wait a moment and try again.",
    500: "Something went wrong on our side. It has been logged; try again in a moment.",
}


def _wants_json() -> bool:
    return request.path.startswith(("/v1/health", "/v1/webhooks"))


def register(app: Flask) -> None:
    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        message = ("Your form expired or was sent from another site, so nothing was changed. "
                   "Reload the page and try again.")
        if _wants_json():
            return jsonify(error="csrf", message=message), 400
        return render_template("error.html", code=400, title="Form expired", message=message), 400

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        code = exc.code or 500
        message = exc.description if code not in HINTS or exc.description != type(exc).description else HINTS[code]
        if _wants_json():
            return jsonify(error=exc.name, message=message), code
        return render_template("error.html", code=code, title=exc.name, message=message), code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        app.logger.exception("Unhandled error on %s %s", request.method, request.path)
        if _wants_json():
            return jsonify(error="Internal Server Error", message=HINTS[500]), 500
        return render_template("error.html", code=500, title="Internal error", message=HINTS[500]), 500
