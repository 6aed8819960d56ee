"""Prometheus metrics: what every process records, and the scrape that merges them.

``install(settings)`` (from the app factory, in every process: web, worker, commands)
turns multi-process mode on in the settings' directory and builds the instruments;
the record calls live in ``instruments``; ``render`` answers GET /metrics.
"""
from __future__ import annotations

import time

from ...config import Settings
from . import instruments, multiprocess
from .instruments import (
    TimedLimiter, announce_worker, records_deleted, records_synced, request_observed, run_ended,
    token_refreshed,
)
from .scrape import SOURCES, render as _render

__all__ = ["install", "render", "SOURCES", "TimedLimiter", "announce_worker", "records_deleted",
           "records_synced", "request_observed", "run_ended", "token_refreshed"]


def install(settings: Settings) -> None:
    """Write this process's samples under the settings' directory (first call wins)."""
    def announce() -> None:
        if instruments.built() is None:
            instruments.install(instruments.build(settings.metrics_per_company))
        instruments.announce_process(time.time())

    multiprocess.enable(settings.metrics_dir, announce)


def render() -> tuple[bytes, str]:
    """Return the scrape of every process writing to this process's directory."""
    directory = multiprocess.active_directory()
    if directory is None:
        raise RuntimeError("metrics.install() was not called in this process")
    return _render(directory)
