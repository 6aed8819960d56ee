"""Run the simulator as a standalone server and print how to configure a client."""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from werkzeug.serving import make_server

from .app import create_app
from .simulator import Simulator
from .testing import service_urls
from .xero import XeroSimulator, xero_urls


def serve(host: str = "127.0.0.1", port: int = 3001, *, companies: int = 2, customers: int = 3000,
          invoices: int = 6000, breadth: int = 0, ties: dict[str, int] | None = None, out: Any = None,
          xero: dict[str, Any] | None = None, **config: Any) -> None:
    """Serve forever with demo data; print the client id/secret and URLs to configure.

    ``breadth`` adds that many records of each of the other 26 entities; ``ties`` maps
    entities to how many of their records share one timestamp. ``xero`` holds the Xero
    simulator's options (XeroSimulator keywords); it is served on the same port under /xero.
    """
    out = out or sys.stdout
    sim = Simulator(companies=companies, customers=customers, invoices=invoices, breadth=breadth, ties=ties,
                    **config)
    xsim = XeroSimulator(**(xero or {}))
    server = make_server(host, port, create_app(sim, xsim), threaded=True)
    base = f"http://{host}:{server.server_port}"
    lines = ["Intuit QuickBooks Online simulator", f"  listening on {base}",
             f"  QBO_CLIENT_ID={sim.config.client_id}", f"  QBO_CLIENT_SECRET={sim.config.client_secret}"]
    lines += [f"  {k}={v}" for k, v in service_urls(base).items()]
    lines += [f"  redirect URIs: {', '.join(sim.config.redirect_uris)}", "  companies:"]
    lines += [f"    {c['realmId']}  {c['name']}  ({c['counts']['Customer']} customers, "
              f"{c['counts']['Invoice']} invoices" + _others(c['counts']) + ")" for c in sim.company_list()]
    lines += [f"  admin API: {base}/_sandbox/health", "Xero simulator (same port)",
              f"  XERO_CLIENT_ID={xsim.config.client_id}", f"  XERO_CLIENT_SECRET={xsim.config.client_secret}"]
    lines += [f"  {k}={v}" for k, v in xero_urls(base).items()]
    lines += [f"    {o['tenantId']}  {o['name']}  ({o['counts']['Contacts']} contacts, {o['counts']['Invoices']} invoices)"
              for o in xsim.organisation_list()]
    lines += [f"  Xero admin API: {base}/_sandbox/xero/health"]
    print("\n".join(lines), file=out, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sim.close()
        xsim.close()


def _others(counts: dict[str, int]) -> str:
    rest = sum(n for e, n in counts.items() if e not in ("Customer", "Invoice"))
    return f", {rest} records of {len(counts) - 2} other entities" if rest else ""


def _tie(text: str) -> tuple[str, int]:
    entity, _, count = text.partition("=")
    if not entity or not count.isdigit():
        raise argparse.ArgumentTypeError("expected ENTITY=COUNT, e.g. Item=1100")
    return entity, int(count)


def main(argv: Sequence[str] | None = None) -> None:
    """Parse command-line options and serve."""
    p = argparse.ArgumentParser(prog="python -m sandbox", description="Intuit QuickBooks Online simulator")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=3001)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--companies", type=int, default=2)
    p.add_argument("--customers", type=int, default=3000)
    p.add_argument("--invoices", type=int, default=6000)
    p.add_argument("--breadth", type=int, default=0,
                   help="records of each of the other 26 entities per company (Account, Bill, ...)")
    p.add_argument("--tie", type=_tie, action="append", default=[], metavar="ENTITY=COUNT",
                   help="make COUNT records of ENTITY share one timestamp (repeatable; e.g. Item=1100)")
    p.add_argument("--redirect-uri", action="append", dest="redirect_uris",
                   help="registered redirect URI (repeatable; replaces the defaults)")
    p.add_argument("--webhook-url")
    p.add_argument("--webhook-verifier")
    p.add_argument("--webhook-format", choices=["legacy", "cloudevents"], default="legacy")
    p.add_argument("--client-id")
    p.add_argument("--client-secret")
    p.add_argument("--latency", type=float, default=0.0, help="seconds added to every API response")
    p.add_argument("--clock-offset", type=float, default=0.0, help="skew of the simulated clock in seconds")
    p.add_argument("--refresh-grace", type=float, help="seconds a superseded refresh token still works")
    p.add_argument("--xero-organisations", type=int, default=2, help="Xero organisations (tenants)")
    p.add_argument("--xero-contacts", type=int, default=50, help="contacts per Xero organisation")
    p.add_argument("--xero-invoices", type=int, default=100, help="invoices per Xero organisation")
    p.add_argument("--xero-webhook-url")
    p.add_argument("--xero-webhook-key")
    args = p.parse_args(argv)
    config: dict[str, Any] = {"seed": args.seed, "latency": args.latency, "clock_offset": args.clock_offset,
                              "webhook_format": args.webhook_format}
    for key in ("redirect_uris", "webhook_url", "webhook_verifier", "client_id", "client_secret", "refresh_grace"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    xero: dict[str, Any] = {"seed": args.seed, "organisations": args.xero_organisations,
                            "contacts": args.xero_contacts, "invoices": args.xero_invoices}
    xero.update({k: v for k, v in (("webhook_url", args.xero_webhook_url), ("webhook_key", args.xero_webhook_key))
                 if v is not None})
    serve(args.host, args.port, companies=args.companies, customers=args.customers, invoices=args.invoices,
          breadth=args.breadth, ties=dict(args.tie) or None, xero=xero, **config)
