"""Entry point: `flask --app wsgi …` and WSGI servers (`gunicorn wsgi:app`)."""
import sys

from dashboard import ConfigError, create_app

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"Configuration error: {exc}")
