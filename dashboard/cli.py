"""Flask commands: ``flask --app wsgi <command>``."""
from __future__ import annotations

import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def register(app: Flask) -> None:
    app.cli.add_command(create_operator)
    app.cli.add_command(worker)
    app.cli.add_command(sandbox)
    app.cli.add_command(rotate_keys)


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
    config = ConsumerConfig(workers=workers, worker_type="thread", periodic=not no_periodic,
                            check_worker_health=True, scheduler_interval=1)
    config.validate()
    config.setup_logger()
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
    from .services.tokens import rotate_keys as rotate

    report = rotate()
    click.echo(f"Companies checked: {report.companies}; tokens re-encrypted: {report.tokens_rotated}; "
               f"already on the newest key: {report.already_current}; unreadable: {len(report.unreadable or [])}.")
    if report.unreadable:
        raise click.ClickException("Tokens of these companies could not be decrypted with any key "
                                   f"(left unchanged): {', '.join(report.unreadable)}")
