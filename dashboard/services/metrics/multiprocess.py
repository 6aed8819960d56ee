"""Prometheus' multi-process mode: every process of a machine writes its samples under one
directory, and a scrape of any web process merges them.

``prometheus_client`` picks its value store when a sample is first created, from
``PROMETHEUS_MULTIPROC_DIR``; our directory comes from the settings (by default under the
instance path, so each deployment has its own), known only once the app is built. So
``enable`` sets the variable and switches the store before any instrument exists.

Start-up cleaning, under a file lock so that processes starting together agree:
- no other live process writes there (the deployment is starting): the files of past
  processes are removed, and every counter starts from zero, as after a restart of a
  single process;
- others are live (a worker restarting beside a running web): only the live-only gauges of
  dead processes are dropped; their counters and histograms stay, so a sum never goes back
  (Prometheus would read that as a reset).
A process's files are named ``<kind>_<pid>.db``: the processes sharing the directory must
share a PID namespace (one machine or one container), which is why the default is per
instance path, not a network share.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import threading
from pathlib import Path
from typing import Callable, Iterator

from prometheus_client import multiprocess, values

ENVIRON = "PROMETHEUS_MULTIPROC_DIR"
_PID = re.compile(r"_(\d+)\.db$")

log = logging.getLogger(__name__)

_active: Path | None = None
_guard = threading.Lock()


def active_directory() -> Path | None:
    """Return the directory this process writes its samples to (None before ``enable``)."""
    return _active


def enable(directory: str, announce: Callable[[], None]) -> Path:
    """Make this process write its samples under ``directory`` (once per process).

    ``announce`` creates this process's first sample; it runs under the start-up lock, so
    a process starting a moment later sees this one as live. A later call with another
    directory keeps the first (samples already written cannot move) and says so.
    """
    global _active
    with _guard:
        wanted = Path(directory)
        if _active is not None:
            if wanted != _active:
                log.warning("Metrics stay in %s: this process already writes there (asked for %s)",
                            _active, wanted)
            return _active
        wanted.mkdir(parents=True, exist_ok=True)
        os.environ[ENVIRON] = str(wanted)
        if not getattr(values.ValueClass, "_multiprocess", False):
            values.ValueClass = values.MultiProcessValue()
        with _locked(wanted):
            clean(wanted, os.getpid())
            announce()
        _active = wanted
        return wanted


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def writers(directory: Path) -> dict[int, list[Path]]:
    """Return the sample files in ``directory`` by the pid of the process that wrote them."""
    found: dict[int, list[Path]] = {}
    for path in directory.glob("*.db"):
        match = _PID.search(path.name)
        if match:
            found.setdefault(int(match.group(1)), []).append(path)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def clean(directory: Path, me: int, is_alive: Callable[[int], bool] = alive) -> list[int]:
    """Drop what dead processes left, as the module docstring says; return the dead pids."""
    others = {pid: files for pid, files in writers(directory).items() if pid != me}
    dead = [pid for pid in others if not is_alive(pid)]
    if len(dead) == len(others):
        for pid in dead:
            for path in others[pid]:
                path.unlink(missing_ok=True)
    else:
        for pid in dead:
            multiprocess.mark_process_dead(pid, str(directory))
    return dead
