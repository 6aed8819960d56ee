"""`make run`: the whole system on the embedded default, in one terminal.

Applies migrations, makes sure a demo operator exists, then starts the web app (port
3000), the Huey worker and the Intuit simulator (port 3001) as child processes.
Ctrl-C stops all three; if one of them dies, the others are stopped too.
"""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FLASK = [sys.executable, "-m", "flask", "--app", "wsgi"]
DEMO_USER = "demo"


def _demo_password(path: Path) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(12)
    path.write_text(password + "\n")
    path.chmod(0o600)
    return password


def _shown(password: str, path: Path) -> str:
    """The demo password for a person at a terminal; where to read it when output is captured.

    Output that goes to a file or a log collector keeps no secret: the password stays in
    its 0600 file.
    """
    if sys.stdout.isatty():
        return repr(password)
    return f"from {path}"


def _prepare() -> tuple[str, Path]:
    subprocess.run([*FLASK, "db", "upgrade"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    instance = Path(os.environ.get("INSTANCE_PATH") or ROOT / "instance")
    path = instance / "demo-operator.txt"
    password = _demo_password(path)
    result = subprocess.run([*FLASK, "create-operator", DEMO_USER, "--reset"], cwd=ROOT, input=password + "\n",
                            text=True, capture_output=True)
    if result.returncode != 0:
        subprocess.run([*FLASK, "create-operator", DEMO_USER], cwd=ROOT, input=password + "\n", text=True,
                       check=True, capture_output=True)
    return password, path


def main() -> int:
    password, path = _prepare()
    children = {
        # The sandbox command's default breadth fills all 28 tables of the demo companies.
        "simulator": subprocess.Popen([*FLASK, "sandbox", "--port", "3001"], cwd=ROOT),
        "worker": subprocess.Popen([*FLASK, "worker", "--workers", "4"], cwd=ROOT),
        "web": subprocess.Popen([*FLASK, "run", "--host", "127.0.0.1", "--port", "3000", "--with-threads"],
                                cwd=ROOT),
    }
    time.sleep(2)
    print(f"\n  Dashboard:  http://localhost:3000   (sign in as {DEMO_USER!r} with password {_shown(password, path)})\n"
          f"  Health:     http://localhost:3000/v1/health\n"
          f"  Simulator:  http://127.0.0.1:3001   (the stand-in for Intuit)\n"
          f"  Click 'Connect QuickBooks' and pick a simulated company. Ctrl-C stops everything.\n", flush=True)
    try:
        while all(child.poll() is None for child in children.values()):
            time.sleep(0.5)
        dead = [name for name, child in children.items() if child.poll() is not None]
        print(f"\n{', '.join(dead)} stopped; stopping the rest.", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 10
        for child in children.values():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
