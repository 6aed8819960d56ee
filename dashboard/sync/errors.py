"""The sync vocabulary of failures: each kind has its own message and retry decision."""
from __future__ import annotations


class SyncError(Exception):
    """A sync step failed; ``kind`` names the cause, ``retryable`` says whether to try again."""

    kind = "sync"
    retryable = True

    def __init__(self, message: str, *, intuit_tid: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.intuit_tid = intuit_tid
        self.retry_after = retry_after

    def __str__(self) -> str:
        return f"{self.message} (intuit_tid {self.intuit_tid})" if self.intuit_tid else self.message


class ReconnectRequired(SyncError):
    """The grant is dead (refused, revoked, disconnected, unreadable): a person must connect
    the company again; retrying cannot help. ``company_source_id`` names it when known."""

    kind = "reconnect_required"
    retryable = False

    def __init__(self, message: str, company_source_id: str | None = None, *, intuit_tid: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message, intuit_tid=intuit_tid, retry_after=retry_after)
        self.company_source_id = company_source_id


class TokenRejected(ReconnectRequired):
    """Intuit refused the access token (401); one refresh may still save the request."""


class Throttled(SyncError):
    """Intuit answered 429: never retried in the request (a thread would sleep); the run waits."""

    kind = "throttled"


class RunDeferred(SyncError):
    """The run was put back in the queue to start again after ``delay`` seconds (Intuit
    asked us to slow down); not a failure, and no retry is spent on it."""

    kind = "deferred"

    def __init__(self, message: str, delay: float) -> None:
        super().__init__(message)
        self.delay = delay


class IntuitServerError(SyncError):
    """Intuit failed (5xx, timeout, broken body) again after the request's one retry."""

    kind = "intuit_server"


class RequestRejected(SyncError):
    """Intuit rejected our request as invalid (4xx): a bug or an unsupported query, not transient."""

    kind = "request_rejected"
    retryable = False


class BadData(SyncError):
    """Intuit sent a record we cannot store; fail fast, keep the pages already committed."""

    kind = "bad_data"
    retryable = False


class DatabaseFailure(SyncError):
    """Our database failed while writing a page; the page is rolled back and retried later."""

    kind = "database"


class RunCancelled(SyncError):
    """The run was cancelled (company disconnected) or its lease was taken over."""

    kind = "cancelled"
    retryable = False


class TokenUnavailable(SyncError):
    """No access token could be had right now (the token endpoint is down); try later."""

    kind = "token_unavailable"


# Ledger-neutral names for the errors above whose names say Intuit: a second ledger (Xero)
# raises the same kinds, so the engine's handling (retry, defer, reconnect) is shared.
LedgerServerError = IntuitServerError
