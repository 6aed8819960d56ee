"""Log lines: readable text (default) or one JSON object per line, with the sync's context.

The runner and the engine say what they work on (``bound(realm=…, run_id=…)``); every
line logged meanwhile, in that thread or in a thread started with a copy of its context,
carries it: the realm, the run id, the object type and, where a record brings it (the
Intuit client's errors), Intuit's ``intuit_tid``. Both formats pass each line through
``redact`` last, so a token, an authorization code or a secret that some library puts
into a message (an access-log line of the OAuth callback, an Authorization header)
never reaches the log. Standard library only.
"""
from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import re
import sys
from datetime import datetime, timezone
from typing import Any, Iterator

# What the sync is working on; set by the runner (realm, run) and the engine (object type).
CONTEXT: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"log_{name}", default=None) for name in ("realm", "run_id", "object_type")
}
# Extra fields a log call may pass (``extra={"intuit_tid": …}``), shown when present.
FIELDS = ("realm", "run_id", "object_type", "intuit_tid")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

REDACTED = "[redacted]"
_SECRETS = [
    # An Authorization header or any "Bearer <token>" in a message.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9\-._~+/]+=*"), r"\1 " + REDACTED),
    # Query strings and forms: the OAuth callback's code and state, tokens, secrets.
    (re.compile(r"(?i)\b(code|state|access_token|refresh_token|id_token|client_secret|password|token)="
                r"[^&\s\"']+"), r"\1=" + REDACTED),
    # JSON bodies (a token endpoint's answer).
    (re.compile(r"(?i)\"(access_token|refresh_token|id_token|client_secret|password)\"\s*:\s*\"[^\"]*\""),
     r'"\1": "' + REDACTED + '"'),
    # Fernet ciphertexts (the stored tokens): opaque, but nothing to log either.
    (re.compile(r"gAAAAA[A-Za-z0-9_\-]{20,}=*"), REDACTED),
]


def redact(text: str) -> str:
    """Return ``text`` with tokens, codes and secrets replaced by ``[redacted]``."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


@contextlib.contextmanager
def bound(**fields: Any) -> Iterator[None]:
    """Tag every line logged inside the block (this thread, and threads given its context)."""
    tokens = [(CONTEXT[name], CONTEXT[name].set(value)) for name, value in fields.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def context_of(record: logging.LogRecord) -> dict[str, Any]:
    """Return the record's context fields that have a value (its own extras win)."""
    found = {}
    for name in FIELDS:
        value = getattr(record, name, None)
        if value is None and name in CONTEXT:
            value = CONTEXT[name].get()
        if value is not None:
            found[name] = value
    return found


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [realm=… run_id=…]``: one line a person reads."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = context_of(record)
        if context:
            head, sep, tail = line.partition("\n")  # the context ends the first line, not a traceback
            line = head + " [" + " ".join(f"{k}={v}" for k, v in context.items()) + "]" + sep + tail
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context_of(record),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # Redacted after encoding: a secret cannot slip through by being escaped differently.
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def formatter(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise ValueError(f"unknown log format {log_format!r}; expected one of {', '.join(FORMATS)}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


class _OurHandler(logging.StreamHandler):
    """The root handler this module installs (recognised, so it is installed once)."""


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's lines to stderr in ``log_format``; calling again switches format.

    Like ``logging.basicConfig``, leave a root logger that someone else gave handlers
    (a server's logging config, pytest's capture) as it is.
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _OurHandler)), None)
    if handler is None:
        if root.handlers:
            return
        handler = _OurHandler(sys.stderr)
        root.addHandler(handler)
    handler.setFormatter(formatter(log_format))
    root.setLevel(level)
