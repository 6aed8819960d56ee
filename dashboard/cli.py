"""Flask commands: ``flask --app wsgi <command>``."""
from __future__ import annotations

import ctypes
import os
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)


def register(app: Flask) -> None:
    app.cli.add_command(create_operator)
    app.cli.add_command(worker)
    app.cli.add_command(sandbox)
    app.cli.add_command(rotate_keys)
    app.cli.add_command(sync_group)


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
    from .services.operators import OperatorError, create_operator as create, set_password

    password = _read_password()
    try:
        (set_password if reset else create)(username, password)
    except OperatorError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Operator {username!r} {'updated' if reset else 'created'}.")


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Cap glibc's malloc arenas before the consumer starts its threads.

    By default each thread that allocates may get an arena of its own (up to 8 per core),
    and an arena keeps its high-water mark. With pages parsed in four fetch threads the
    worker's peak RSS grew with the length of a backfill (1.26x at 10x the records);
    with two arenas it stays at 1.16x, at the same speed. MALLOC_ARENA_MAX, when set,
    is left to glibc.
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return
    libc.mallopt(M_ARENA_MAX, arenas)


@click.command()
@with_appcontext
@click.option("-w", "--workers", default=4, show_default=True, help="Worker threads.")
@click.option("--no-periodic", is_flag=True,
              help="Do not run the scheduler here (run it on exactly one consumer).")
def worker(workers: int, no_periodic: bool) -> None:
    """Start the Huey consumer that runs syncs (Ctrl-C stops it gracefully)."""
    from huey.consumer_options import ConsumerConfig

    from . import queue
    from . import tasks  # noqa: F401  (declares the tasks on the Huey instance)

    queue.set_app(current_app._get_current_object())
    limit_malloc_arenas()
    config = ConsumerConfig(workers=workers, worker_type="thread", periodic=not no_periodic,
                            check_worker_health=True, scheduler_interval=1)
    config.validate()  # logging is already configured by the app (one line per record)
    consumer = queue.huey.create_consumer(**config.values)
    click.echo(f"Worker started: {workers} threads, backend {type(queue.huey).__name__}, "
               f"scheduler {'off' if no_periodic else 'on'}.")
    consumer.run()


@click.command()
@with_appcontext
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=3001, show_default=True, type=int)
@click.option("--seed", default=1, show_default=True, type=int, help="Data generator seed.")
@click.option("--customers", default=3000, show_default=True, type=int, help="Customers per company.")
@click.option("--invoices", default=6000, show_default=True, type=int, help="Invoices per company.")
def sandbox(host: str, port: int, seed: int, customers: int, invoices: int) -> None:
    """Start the Intuit simulator (OAuth + Accounting API) with two demo companies.

    It accepts this service's redirect URI and posts signed webhooks to this service.
    """
    from urllib.parse import urlsplit

    from sandbox.serve import serve

    settings = current_app.config["SETTINGS"]
    callback = urlsplit(settings.qbo_redirect_uri)
    redirect_uris = sorted({settings.qbo_redirect_uri, "http://localhost:3000/v1/oauth/callback/qbo",
                            "http://127.0.0.1:3000/v1/oauth/callback/qbo"})
    serve(host, port, seed=seed, customers=customers, invoices=invoices, redirect_uris=redirect_uris,
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
    from .services.token_keys import rotate_keys as rotate

    report = rotate()
    click.echo(f"Companies checked: {report.companies}; tokens re-encrypted: {report.tokens_rotated}; "
               f"already on the newest key: {report.already_current}; unreadable: {len(report.unreadable or [])}.")
    if report.connected_again:
        click.echo("Connected again (their tokens open with these keys): " + ", ".join(report.connected_again))
    if report.unreadable:
        raise click.ClickException("Tokens of these companies could not be decrypted with any key "
                                   f"(left unchanged): {', '.join(report.unreadable)}")


@click.group("sync")
def sync_group() -> None:
    """Run syncs by hand."""


@sync_group.command("now")
@with_appcontext
@click.option("--company", "realm", default=None, help="Realm id (default: every connected company).")
@click.option("--object", "object_type", type=click.Choice(["customer", "invoice"]), default=None,
              help="One object type (default: all, Customers first).")
@click.option("--full", is_flag=True, help="Full resync: backfill again from the start.")
def sync_now(realm: str | None, object_type: str | None, full: bool) -> None:
    """Run the sync pipeline in the foreground with progress; exit non-zero on failure."""
    from sqlalchemy import select

    from .extensions import db
    from .models import Company, ConnectionState
    from .services.sync_jobs import SyncRequestError
    from .services.sync_runner import run_now
    from .sync.errors import SyncError

    realms = [realm] if realm else db.session.execute(
        select(Company.source_id).where(Company.connection_state == ConnectionState.CONNECTED)
        .order_by(Company.source_id)).scalars().all()
    if not realms:
        raise click.ClickException("No connected company to sync.")
    failed = 0
    for source_id in realms:
        last: dict[str, int] = {}

        def progress(name: str, done: int, total: int | None, source_id: str = source_id) -> None:
            if done != last.get(name):
                last[name] = done
                click.echo(f"  {source_id} {name}: {done}" + (f" / {total}" if total else "") + " records")

        click.echo(f"Syncing {source_id}{' (full resync)' if full else ''}...")
        try:
            summary = run_now(source_id, object_type, full, progress)
        except (SyncError, SyncRequestError) as exc:
            failed += 1
            click.echo(f"  {source_id} FAILED: {exc}", err=True)
            continue
        parts = ", ".join(f"{name}: {summary.paths.get(name, '?')}, {count} written"
                          for name, count in sorted({**{n: 0 for n in summary.paths}, **summary.records}.items()))
        click.echo(f"  {source_id} done ({parts or 'nothing to do'})")
    if failed:
        raise click.ClickException(f"{failed} of {len(realms)} companies failed.")
