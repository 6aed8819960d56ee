"""The peer: tap-quickbooks extracting the same data set from the same simulator to /dev/null.

The tap lives in its own virtual environment (``benchmarks/.venv-tap/``, created on the
first run) because it pins libraries our stack does not use. Its records go to
``/dev/null``; its wall time and the metered calls the simulator counted (each item of a
batch request counts) are what we compare with.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import Result, ratio
from .infra import SIM_CLIENT_ID, SIM_CLIENT_SECRET, Simulator

HERE = Path(__file__).resolve().parent
TAP_VENV = HERE / ".venv-tap"
TAP_PYTHON = TAP_VENV / "bin" / "python"
TAP_REQUIREMENT = "tap-quickbooks==2.5.0"
RUNNER = HERE / "tap_runner.py"


@dataclass
class TapRun:
    records: int
    seconds: float
    metered_calls: int
    throttled: int
    token_requests: int
    stats: dict[str, Any]
    failed_attempts: list[str] = field(default_factory=list)

    @property
    def records_per_second(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def ensure_tap() -> Path:
    """Create the tap's virtual environment and install the pinned tap once."""
    if TAP_PYTHON.exists():
        probe = subprocess.run([str(TAP_PYTHON), "-c", "import tap_quickbooks"], capture_output=True)
        if probe.returncode == 0:
            return TAP_PYTHON
    python = "python3.11" if subprocess.run(["which", "python3.11"], capture_output=True).returncode == 0 \
        else sys.executable
    subprocess.run([python, "-m", "venv", str(TAP_VENV)], check=True)
    subprocess.run([str(TAP_PYTHON), "-m", "pip", "install", "--quiet", TAP_REQUIREMENT], check=True,
                   timeout=600)
    return TAP_PYTHON


def run_tap(sim: Simulator, realm: str, expected_records: int, attempts: int = 2) -> TapRun:
    """Run the tap until one extraction completes (at most `attempts`), keeping the failures on record.

    The tap gives up after three 429s with a randomly jittered wait of up to 60 s, so a
    run can die on throttling. The figures come from the first complete run; failures are
    reported.
    """
    failures: list[str] = []
    # Lift the 40-batches-per-minute limit for the tap: with it, the tap dies on 429 at its
    # 41st batch whenever it runs faster than 40 batches a minute. Lifting it only helps
    # the tap, so the comparison stays conservative for us. Every other limit stays on.
    batch_limit = sim.configure()["batch_per_minute"]
    sim.configure(batch_per_minute=100_000)
    try:
        for _ in range(attempts):
            try:
                run = _run_tap_once(sim, realm, expected_records)
            except RuntimeError as exc:
                failures.append(str(exc)[-300:])
                continue
            run.failed_attempts = failures
            return run
    finally:
        sim.configure(batch_per_minute=batch_limit)
    raise RuntimeError(f"tap-quickbooks failed {attempts} times; last: {failures[-1]}")


def _run_tap_once(sim: Simulator, realm: str, expected_records: int) -> TapRun:
    """Extract customers and invoices of one realm with the tap; count what the simulator saw."""
    python = ensure_tap()
    tokens = sim.tokens(realm)
    with tempfile.TemporaryDirectory(prefix="qbosync-bench-tap-") as tmp:
        config_path, catalog_path = Path(tmp) / "config.json", Path(tmp) / "catalog.json"
        config_path.write_text(json.dumps({
            "client_id": SIM_CLIENT_ID, "client_secret": SIM_CLIENT_SECRET,
            "refresh_token": tokens["refresh_token"], "realm_id": realm, "user_agent": "qbosync-bench",
            "start_date": "2000-01-01T00:00:00Z", "sandbox": True}))
        subprocess.run([str(python), str(RUNNER), sim.url, "catalog", str(catalog_path)], check=True,
                       capture_output=True, timeout=120)
        sim.reset_stats(realm)
        oauth_before = _token_request_count(sim, realm)
        started = time.perf_counter()
        with open(Path(tmp) / "tap.log", "wb") as log:
            proc = subprocess.Popen([str(python), str(RUNNER), sim.url, "sync", "--",
                                     "--config", str(config_path), "--catalog", str(catalog_path)],
                                    stdout=subprocess.PIPE, stderr=log)
            records = _count_records(proc.stdout)
            returncode = proc.wait(timeout=900)
        seconds = time.perf_counter() - started
        if returncode != 0:
            tail = (Path(tmp) / "tap.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"tap-quickbooks exited {returncode}: {tail}")
    if records != expected_records:
        raise RuntimeError(f"tap-quickbooks emitted {records} records, the simulator holds {expected_records}")
    stats = sim.stats(realm)
    return TapRun(records=records, seconds=seconds, metered_calls=metered_calls(stats),
                  throttled=int(stats.get("throttled", 0)),
                  token_requests=_token_request_count(sim, realm) - oauth_before, stats=stats)


def metered_calls(stats: dict[str, Any]) -> int:
    """Count metered calls: admitted API requests, each item of a batch counting once."""
    return int(stats.get("weighted_requests", stats.get("requests", 0))) - int(stats.get("throttled", 0))


def _token_request_count(sim: Simulator, realm: str) -> int:
    data = sim.oauth_stats(realm)
    return sum(int(v) for v in data.get("requests", {}).values())


def _count_records(stream) -> int:
    """Discard the tap's output like /dev/null would, counting its RECORD messages on the way.

    Counting whole 1 MiB chunks with ``bytes.count`` costs next to nothing, and proves the
    tap extracted every record rather than stopping early.
    """
    marker, count, tail = b'{"type": "RECORD"', 0, b""
    while chunk := stream.read(1 << 20):
        data = tail + chunk
        count += data.count(marker)
        # Keep the last bytes so a marker split across two chunks is counted once.
        keep = len(marker) - 1
        tail = data[-keep:]
    return count


SPEED = ("peer_speed_vs_tap", 3.0, "× tap-quickbooks records/s", False)
CALLS = ("peer_metered_calls_vs_tap", 1.0, "× tap-quickbooks metered calls", True)
SPEED_LATENCY = ("peer_speed_vs_tap_under_latency", 3.0, "× tap-quickbooks records/s (300 ms latency)", False)


def compare(sim: Simulator, realm: str, records: int, ours_rps: float, ours_stats: dict[str, Any]) -> list[Result]:
    """Run the tap on the realm our pipeline just backfilled; compare speed and metered calls."""
    tap = run_tap(sim, realm, records)
    ours_calls = metered_calls(ours_stats)
    detail = {"tap": _summary(tap), "ours": {"records_per_second": ours_rps, "metered_calls": ours_calls,
                                             "throttled": ours_stats.get("throttled")}}
    return [Result(SPEED[0], ratio(ours_rps, tap.records_per_second), SPEED[1], SPEED[2], False, detail),
            Result(CALLS[0], ratio(ours_calls, tap.metered_calls), CALLS[1], CALLS[2], True, detail)]


def compare_under_latency(sim: Simulator, realm: str, records: int, ours_rps: float, floor: float,
                          latency: float = 0.3) -> Result:
    """Run the tap with the simulator's latency on; compare records/s and distance to the floor."""
    sim.configure(latency=latency)
    try:
        tap = run_tap(sim, realm, records)
    finally:
        sim.configure(latency=0.0)
    detail = {"tap": _summary(tap), "tap_vs_floor": ratio(tap.seconds, floor), "floor_seconds": floor,
              "ours_records_per_second": ours_rps}
    return Result(SPEED_LATENCY[0], ratio(ours_rps, tap.records_per_second), SPEED_LATENCY[1], SPEED_LATENCY[2],
                  False, detail)


def _summary(tap: TapRun) -> dict[str, Any]:
    return {"records": tap.records, "seconds": tap.seconds, "records_per_second": tap.records_per_second,
            "metered_calls": tap.metered_calls, "throttled": tap.throttled, "token_requests": tap.token_requests,
            "batch_requests": tap.stats.get("by_kind", {}).get("batch"), "failed_attempts": tap.failed_attempts,
            "batch_per_minute_limit": "lifted for the tap (it favours the tap)"}
