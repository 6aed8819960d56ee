"""The worker entry, in Huey's instance / tasks / entry style.

Build the app once from the environment (its validated settings, its database and its
Huey instance with every task declared on it), then consume the queue:

    python -m dashboard.worker [--workers N] [--no-periodic]

``flask --app wsgi worker`` does the same through the Flask CLI. Run the scheduler
(periodic tasks) on exactly one consumer; any number of others take ``--no-periodic``.
"""
from __future__ import annotations

import argparse
import sys

from . import ConfigError, create_app
from .tasks.consumer import run_consumer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dashboard.worker", description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workers", type=int, default=4, help="worker threads (default 4)")
    parser.add_argument("--no-periodic", action="store_true",
                        help="do not run the scheduler here (run it on exactly one consumer)")
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except ConfigError as exc:
        sys.exit(f"Configuration error: {exc}")
    run_consumer(app, args.workers, periodic=not args.no_periodic)


if __name__ == "__main__":
    main()
