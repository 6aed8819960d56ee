"""`flask --app wsgi sandbox` (what `make run` starts) serves demo companies with every object type."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import requests

from dashboard.cli import DEMO_BREADTH

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen, str, str]:
    """Start the command; return it, its base URL and its banner (read up to the admin API line)."""
    port = _free_port()
    env = {**os.environ, "INSTANCE_PATH": str(tmp_path)}
    env.pop("DATABASE_URL", None)  # the command needs no database; the embedded default is enough
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "wsgi", "sandbox", "--port", str(port),
                             "--customers", "5", "--invoices", "7", *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    banner = []
    try:
        while "admin API" not in (banner[-1] if banner else ""):
            line = proc.stdout.readline()
            assert line, "the simulator exited early:\n" + "".join(banner)
            banner.append(line)
    except BaseException:
        _stop(proc)
        raise
    return proc, f"http://127.0.0.1:{port}", "".join(banner)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(timeout=10)
    proc.stdout.close()


def _counts(base: str) -> list[dict[str, int]]:
    return [c["counts"] for c in requests.get(f"{base}/_sandbox/companies", timeout=5).json()]


def test_the_demo_simulator_has_records_of_every_object_type_by_default(tmp_path):
    from dashboard.sync import specs

    proc, base, banner = _serve(tmp_path)
    try:
        counts = _counts(base)
    finally:
        _stop(proc)
    entities = {spec.entity for spec in specs.SPECS.values()}
    assert len(counts) == 2 and len(entities) == 28
    for company in counts:
        # Every entity the service syncs has records, the default breadth or more of each.
        assert {e for e, n in company.items() if n > 0} >= entities, company
        assert company["Customer"] == 5 and company["Invoice"] == 7
        assert min(n for e, n in company.items() if e not in ("Customer", "Invoice")) >= DEMO_BREADTH, company
    assert "records of 26 other entities" in banner


def test_breadth_zero_gives_customers_and_invoices_only(tmp_path):
    proc, base, banner = _serve(tmp_path, "--breadth", "0")
    try:
        counts = _counts(base)
    finally:
        _stop(proc)
    assert counts == [{"Customer": 5, "Invoice": 7}] * 2
    assert "other entities" not in banner
