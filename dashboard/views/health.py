"""``GET /v1/health``: each dependency and its state, fast."""
from flask import Blueprint, current_app, jsonify

from ..services.health import check_all

bp = Blueprint("health", __name__)


@bp.get("/v1/health")
def health():
    checks = check_all(current_app.config["SETTINGS"])
    healthy = all(c["status"] == "up" for c in checks.values())
    body = {"status": "ok" if healthy else "unavailable", "checks": checks}
    if not healthy:
        body["failing"] = sorted(name for name, c in checks.items() if c["status"] != "up")
    return jsonify(body), 200 if healthy else 503
