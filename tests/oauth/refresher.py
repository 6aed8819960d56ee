"""Stop a real refresher process in its crash window: Intuit has answered, nothing is committed.

The simulator runs in the test process, so a WSGI wrapper around it sees the moment its
answer to a refresh is ready (the refresh token is already rotated then). The wrapper
holds that answer; the test stops the refresher (SIGSTOP), lets the answer go out, and
then kills the refresher (SIGKILL) or resumes it later (SIGCONT). No hook in the service.
"""
from __future__ import annotations

import io
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from urllib.parse import parse_qs

from tests.oauth.herd import ask_for_token

TOKEN_PATH = "/oauth2/v1/tokens/bearer"
# Imported once by the fork server, so each refresher starts in ~0.2 s instead of ~1.2 s.
PRELOAD = ["flask", "sqlalchemy", "flask_sqlalchemy", "flask_migrate", "flask_wtf", "flask_login",
           "authlib.integrations.requests_client", "requests", "cryptography.fernet", "psycopg2", "redis",
           "huey", "dashboard.models", "dashboard.services.tokens", "tests.oauth.herd"]


class HeldRefreshAnswer:
    """Wrap the simulator's WSGI app; once armed, hold the next refresh grant: its answer
    once the simulator has processed it (the default), or the request itself before it
    reaches the simulator (``before_intuit``: Intuit hangs). ``paths`` counts every
    request by path."""

    def __init__(self, sandbox_app) -> None:
        self._app = sandbox_app
        self._inner = sandbox_app.wsgi_app
        sandbox_app.wsgi_app = self
        self.paths: Counter[str] = Counter()
        self._armed = False
        self._before_intuit = False
        self._arrived = threading.Event()
        self._answered = threading.Event()
        self._released = threading.Event()
        self._finished = threading.Event()

    def arm(self, before_intuit: bool = False) -> None:
        for event in (self._arrived, self._answered, self._released, self._finished):
            event.clear()
        self._before_intuit = before_intuit
        self._armed = True

    def wait_arrived(self, timeout: float = 30.0) -> None:
        """Return once the refresh has reached the simulator's door (and is held there)."""
        assert self._arrived.wait(timeout), "no refresh reached the simulator"

    def wait_answered(self, timeout: float = 30.0) -> None:
        """Return once the simulator has processed the refresh (its answer is held)."""
        assert self._answered.wait(timeout), "no refresh reached the simulator"

    def wait_finished(self, timeout: float = 30.0) -> None:
        """Return once the held refresh has been processed and its answer sent."""
        assert self._finished.wait(timeout), "the held refresh did not finish"

    def release(self) -> None:
        """Let the held refresh (or its answer) go."""
        self._released.set()

    def remove(self) -> None:
        self._released.set()
        self._app.wsgi_app = self._inner

    def __call__(self, environ, start_response):
        self.paths[environ.get("PATH_INFO")] += 1
        if not self._armed or environ.get("PATH_INFO") != TOKEN_PATH:
            return self._inner(environ, start_response)
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        if parse_qs(body.decode()).get("grant_type") != ["refresh_token"]:
            return self._inner(environ, start_response)
        self._armed = False
        self._arrived.set()
        try:
            if self._before_intuit:
                self._released.wait(60)
            started = []
            chunks = list(self._inner(environ, lambda status, headers, exc_info=None: started.append((status, headers))))
            self._answered.set()
            self._released.wait(60)
            start_response(*started[0])
            return chunks
        finally:
            self._finished.set()


class Refresher:
    """A child process that builds its own app and asks once for an access token."""

    _context = None

    def __init__(self, env: dict, realm: str) -> None:
        ctx = self._fork_server()
        self.results = ctx.Queue()
        self.process = ctx.Process(target=ask_for_token, args=(env, realm, None, self.results), daemon=True)
        self.process.start()

    @classmethod
    def _fork_server(cls):
        if cls._context is None:
            cls._context = multiprocessing.get_context("forkserver")
            cls._context.set_forkserver_preload(PRELOAD)
        return cls._context

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGSTOP, and wait until the kernel says the process is stopped."""
        os.kill(self.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while _state(self.pid) not in ("T", "t"):
            assert time.monotonic() < deadline, f"refresher {self.pid} did not stop"
            time.sleep(0.005)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.join(10)
        assert self.process.exitcode == -signal.SIGKILL, self.process.exitcode

    def close(self) -> None:
        """Kill it if it still runs (a failed test must not leave a stopped lock holder)."""
        if self.process.is_alive():
            os.kill(self.pid, signal.SIGKILL)
            self.process.join(10)

    def result(self, timeout: float = 30.0) -> tuple[str, str]:
        answer = self.results.get(timeout=timeout)
        self.process.join(10)
        return answer


def _state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]
