"""Flask commands: ``flask --app wsgi <command>``."""
from __future__ import annotations

import getpass
import sys
from urllib.parse import urlsplit

import click
from flask import Flask, current_app
from flask.cli import with_appcontext
from sqlalchemy import select

from .extensions import db
from .models import Company, ConnectionState, RunStatus
from .services.operators import OperatorError, create_operator as create, set_password
from .services.sync_jobs import SyncRequestError
from .services.sync_foreground import sync_now
from .services import audit, parity, type_switches
from .services.token_keys import rotate_keys as rotate
from .sync.errors import SyncError
from .sync.specs import SPECS, ordered
from .tasks.consumer import run_consumer


def register(app: Flask) -> None:
    app.cli.add_command(create_operator)
    app.cli.add_command(worker)
    app.cli.add_command(sandbox)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(sync_group)
    app.cli.add_command(parity_group)
    app.cli.add_command(alert_group)


def _cli_actor() -> str:
    """Who ran a command: the audit trail's actor for the command line."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no user name for this uid (a bare container)
        return "cli"


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@click.command("create-operator")
@with_appcontext
@click.argument("username")
@click.option("--reset", is_flag=True, help="Set a new password for an existing operator.")
def create_operator(username: str, reset: bool) -> None:
    """Create a dashboard operator (or reset one's password with --reset).

    The password is prompted for on a terminal, or read from the first line of standard
    input otherwise (e.g. `echo "$PW" | flask --app wsgi create-operator alice`).
    """
    password = _read_password()
    try:
        (set_password if reset else create)(username, password)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    audit.record("create_operator", _cli_actor(), detail=f"{username} ({'password reset' if reset else 'new'})")
    click.echo(f"Operator {username!r} {'updated' if reset else 'created'}.")


@click.command()
@with_appcontext
@click.option("-w", "--workers", default=4, show_default=True, help="Worker threads.")
@click.option("--no-periodic", is_flag=True,
              help="Do not run the scheduler here (run it on exactly one consumer).")
def worker(workers: int, no_periodic: bool) -> None:
    """Start the Huey consumer that runs syncs (Ctrl-C stops it gracefully)."""
    run_consumer(current_app._get_current_object(), workers, periodic=not no_periodic)


# The demo simulator's records of each type besides customers and invoices: a few thousand
# across the 28 types (and links between them), generated in about a second.
DEMO_BREADTH = 100


@click.command()
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3001, show_default=True, type=int)
@click.option("--seed", default=1, show_default=True, type=int, help="Data generator seed.")
@click.option("--customers", default=3000, show_default=True, type=int, help="Customers per company.")
@click.option("--invoices", default=6000, show_default=True, type=int, help="Invoices per company.")
@click.option("--breadth", default=DEMO_BREADTH, show_default=True, type=click.IntRange(min=0),
              help="Records of each of the other 26 object types per company (0: customers and invoices only).")
def sandbox(host: str, port: int, seed: int, customers: int, invoices: int, breadth: int) -> None:
    """Start the Intuit simulator (OAuth + Accounting API) with two demo companies.

    Each company has customers, invoices and ``--breadth`` records of every other object
    type, so a connected demo company shows data in all 28. It accepts this service's
    redirect URI and posts signed webhooks to this service.
    """
    # Here, not at the top: the service never loads the simulator unless this command runs.
    from sandbox.serve import serve

    settings = current_app.config["SETTINGS"]
    callback = urlsplit(settings.qbo_redirect_uri)
    redirect_uris = sorted({settings.qbo_redirect_uri, "http://localhost:3000/v1/oauth/callback/qbo",
                            "http://127.0.0.1:3000/v1/oauth/callback/qbo"})
    serve(host, port, seed=seed, customers=customers, invoices=invoices, breadth=breadth, redirect_uris=redirect_uris,
          client_id=settings.qbo_client_id, client_secret=settings.qbo_client_secret,
          webhook_url=f"{callback.scheme}://{callback.netloc}/v1/webhooks/qbo",
          webhook_verifier=settings.qbo_webhook_verifier_token or None)


@click.command("rotate-keys")
@with_appcontext
def rotate_keys() -> None:
    """Re-encrypt every stored token with the newest TOKEN_ENCRYPTION_KEYS key.

    Run it after putting a new key first in TOKEN_ENCRYPTION_KEYS (keep the old ones
    after it) on every process; once it reports no unreadable tokens, drop the old keys.
    """
    report = rotate()
    audit.record("rotate_keys", _cli_actor(), outcome="failed" if report.unreadable else "ok",
                 detail=f"{report.tokens_rotated} tokens re-encrypted, {len(report.unreadable or [])} unreadable")
    click.echo(f"Companies checked: {report.companies}; tokens re-encrypted: {report.tokens_rotated}; "
               f"already on the newest key: {report.already_current}; unreadable: {len(report.unreadable or [])}.")
    if report.connected_again:
        click.echo("Connected again (their tokens open with these keys): " + ", ".join(report.connected_again))
    if report.unreadable:
        raise click.ClickException("Tokens of these companies could not be decrypted with any key "
                                   f"(left unchanged): {', '.join(report.unreadable)}")


class ObjectTypes(click.Choice):
    """The registered object types, read when the command runs: a newly registered spec is accepted."""

    def __init__(self) -> None:
        super().__init__(())

    @property  # type: ignore[override]
    def choices(self) -> tuple[str, ...]:
        return tuple(SPECS)

    @choices.setter
    def choices(self, _value: object) -> None:
        pass  # click.Choice assigns its fixed list here; ours is the registry


@click.group("sync")
def sync_group() -> None:
    """Run syncs by hand."""


@sync_group.command("now")
@with_appcontext
@click.option("--company", "realm", default=None, help="Realm id (default: every connected company).")
@click.option("--object", "object_types", type=ObjectTypes(), multiple=True,
              help="An object type; repeat for several (default: all, in dependency order).")
@click.option("--full", is_flag=True, help="Full resync: backfill again from the start.")
@click.option("--no-wait", is_flag=True, help="If a worker is running the company's sync, report it and leave.")
def sync_now_command(realm: str | None, object_types: tuple[str, ...], full: bool, no_wait: bool) -> None:
    """Sync now, in the foreground with progress; exit non-zero on failure.

    A run waiting in the queue is taken over and run here; one a worker is running is
    followed until it ends (or, with --no-wait, reported).
    """
    realms = [realm] if realm else db.session.execute(
        select(Company.source_id).where(Company.connection_state == ConnectionState.CONNECTED)
        .order_by(Company.source_id)).scalars().all()
    if not realms:
        raise click.ClickException("No connected company to sync.")
    failed = 0
    for source_id in realms:
        click.echo(f"Syncing {source_id}{' (full resync)' if full else ''}...")
        audit.record("sync_now", _cli_actor(), company_source_id=source_id,
                     detail=("full resync" if full else "sync") + (f" of {', '.join(object_types)}" if object_types else ""))
        for object_type in _targets(source_id, object_types):
            if not _sync_one(source_id, object_type, full, not no_wait):
                failed += 1
                break
    if failed:
        raise click.ClickException(f"{failed} of {len(realms)} companies failed.")


def _targets(source_id: str, asked: tuple[str, ...]) -> list[str | None]:
    """Return one run for every type the company syncs, or one per type asked for, in sync order."""
    on = type_switches.enabled_types(source_id)
    off = [spec.name for spec in ordered(asked) if spec.name not in on]
    if off:
        click.echo(f"  {source_id}: {', '.join(off)} switched off for this company, not synced "
                   "(switch it on from the company's page)")
    if not asked or set(on) <= set(asked):
        return [None]
    return [spec.name for spec in ordered(asked) if spec.name in on]


def _sync_one(source_id: str, object_type: str | None, full: bool, wait: bool) -> bool:
    """Sync one company (one object type, or all) and report it; return whether it went well."""
    last: dict[str, int] = {}

    def progress(name: str, done: int, total: int | None) -> None:
        if done != last.get(name):
            last[name] = done
            click.echo(f"  {source_id} {name}: {done}" + (f" / {total}" if total else "") + " records")

    try:
        outcome = sync_now(source_id, object_type, full, progress, wait=wait)
    except (SyncError, SyncRequestError) as exc:
        click.echo(f"  {source_id} FAILED: {exc}", err=True)
        return False
    if outcome.status == RunStatus.RUNNING:
        click.echo(f"  {source_id}: run #{outcome.run_id} is running in a worker; not waiting for it.")
    elif not outcome.ok:
        where = " (run elsewhere)" if outcome.elsewhere else ""
        click.echo(f"  {source_id} FAILED{where}: run #{outcome.run_id} {outcome.status}: {outcome.error}", err=True)
    elif outcome.summary is None:
        click.echo(f"  {source_id} done (run #{outcome.run_id}, run by a worker)")
    else:
        summary = outcome.summary
        parts = ", ".join(f"{name}: {summary.paths.get(name, '?')}, {count} written"
                          for name, count in sorted({**{n: 0 for n in summary.paths}, **summary.records}.items()))
        click.echo(f"  {source_id} done ({parts or 'nothing to do'})")
    return outcome.ok


@click.group("parity")
def parity_group() -> None:
    """Compare the rows we hold with QuickBooks' counts."""


@parity_group.command("check")
@with_appcontext
@click.option("--company", "realm", default=None, help="Realm id (default: every connected company).")
def parity_check_command(realm: str | None) -> None:
    """Check parity now: per object type, QuickBooks' COUNT(*) against our rows that are not deleted.

    Covers the types each company syncs whose first backfill is complete, at one batch
    request per 30 types, under the company's sync lock (a running sync is waited for up
    to 30 s). The result is recorded as a scheduled check's is: two drifting checks in a
    row are a failure on the company's page.

    Exit status: 0 every type in parity; 1 some type drifts; 2 none drifts but some
    type (or company) could not be checked.
    """
    realms = [realm] if realm else db.session.execute(
        select(Company.source_id).where(Company.connection_state == ConnectionState.CONNECTED)
        .order_by(Company.source_id)).scalars().all()
    if not realms:
        raise click.ClickException("No connected company to check.")
    drifts = unchecked = 0
    for source_id in realms:
        try:
            report = parity.check_now(source_id)
        except SyncRequestError as exc:
            click.echo(f"{source_id}: {exc}", err=True)
            unchecked += 1
            continue
        if report.busy:
            click.echo(f"{source_id}: not checked: {report.busy}", err=True)
            unchecked += 1
            continue
        drifts += sum(v.drifts for v in report.verdicts)
        unchecked += sum(not v.checked for v in report.verdicts)
        _print_parity(report)
    if drifts:
        sys.exit(1)
    if unchecked:
        sys.exit(2)


def _print_parity(report: parity.ForegroundCheck) -> None:
    calls = f"{report.requests} request{'s' if report.requests != 1 else ''} to QuickBooks"
    click.echo(f"{report.company_source_id} ({calls})")
    if not report.verdicts:
        click.echo("  nothing to check: no object type has finished its first backfill")
        return
    rows = [(v.object_type, "-" if v.source_count is None else str(v.source_count),
             "-" if v.local_count is None else str(v.local_count), parity.describe_verdict(v))
            for v in report.verdicts]
    header = ("type", "QuickBooks", "here", "verdict")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(3)]
    for row in [header, *rows]:
        click.echo(f"  {row[0]:<{widths[0]}}  {row[1]:>{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}")


# -- alerts -----------------------------------------------------------------------------------
@click.group("alert")
def alert_group() -> None:
    """Alert channels (ALERT_WEBHOOK_URL, SMTP_URL)."""


@alert_group.command("test")
@with_appcontext
def alert_test() -> None:
    """Send a test alert to every configured channel now and say how each went (exit 1 on a failure)."""
    from .services.alerts.delivery import send_test

    outcomes = send_test()
    if not outcomes:
        raise click.ClickException(
            "No alert channel is configured: set ALERT_WEBHOOK_URL (and ALERT_WEBHOOK_FORMAT=json|slack|teams) "
            "and/or SMTP_URL with ALERT_EMAIL_TO, then run this again.")
    for outcome in outcomes:
        click.echo(f"{outcome.channel}: {'sent' if outcome.ok else 'FAILED'} — {outcome.where}"
                   + ("" if outcome.ok else f": {outcome.detail}"), err=not outcome.ok)
    if not all(o.ok for o in outcomes):
        raise SystemExit(1)
