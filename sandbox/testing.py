"""Run the simulator on a free loopback port in a background thread."""
from __future__ import annotations

import threading
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from .app import create_app
from .simulator import Simulator
from .xero import XeroSimulator, xero_urls


class SandboxServer:
    """Serve a Simulator over HTTP on 127.0.0.1 for the duration of a with-block.

    Usage::

        with SandboxServer(customers=20, invoices=40) as server:
            requests.get(server.url + "/v3/company/...")
            server.sim.stats(realm)
    """

    def __init__(self, simulator: Simulator | None = None, host: str = "127.0.0.1", port: int = 0,
                 xero: XeroSimulator | None = None, **config: Any) -> None:
        self.sim = simulator or Simulator(**config)
        self.app = create_app(self.sim, xero)
        self.host = host
        self._server: BaseWSGIServer = make_server(host, port, self.app, threaded=True)
        self._server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = self._server.server_port
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the base URL (no trailing slash)."""
        return f"http://{self.host}:{self.port}"

    def urls(self) -> dict[str, str]:
        """Return the settings a client configures to use this server."""
        return service_urls(self.url)

    @property
    def xero(self) -> XeroSimulator | None:
        """Return the Xero simulator once given or first used (see create_app)."""
        return self.app.extensions.get("xero")

    def xero_urls(self) -> dict[str, str]:
        """Return the XERO_* settings a client configures to use this server."""
        return xero_urls(self.url)

    def start(self) -> "SandboxServer":
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-http", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self.sim.close()
        if self.xero is not None:
            self.xero.close()

    def __enter__(self) -> "SandboxServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def service_urls(base: str) -> dict[str, str]:
    """Map a base URL to the service's QBO_* settings."""
    return {
        "QBO_AUTHORIZE_URL": f"{base}/connect/oauth2",
        "QBO_TOKEN_URL": f"{base}/oauth2/v1/tokens/bearer",
        "QBO_REVOKE_URL": f"{base}/v2/oauth2/tokens/revoke",
        "QBO_API_BASE_URL": base,
    }
